"""Uncertainty, paired tests, power and multiple comparisons for per-item scores.

Every variant of a study is scored on the same items, so a compressed variant
is compared with its reference item by item. What each headline number reports:

* an interval: percentile bootstrap, stratified by task for averages over tasks
  (every task keeps its size);
* a paired test of the same difference the interval is for: McNemar's exact
  test for 0/1 scores (only the items on which the two disagree carry
  information; stratified by task, as a sign-flip permutation test, when an
  average over tasks of unequal size weights items unequally) and a sign-flip
  permutation test for continuous scores (MC2), which assumes nothing about
  the shape of the differences;
* a minimum detectable difference (MDE) at the study's alpha and power, from
  the observed discordance, so that "no significant difference" can be read as
  "no difference larger than the MDE", not as "no difference";
* Holm-adjusted p-values over a family of comparisons (or tasks);
* for a task's accuracy: its n, its chance level, an exact one-sided test
  against chance and the smallest gain over chance the task can detect.

Seeds are derived from the study seed and the quantity's name, so a number
does not depend on the order in which the report computes them. Library
implementations (scipy, statsmodels) are used wherever they have the thing.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats as sps
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_confint

POWER = 0.8  # the power at which minimum detectable differences are reported
EXACT_MAX = 16  # permutation test: enumerate all 2**k sign flips up to this many nonzero differences
MIN_FLIPS = 20_000  # Monte Carlo sign flips at least: p resolves 1e-4, so Holm over tens of tests is not capped by it

Groups = Sequence[Sequence[float]]


def rng_for(seed: int, *names: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32("/".join(names).encode())])


def _check_paired(a_groups: Groups, b_groups: Groups) -> None:
    if len(a_groups) != len(b_groups):
        raise ValueError(f"paired comparison needs the same items: {len(a_groups)} vs {len(b_groups)} groups")
    for a, b in zip(a_groups, b_groups):
        if len(a) != len(b):
            raise ValueError(f"paired comparison needs the same items: {len(a)} vs {len(b)}")


def _resample_means(x: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    idx = rng.integers(0, len(x), size=(n_boot, len(x)))
    return x[idx].mean(axis=1)


def bootstrap_ci(groups: Groups, n_boot: int, confidence: float,
                 rng: np.random.Generator) -> tuple[float, float, float]:
    """Mean of the group means (one group: the plain mean) and its percentile bootstrap CI."""
    arrays = [np.asarray(g, dtype=np.float64) for g in groups]
    point = float(np.mean([a.mean() for a in arrays]))
    boots = np.mean([_resample_means(a, n_boot, rng) for a in arrays], axis=0)
    lo, hi = np.quantile(boots, [(1 - confidence) / 2, (1 + confidence) / 2])
    return point, float(lo), float(hi)


def paired_bootstrap(a_groups: Groups, b_groups: Groups, n_boot: int,
                     confidence: float, rng: np.random.Generator) -> dict:
    """Difference of means (b - a) over the same items: CI and a two-sided bootstrap p-value."""
    _check_paired(a_groups, b_groups)
    diffs = [np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64) for a, b in zip(a_groups, b_groups)]
    point = float(np.mean([d.mean() for d in diffs]))
    boots = np.mean([_resample_means(d, n_boot, rng) for d in diffs], axis=0)
    lo, hi = np.quantile(boots, [(1 - confidence) / 2, (1 + confidence) / 2])
    # share of resamples on the other side of zero, doubled (at least 1/n_boot: never exactly 0)
    p = min(1.0, 2 * max(min((boots <= 0).mean(), (boots >= 0).mean()), 1 / n_boot)) if point != 0 else 1.0
    return {"delta": point, "ci_low": float(lo), "ci_high": float(hi), "p": float(p), "test": "paired bootstrap"}


def noninferiority(a_groups: Groups, b_groups: Groups, margin: float, higher: bool, n_boot: int, alpha: float,
                   rng: np.random.Generator) -> dict:
    """Is the variant (b) worse than the reference (a) by less than ``margin``, on the same items?

    The difference is the one :func:`paired_bootstrap` reports (mean of task means, resampled within each task),
    oriented so that positive is better (``higher``: the metric's better direction). Non-inferiority tests
    H0: difference <= -margin one-sidedly, by the share of resamples at or below -margin (at least 1/n_boot);
    ``lower`` is the unadjusted one-sided (1 - alpha) bound (the empirical quantile, not interpolated), which
    inverts the unadjusted test: p < alpha when lower > -margin. The verdict uses the Holm-adjusted p, so a bound
    inside the margin may still be inconclusive. Inferiority is the mirror test (H0: difference >= -margin) with
    ``upper``: a variant shown worse than the margin."""
    _check_paired(a_groups, b_groups)
    sign = 1.0 if higher else -1.0
    diffs = [sign * (np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64))
             for a, b in zip(a_groups, b_groups)]
    boots = np.mean([_resample_means(d, n_boot, rng) for d in diffs], axis=0)
    floor = 1 / n_boot
    return {"ni_margin": float(margin), "ni_delta": float(np.mean([d.mean() for d in diffs])),
            "ni_lower": float(np.quantile(boots, alpha, method="inverted_cdf")),
            "ni_upper": float(np.quantile(boots, 1 - alpha, method="inverted_cdf")),
            "ni_p": float(max((boots <= -margin).mean(), floor)),
            "inferior_p": float(max((boots >= -margin).mean(), floor))}


def mcnemar_exact(a: Sequence[float], b: Sequence[float]) -> dict:
    """McNemar's exact test on paired 0/1 scores (statsmodels).

    Why McNemar: on the same items, the items both get right or both get wrong
    say nothing about which is better; under H0 each discordant item is equally
    likely to favour either side, so the discordant counts are Binomial(n, 1/2)
    and the two-sided exact p-value is 2 * P(X <= min), capped at 1.
    """
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"paired comparison needs the same items: {a.shape} vs {b.shape}")
    only_a = int((a & ~b).sum())  # right before, wrong after
    only_b = int((~a & b).sum())
    table = [[int((a & b).sum()), only_a], [only_b, int((~a & ~b).sum())]]
    p = 1.0 if only_a + only_b == 0 else min(1.0, float(mcnemar(table, exact=True).pvalue))
    return {"delta": float(b.mean() - a.mean()), "only_ref": only_a, "only_variant": only_b, "p": p,
            "test": "McNemar exact"}


def _weighted_diffs(a_groups: Groups, b_groups: Groups) -> np.ndarray:
    """Per-item differences (b - a) weighted so that their sum is the mean of the group means."""
    _check_paired(a_groups, b_groups)
    parts = [(np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64)) / (len(a) * len(a_groups))
             for a, b in zip(a_groups, b_groups)]
    return np.concatenate(parts) if parts else np.zeros(0)


def _sum(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.sum(x, axis=axis)


def paired_permutation(a_groups: Groups, b_groups: Groups, n_perm: int, rng: np.random.Generator) -> float:
    """Two-sided sign-flip permutation p-value for the mean paired difference (b - a).

    Why sign flips: under H0 (the variant is an exchangeable relabelling of the
    reference on every item) each item's difference is as likely to have either
    sign, whatever its size or distribution, so the test needs neither normality
    nor a large n (MC2 differences are bounded and often skewed). The statistic
    is the difference of the mean of group means, as in `paired_bootstrap`: item
    i of group g gets weight 1 / (G * n_g), and flipping the signs of the
    weighted differences is flipping the items. Zero differences do not change
    under a flip and are dropped, so the test is exact (all 2**k flips of the k
    nonzero differences, via scipy) when k <= EXACT_MAX, and otherwise Monte
    Carlo with `n_perm` flips drawn from `rng`; scipy then gives twice the
    smaller one-sided p, each (1 + #as extreme) / (1 + n_perm), capped at 1.
    """
    x = _weighted_diffs(a_groups, b_groups)
    x = x[x != 0]
    if len(x) == 0:
        return 1.0
    exact = len(x) <= EXACT_MAX
    res = sps.permutation_test((x,), _sum, permutation_type="samples", vectorized=True,
                               n_resamples=np.inf if exact else n_perm, alternative="two-sided",
                               batch=None if exact else max(1, 2_000_000 // len(x)), rng=rng)
    return float(min(1.0, res.pvalue))


def _one_sample_effect(n: int, alpha: float, power: float, alternative: str) -> float:
    """Standardized effect (mean / SD) a one-sample z-test on n items detects at alpha and power."""
    return float(NormalIndPower().solve_power(effect_size=None, nobs1=n, alpha=alpha, power=power, ratio=0,
                                              alternative=alternative))


def mde_paired(a_groups: Groups, b_groups: Groups, alpha: float, power: float = POWER,
               binary: bool = True) -> dict:
    """Minimum detectable paired difference (two-sided, at alpha and power), from the observed discordance.

    Why discordance: with paired 0/1 scores only the discordant items carry
    information; each item's difference is in {-1, 0, 1} and under H0 its SD is
    sqrt(p_disc), p_disc the share of items on which the two disagree. Two
    variants that disagree on few items can detect small differences even on a
    modest number of items; two that disagree often cannot. For continuous
    scores the SD is the sample SD of the paired differences. The MDE is the
    standardized effect from statsmodels' one-sample normal power (NormalIndPower,
    ratio=0) times that SD.

    Tasks (groups): the difference compared is that of the mean of task
    means, so its standard error is sqrt(sum_g var_g / n_g) / G, each task's
    variance from its own items (its discordance, or its sample variance). The
    MDE is reported on the total n with the SD that gives that standard error
    ("sd_diff"); with tasks of equal size (or one task) and 0/1 scores this is
    the pooled discordance, and the test that matches it is McNemar's on the
    pooled items.

    Floor: with no discordant item (or, for continuous scores, a zero SD) the
    observed SD would give an MDE of 0, which no finite sample supports; the SD
    is then that of one item differing by the full score scale (p_disc = 1/n,
    SD = sqrt(1/n)). "discordance" reports the observed share (0 then).
    """
    _check_paired(a_groups, b_groups)
    diffs = [np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64)
             for a, b in zip(a_groups, b_groups) if len(a)]
    n = sum(len(d) for d in diffs)
    if n == 0:
        raise ValueError("no items to compare")
    discordance = float(np.mean(np.concatenate(diffs) != 0))
    if binary:
        variances = [float(np.mean(d != 0)) for d in diffs]
    else:
        variances = [float(np.var(d, ddof=1)) if len(d) > 1 else 0.0 for d in diffs]
    se = math.sqrt(sum(v / len(d) for v, d in zip(variances, diffs))) / len(diffs)
    sd = se * math.sqrt(n)
    if sd <= 1e-12:  # zero up to rounding (a constant shift of continuous scores)
        sd = math.sqrt(1 / n)
    effect = _one_sample_effect(n, alpha, power, "two-sided")
    return {"mde": effect * sd, "n": n, "discordance": discordance, "sd_diff": sd, "effect_size": effect}


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values (statsmodels), controlling the family-wise error rate.

    Why Holm: every variant is compared on several metrics (and accuracy is
    tested against chance on several tasks); without a correction some of those
    comparisons come out "significant" by chance alone. Holm controls the
    family-wise error rate with no assumption on dependence and is uniformly
    more powerful than Bonferroni. NaNs (comparisons that were not made) stay
    NaN and are not counted in the family.
    """
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method="holm")[1]
    return [float(x) for x in out]


