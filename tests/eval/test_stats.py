"""Confidence intervals, paired tests, power and multiplicity, checked against scipy, statsmodels and
hand computation, and against what they must do."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as sp
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.power import NormalIndPower

from edgellm.eval import stats


@pytest.mark.parametrize("only_a, only_b, both, neither", [(0, 0, 5, 5), (7, 1, 10, 2), (3, 12, 0, 4), (20, 20, 1, 1)])
def test_mcnemar_exact_is_the_binomial_test_on_discordant_pairs(only_a, only_b, both, neither):
    a = [1] * only_a + [0] * only_b + [1] * both + [0] * neither
    b = [0] * only_a + [1] * only_b + [1] * both + [0] * neither
    res = stats.mcnemar_exact(a, b)
    n = only_a + only_b
    expected = 1.0 if n == 0 else sp.binomtest(min(only_a, only_b), n, 0.5).pvalue
    assert res["p"] == pytest.approx(expected, rel=1e-12)
    assert (res["only_ref"], res["only_variant"]) == (only_a, only_b)
    assert res["delta"] == pytest.approx(np.mean(b) - np.mean(a))


def test_bootstrap_interval_covers_the_mean_and_shrinks_with_n():
    rng = np.random.default_rng(0)
    small = rng.binomial(1, 0.6, 20)
    large = rng.binomial(1, 0.6, 2000)
    p1, lo1, hi1 = stats.bootstrap_ci([small], 4000, 0.95, stats.rng_for(1, "a"))
    p2, lo2, hi2 = stats.bootstrap_ci([large], 4000, 0.95, stats.rng_for(1, "a"))
    assert lo1 <= p1 <= hi1 and lo2 <= p2 <= hi2
    assert (hi2 - lo2) < 0.25 * (hi1 - lo1)
    # the normal approximation of a proportion's 95% interval, for the large sample
    se = np.sqrt(p2 * (1 - p2) / len(large))
    assert hi2 - lo2 == pytest.approx(2 * 1.96 * se, rel=0.1)


def test_stratified_interval_is_for_the_mean_of_task_means():
    a, b = np.ones(10), np.zeros(30)
    point, lo, hi = stats.bootstrap_ci([a, b], 500, 0.95, stats.rng_for(0, "x"))
    assert point == 0.5 and lo == hi == 0.5  # each task keeps its size: no variance from mixing tasks


def test_seeded_by_name_not_by_call_order():
    x = np.random.default_rng(3).random(50)
    r1 = stats.bootstrap_ci([x], 1000, 0.9, stats.rng_for(7, "variant", "metric"))
    stats.bootstrap_ci([x], 1000, 0.9, stats.rng_for(7, "other"))
    assert stats.bootstrap_ci([x], 1000, 0.9, stats.rng_for(7, "variant", "metric")) == r1


def test_paired_comparisons_detect_a_real_drop_and_not_noise():
    rng = np.random.default_rng(1)
    ref = rng.binomial(1, 0.7, 300).astype(float)
    worse = ref.copy()
    worse[np.flatnonzero(ref)[:60]] = 0  # 60 items lost, none gained
    res = stats.compare({"t": ref}, {"t": worse}, True, 2000, 0.95, 0.05, stats.rng_for(0, "w"))
    assert res["significant"] and res["delta"] < 0 and res["ci_high"] < 0 and res["test"] == "McNemar exact"
    same = stats.compare({"t": ref}, {"t": ref.copy()}, True, 2000, 0.95, 0.05, stats.rng_for(0, "s"))
    assert not same["significant"] and same["p"] == 1.0 and same["delta"] == 0
    cont = stats.compare({"t": rng.random(100)}, {"t": rng.random(100)}, False, 2000, 0.95, 0.05,
                         stats.rng_for(0, "c"))
    assert cont["test"] == "paired sign-flip permutation" and cont["ci_low"] < cont["delta"] < cont["ci_high"]
    assert cont["mde"] > 0 and "discordance" not in cont
    assert res["discordance"] == pytest.approx(60 / 300) and res["mde"] > 0
    with pytest.raises(ValueError, match="same items"):
        stats.compare({"t": ref}, {"t": ref[:-1]}, False, 100, 0.95, 0.05, stats.rng_for(0, "e"))


def test_tasks_of_unequal_size_are_tested_on_the_difference_the_interval_is_for():
    """A small task that loses items and a large one that trades them evenly: the mean of task means drops, its
    interval excludes 0, and so must its test; McNemar on the pooled items, which weights the large task ten
    times more, would call it noise."""
    small_ref, small_var = np.r_[np.ones(20), np.zeros(20)], np.r_[np.zeros(8), np.ones(12), np.zeros(20)]
    large_ref = np.r_[np.ones(15), np.zeros(15), np.ones(200), np.zeros(170)]
    large_var = np.r_[np.zeros(15), np.ones(15), np.ones(200), np.zeros(170)]
    ref, var = {"small": small_ref, "large": large_ref}, {"small": small_var, "large": large_var}
    res = stats.compare(ref, var, True, 2000, 0.95, 0.05, stats.rng_for(0, "u"))
    assert res["test"] == "stratified sign-flip permutation"
    assert res["delta"] == pytest.approx(-0.1) and res["ci_high"] < 0 and res["p"] < 0.05 and res["significant"]
    assert (res["only_ref"], res["only_variant"]) == (23, 15)
    pooled = stats.mcnemar_exact(np.r_[small_ref, large_ref], np.r_[small_var, large_var])
    assert pooled["p"] > 0.2
    # tasks of equal size weight every item alike: the exact McNemar test on the pooled items
    even = stats.compare({"x": small_ref, "y": small_ref}, {"x": small_var, "y": small_ref}, True, 2000, 0.95,
                         0.05, stats.rng_for(0, "e"))
    assert even["test"] == "McNemar exact" and even["p"] == pytest.approx(2 / 2**8)


# --- McNemar -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("only_a, only_b", [(0, 0), (1, 0), (5, 2), (0, 9), (11, 11), (3, 17)])
def test_mcnemar_equals_the_exact_binomial_formula_and_statsmodels(only_a, only_b):
    a = [1] * only_a + [0] * only_b + [1, 1, 0]
    b = [0] * only_a + [1] * only_b + [1, 0, 0]  # one more discordant "only_a" item at the end
    only_a += 1
    n, k = only_a + only_b, min(only_a, only_b)
    by_hand = min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n)
    res = stats.mcnemar_exact(a, b)
    assert res["p"] == pytest.approx(by_hand, rel=1e-12)
    sm = mcnemar([[1, only_a], [only_b, 1]], exact=True).pvalue
    assert res["p"] == pytest.approx(min(1.0, sm), rel=1e-12)


# --- sign-flip permutation -----------------------------------------------------------------------------


def _enumerated_p(a_groups, b_groups):
    """Every sign flip of every item, the statistic the difference of the mean of group means."""
    diffs = [np.asarray(b, float) - np.asarray(a, float) for a, b in zip(a_groups, b_groups)]
    obs = np.mean([d.mean() for d in diffs])
    flat = np.concatenate(diffs)
    sizes = np.cumsum([0] + [len(d) for d in diffs])
    hits = total = 0
    for signs in itertools.product([1, -1], repeat=len(flat)):
        x = flat * signs
        t = np.mean([x[sizes[i]:sizes[i + 1]].mean() for i in range(len(diffs))])
        hits += abs(t) >= abs(obs) - 1e-12
        total += 1
    return hits / total


def test_permutation_p_by_hand():
    # differences 1, 2, 3: the 8 flips give sums 6, 4, 2, 0, 0, -2, -4, -6; |sum| >= 6 twice: p = 2/8
    p = stats.paired_permutation([[0, 0, 0]], [[1, 2, 3]], 999, stats.rng_for(0, "h"))
    assert p == pytest.approx(0.25, rel=1e-12)
    # zero differences do not count: the same p with tied items added
    p0 = stats.paired_permutation([[0, 0, 0, 5, 5]], [[1, 2, 3, 5, 5]], 999, stats.rng_for(0, "h"))
    assert p0 == pytest.approx(0.25, rel=1e-12)


def test_permutation_p_equals_full_enumeration_on_stratified_groups():
    rng = np.random.default_rng(4)
    a_groups = [rng.random(4), rng.random(6)]
    b_groups = [a_groups[0] + rng.normal(0.3, 0.3, 4), a_groups[1] + rng.normal(0.1, 0.3, 6)]
    b_groups[1][0] = a_groups[1][0]  # a tied item
    p = stats.paired_permutation(a_groups, b_groups, 999, stats.rng_for(0, "e"))
    assert p == pytest.approx(_enumerated_p(a_groups, b_groups), rel=1e-9)


def test_permutation_is_calibrated_and_one_on_identical_inputs():
    x = np.random.default_rng(5).random(50)
    assert stats.paired_permutation([x], [x.copy()], 999, stats.rng_for(0, "i")) == 1.0
    rng = np.random.default_rng(6)
    ps = np.array([stats.paired_permutation([rng.random(10)], [rng.random(10)], 999, rng) for _ in range(300)])
    assert 0.01 <= (ps < 0.05).mean() <= 0.09  # an exact test rejects a true H0 at about alpha
    assert 0.4 <= np.median(ps) <= 0.65  # and its p-values are roughly uniform


def test_monte_carlo_permutation_is_seeded_and_bounded():
    rng = np.random.default_rng(7)
    a = rng.random(200)
    b = a + rng.normal(0.02, 0.2, 200)
    p1 = stats.paired_permutation([a], [b], 2000, stats.rng_for(1, "m"))
    assert p1 == stats.paired_permutation([a], [b], 2000, stats.rng_for(1, "m"))
    assert p1 == pytest.approx(sp.ttest_rel(b, a).pvalue, abs=0.05)  # close to the t-test on 200 items
    far = stats.paired_permutation([a], [a + 0.5 + rng.normal(0, 0.01, 200)], 999, stats.rng_for(1, "f"))
    assert far == pytest.approx(2 / 1000)  # never 0: twice (1 + 0) / (1 + n_perm)


# --- minimum detectable difference ---------------------------------------------------------------------


def _paired_binary(n, n_disc, rng=None):
    """n items of which n_disc discordant, split evenly between the two sides."""
    a = np.zeros(n)
    b = np.zeros(n)
    a[: n_disc // 2] = 1
    b[n_disc // 2: n_disc] = 1
    a[n_disc: n_disc + (n - n_disc) // 2] = b[n_disc: n_disc + (n - n_disc) // 2] = 1
    return a, b


def test_mde_from_discordance():
    a, b = _paired_binary(600, 60)
    m = stats.mde_paired([a], [b], 0.05, 0.8, True)
    assert m["n"] == 600 and m["discordance"] == pytest.approx(0.1) and m["sd_diff"] == pytest.approx(0.1**0.5)
    assert m["mde"] == pytest.approx(2.8 * np.sqrt(0.1 / 600), rel=0.01)
    assert m["mde"] == pytest.approx(0.0362, abs=5e-4)
    # back-substitution: the power at the MDE is the requested power
    assert NormalIndPower().power(m["effect_size"], 600, 0.05, ratio=0) == pytest.approx(0.8, abs=1e-6)
    assert m["mde"] == pytest.approx(m["effect_size"] * m["sd_diff"])
    mdes_n = [stats.mde_paired(*map(lambda x: [x], _paired_binary(n, n // 10)), 0.05, 0.8, True)["mde"]
              for n in (100, 300, 1000)]
    assert mdes_n[0] > mdes_n[1] > mdes_n[2]
    mdes_d = [stats.mde_paired(*map(lambda x: [x], _paired_binary(600, k)), 0.05, 0.8, True)["mde"]
              for k in (20, 60, 200)]
    assert mdes_d[0] < mdes_d[1] < mdes_d[2]


def test_mde_floor_pooling_and_continuous_scores():
    a = np.r_[np.ones(50), np.zeros(50)]
    m = stats.mde_paired([a], [a.copy()], 0.05, 0.8, True)
    assert m["discordance"] == 0 and m["sd_diff"] == pytest.approx(np.sqrt(1 / 100)) and m["mde"] > 0
    a, b = _paired_binary(600, 60)
    one = stats.mde_paired([a], [b], 0.05, 0.8, True)
    halves = stats.mde_paired([a[::2], a[1::2]], [b[::2], b[1::2]], 0.05, 0.8, True)
    assert halves["mde"] == pytest.approx(one["mde"]) and halves["discordance"] == one["discordance"]
    # tasks of unequal size: the MDE of the mean of task means, each task's discordance over its own n
    # (the first 100 items hold all 60 discordant ones)
    unequal = stats.mde_paired([a[:100], a[100:]], [b[:100], b[100:]], 0.05, 0.8, True)
    se = np.sqrt(0.6 / 100 + 0 / 500) / 2
    assert unequal["mde"] == pytest.approx(2.8016 * se, rel=1e-3) and unequal["mde"] > 2.5 * one["mde"]
    rng = np.random.default_rng(8)
    x, y = rng.random(400), rng.random(400)
    c = stats.mde_paired([x], [y], 0.05, 0.8, False)
    assert c["sd_diff"] == pytest.approx(np.std(y - x, ddof=1)) and c["discordance"] == 1.0
    assert c["mde"] == pytest.approx(2.8016 * c["sd_diff"] / 20, rel=1e-3)
    shifted = stats.mde_paired([x], [x + 0.05], 0.05, 0.8, False)  # SD zero up to rounding: the floor
    assert shifted["sd_diff"] == pytest.approx(np.sqrt(1 / 400)) and shifted["discordance"] == 1.0


def test_mde_is_what_mcnemar_detects_with_80_percent_power():
    n, p_disc = 600, 0.1
    a, b = _paired_binary(n, int(n * p_disc))
    mde = stats.mde_paired([a], [b], 0.05, 0.8, True)["mde"]
    rng = np.random.default_rng(9)
    # per item: only the variant right w.p. (p_disc + mde) / 2, only the reference w.p. (p_disc - mde) / 2
    counts = rng.multinomial(n, [(p_disc + mde) / 2, (p_disc - mde) / 2, 1 - p_disc], size=400)
    rejected = 0
    for only_b, only_a, _ in counts:
        ref = np.r_[np.zeros(only_b), np.ones(only_a)]
        var = 1 - ref
        rejected += stats.mcnemar_exact(ref, var)["p"] < 0.05
    assert 0.7 <= rejected / len(counts) <= 0.9


# --- Holm ----------------------------------------------------------------------------------------------


def test_holm_by_hand_and_nan_safe():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> running max 0.02, 0.03, 0.06, 0.06
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    out = stats.holm([0.01, float("nan"), 0.04, 0.03, 0.005])
    assert np.isnan(out[1]) and [out[i] for i in (0, 2, 3, 4)] == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm([0.5, 0.6]) == [1.0, 1.0]
    assert np.isnan(stats.holm([float("nan")])).all() and stats.holm([]) == []


# --- accuracy against chance ---------------------------------------------------------------------------


def test_above_chance_on_four_choice_items():
    good = stats.above_chance(np.r_[np.ones(330), np.zeros(270)], 0.25, 0.05, 0.95)
    assert good["n"] == 600 and good["acc"] == 0.55 and good["chance"] == 0.25 and good["p"] < 1e-30
    assert good["ci_low"] < 0.55 < good["ci_high"] and good["ci_low"] > 0.5
    weak = stats.above_chance(np.r_[np.ones(156), np.zeros(444)], 0.25, 0.05, 0.95)
    assert weak["p"] > 0.05 and weak["ci_low"] < 0.25
    assert weak["p"] == pytest.approx(sp.binomtest(156, 600, 0.25, alternative="greater").pvalue, rel=1e-12)
    # one-sided z-test power: (z_0.95 + z_0.8) / sqrt(n) * sqrt(c (1 - c))
    expected = (sp.norm.ppf(0.95) + sp.norm.ppf(0.8)) / np.sqrt(600) * np.sqrt(0.25 * 0.75)
    assert weak["mde_vs_chance"] == pytest.approx(expected, rel=1e-4)
    lo, hi = sp.binomtest(156, 600).proportion_ci(0.95, method="wilson")
    assert (weak["ci_low"], weak["ci_high"]) == pytest.approx((lo, hi), rel=1e-9)


def test_above_chance_per_item_chance():
    rng = np.random.default_rng(10)
    scores = rng.binomial(1, 0.4, 600).astype(float)
    const = stats.above_chance(scores, np.full(600, 0.25), 0.05, 0.95)
    assert const == stats.above_chance(scores, 0.25, 0.05, 0.95)
    # exact Poisson-binomial tail, checked by enumerating every outcome of 12 items
    k_choices = np.array([2, 3, 4, 5, 2, 3, 4, 5, 4, 4, 2, 3])
    chance = 1 / k_choices
    s = np.array([1, 1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 1], float)
    tail = sum(np.prod(np.where(o, chance, 1 - chance)) for o in itertools.product([0, 1], repeat=12)
               if sum(o) >= s.sum())
    res = stats.above_chance(s, chance, 0.05, 0.95)
    assert res["p"] == pytest.approx(tail, rel=1e-9) and res["chance"] == pytest.approx(stats.chance_level(k_choices))
    # and in the far tail on many items, against a convolution
    chance = 1 / rng.choice([2, 4, 5], 1000)
    scores = (rng.random(1000) < 0.6).astype(float)
    pmf = np.array([1.0])
    for c in chance:
        pmf = np.r_[pmf * (1 - c), 0] + np.r_[0, pmf * c]
    res = stats.above_chance(scores, chance, 0.05, 0.95)
    assert res["p"] == pytest.approx(pmf[int(scores.sum()):].sum(), rel=1e-6) and res["p"] < 1e-10


def test_chance_level():
    assert stats.chance_level([2, 4, 4]) == pytest.approx(1 / 3)
    assert stats.chance_level([4] * 10) == 0.25
    with pytest.raises(ValueError):
        stats.chance_level([])


def test_above_chance_with_zero_chance_is_one_success():
    """LAMBADA-like tasks: guessing never succeeds, so one correct item is evidence and 1/n is detectable."""
    r = stats.above_chance([0, 0, 1, 0], 0.0, 0.05, 0.95)
    assert r["p"] == 0.0 and r["chance"] == 0.0 and r["mde_vs_chance"] == 0.25 and r["acc"] == 0.25
    assert stats.above_chance([0, 0, 0, 0], [0.0] * 4, 0.05, 0.95)["p"] == 1.0
    with pytest.raises(ValueError, match="chance"):
        stats.above_chance([0, 1], [0.0, 0.5], 0.05, 0.95)


def test_noninferiority_bound_inverts_the_test_and_follows_the_better_direction():
    """The one-sided bound and p agree (p < alpha exactly when the bound clears -margin); a variant equal to its
    reference on many items is non-inferior at a margin its noise clears, and a variant that is worse by more
    than the margin is shown inferior. For a lower-is-better metric, a rise is the loss."""
    from edgellm.eval.stats import noninferiority

    rng = np.random.default_rng(3)
    for trial in range(30):
        n, loss = int(rng.integers(100, 800)), float(rng.uniform(0, 0.1))
        ref = (rng.random(n) < 0.6).astype(float)
        var = np.where(rng.random(n) < loss, 0.0, ref)  # the variant forgets a share of the reference's hits
        r = noninferiority([ref], [var], 0.03, True, 2000, 0.05, np.random.default_rng(trial))
        assert (r["ni_p"] < 0.05) == (r["ni_lower"] > -0.03) or abs(r["ni_lower"] + 0.03) < 2e-3, r
        assert r["ni_delta"] == pytest.approx(var.mean() - ref.mean())
    same = (rng.random(2000) < 0.6).astype(float)
    eq = noninferiority([same], [same.copy()], 0.02, True, 2000, 0.05, np.random.default_rng(0))
    assert eq["ni_p"] < 0.001 and eq["inferior_p"] > 0.5
    worse = np.where(rng.random(2000) < 0.25, 0.0, same)  # ~15 points lost
    bad = noninferiority([same], [worse], 0.02, True, 2000, 0.05, np.random.default_rng(0))
    assert bad["ni_p"] > 0.5 and bad["inferior_p"] < 0.001 and bad["ni_upper"] < -0.02
    # hallucination (lower is better): the same worse variant, read as a rate that rose, is the loss
    rate = noninferiority([1 - same], [1 - worse], 0.02, False, 2000, 0.05, np.random.default_rng(0))
    assert rate["ni_delta"] == pytest.approx(bad["ni_delta"]) and rate["inferior_p"] < 0.001
