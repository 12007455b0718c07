"""Speed ratios timed interleaved (``edgellm.devices.speed_ratio``) on the tiny model's files."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from edgellm.devices.speed_ratio import interleaved, ratio_interval


def test_the_interval_inverts_the_paired_t_test_of_log_speeds():
    a, b = [110.0, 96.0, 104.0, 121.0, 99.0], [100.0, 100.0, 95.0, 110.0, 101.0]
    ratio, low, high = ratio_interval(a, b, 0.95)
    d = np.log(a) - np.log(b)
    assert ratio == pytest.approx(math.exp(d.mean()))
    half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
    assert (low, high) == pytest.approx((math.exp(d.mean() - half), math.exp(d.mean() + half)))
    # the interval holds 1 exactly when the paired t-test of the log speeds does not reject at 5 %
    p = stats.ttest_rel(np.log(a), np.log(b)).pvalue
    assert (low <= 1 <= high) == (p >= 0.05)
    with pytest.raises(ValueError, match="at least 2 repetitions"):
        ratio_interval([1.0], [1.0], 0.95)


def test_two_files_timed_in_alternation(tiny_gguf):
    res = interleaved(tiny_gguf["Q4_K_M"], tiny_gguf["F16"], n_prompt=32, n_gen=8, reps=3, threads=2, seed=0)
    assert set(res) == {"pp32", "tg8"}
    for r in res.values():
        assert r.a_first == (True, False, True) and len(r.a_ts) == len(r.b_ts) == 3
        assert all(x > 0 for x in r.a_ts + r.b_ts)
        assert (r.ratio, r.low, r.high) == pytest.approx(ratio_interval(list(r.a_ts), list(r.b_ts), 0.95))
        assert r.low <= r.ratio <= r.high and r.to_json()["test"] == r.test
