"""Confidence intervals and paired tests, checked against scipy and against what they must do."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sp

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
    assert cont["test"] == "paired bootstrap" and cont["ci_low"] < cont["delta"] < cont["ci_high"]
    with pytest.raises(ValueError, match="same items"):
        stats.compare({"t": ref}, {"t": ref[:-1]}, False, 100, 0.95, 0.05, stats.rng_for(0, "e"))