def chance_level(n_choices_per_item: Sequence[int]) -> float:
    """Expected accuracy of uniform guessing: the mean of 1/k over items with k choices."""
    k = np.asarray(n_choices_per_item, dtype=np.float64)
    if len(k) == 0 or (k < 1).any():
        raise ValueError("every item needs at least one choice")
    return float(np.mean(1 / k))


def _tail_above_chance(k: int, chance: np.ndarray) -> float:
    """P(X >= k) for X the number of correct guesses: binomial, or Poisson-binomial when chance varies."""
    if np.ptp(chance) == 0:
        return float(sps.binomtest(k, len(chance), float(chance[0]), alternative="greater").pvalue)
    return float(min(1.0, sps.poisson_binom.sf(k - 1, chance)))


def above_chance(scores: Sequence[float], chance: float | Sequence[float], alpha: float,
                 confidence: float, power: float = POWER) -> dict:
    """Is a task's accuracy measurably above its chance level?

    One-sided exact test of H0 "the model guesses": the number correct is
    Binomial(n, chance) for a constant chance (scipy's binomtest) and
    Poisson-binomial for per-item chance 1/k_i (scipy's poisson_binom), e.g. for
    tasks whose items have different numbers of choices. The interval is
    Wilson's at `confidence` (statsmodels; near-nominal coverage, inside [0, 1]).
    "mde_vs_chance" is the smallest gain over chance (acc - chance) that a
    one-sided test at alpha detects with the given power on this n (statsmodels'
    one-sample normal power, SD sqrt(mean(c_i (1 - c_i)))): the smallest
    detectable accuracy is chance + mde_vs_chance. The p-value is not adjusted:
    Holm-correct it across tasks (`holm`) before calling a task above chance.

    Chance 0 on every item (LAMBADA: the greedy continuation is one of the whole
    vocabulary's) is allowed: guessing never succeeds, so one correct item
    rejects H0 (p = 0), and the smallest detectable accuracy is 1/n.
    """
    s = np.asarray(scores, dtype=np.float64)
    n = len(s)
    if n == 0:
        raise ValueError("no items")
    if not np.isin(s, (0.0, 1.0)).all():
        raise ValueError("above_chance needs 0/1 scores")
    c = np.broadcast_to(np.asarray(chance, dtype=np.float64), s.shape)
    k = int(s.sum())
    lo, hi = proportion_confint(k, n, alpha=1 - confidence, method="wilson")
    if c.shape == s.shape and (c == 0).all():
        return {"n": n, "acc": k / n, "chance": 0.0, "p": 0.0 if k else 1.0, "ci_low": float(lo),
                "ci_high": float(hi), "mde_vs_chance": 1 / n}
    if c.shape != s.shape or ((c <= 0) | (c >= 1)).any():
        raise ValueError("chance must be in (0, 1), one value or one per item (or 0 on every item)")
    sd0 = math.sqrt(float(np.mean(c * (1 - c))))
    return {"n": n, "acc": k / n, "chance": float(c.mean()), "p": _tail_above_chance(k, c),
            "ci_low": float(lo), "ci_high": float(hi),
            "mde_vs_chance": _one_sample_effect(n, alpha, power, "larger") * sd0}


def above_chance_mean(scores: Sequence[float], chance: float | Sequence[float], alpha: float, confidence: float,
                      rng: np.random.Generator, power: float = POWER) -> dict:
    """:func:`above_chance` for a score in [0, 1] that is not 0/1 (TruthfulQA MC2: the probability mass on the true
    answers, whose chance is each item's share of true answers): one-sided sign-flip permutation test of the
    items' excess over their chance (H0: symmetric around 0), the percentile-bootstrap interval of the mean score,
    and the smallest detectable excess (one-sample normal power on the excesses' SD)."""
    s = np.asarray(scores, dtype=np.float64)
    if len(s) == 0:
        raise ValueError("no items")
    c = np.broadcast_to(np.asarray(chance, dtype=np.float64), s.shape)
    d = s - c
    flips = rng.choice((-1.0, 1.0), size=(MIN_FLIPS, len(d)))
    p = (1 + int(((flips * d).mean(axis=1) >= d.mean()).sum())) / (MIN_FLIPS + 1)
    boots = _resample_means(s, MIN_FLIPS // 10, rng)
    lo, hi = np.quantile(boots, [(1 - confidence) / 2, (1 + confidence) / 2])
    return {"n": len(s), "acc": float(s.mean()), "chance": float(c.mean()), "p": float(p), "ci_low": float(lo),
            "ci_high": float(hi), "mde_vs_chance": _one_sample_effect(len(s), alpha, power, "larger") * float(d.std())}


def compare(ref: Mapping[str, Sequence[float]], var: Mapping[str, Sequence[float]], binary: bool, n_boot: int,
            confidence: float, alpha: float, rng: np.random.Generator, power: float = POWER) -> dict:
    """A variant against its reference on the same items of one or more tasks.

    The delta is the difference of the mean of task means, with the paired
    bootstrap's CI; the p-value tests that same difference, so that a CI and
    its p never disagree: for 0/1 scores on tasks of equal size (or one task)
    McNemar's exact test on the pooled items, otherwise the sign-flip
    permutation test on the task-weighted differences (at least MIN_FLIPS
    flips when not exact; for 0/1 scores a McNemar test stratified by task, each discordant
    item weighted by 1 / its task's size); "test" names the one used. "mde" is
    the minimum detectable difference of that statistic at alpha and `power`;
    for 0/1 scores "only_ref"/"only_variant" count the discordant items and
    "discordance" is their share.
    """
    tasks = sorted(ref)
    a_groups, b_groups = [ref[t] for t in tasks], [var[t] for t in tasks]
    out = dict(paired_bootstrap(a_groups, b_groups, n_boot, confidence, rng))
    flips = max(n_boot, MIN_FLIPS)
    if binary:
        mc = mcnemar_exact(np.concatenate(a_groups), np.concatenate(b_groups))
        out |= {"only_ref": mc["only_ref"], "only_variant": mc["only_variant"]}
        if len({len(g) for g in a_groups}) == 1:
            out |= {"p": mc["p"], "test": mc["test"]}
        else:
            out |= {"p": paired_permutation(a_groups, b_groups, flips, rng), "test": "stratified sign-flip permutation"}
    else:
        out |= {"p": paired_permutation(a_groups, b_groups, flips, rng), "test": "paired sign-flip permutation"}
    m = mde_paired(a_groups, b_groups, alpha, power, binary)
    out["mde"] = m["mde"]
    if binary:
        out["discordance"] = m["discordance"]
    out["significant"] = bool(out["p"] < alpha)
    return out
