"""Speed as a ratio measured interleaved: a variant and its reference timed in alternation in one process.

This VM's speed drifts by up to ~25 % between stages run at different times: depth-8-kd and depth-8-kd-4x, two
checkpoints of one architecture, measured 159.5 and 143.1 t/s in separate profile stages. Drift that is slow next
to one repetition cancels in the ratio of neighbouring runs. So both files are loaded at once, and each repetition
times one of them and then the other (pp, then tg, as :mod:`edgellm.devices.bench` times them), the order
alternating between repetitions (AB, BA, AB, ...) so that a drift within a repetition favours neither.

A ratio is the geometric mean of the per-repetition ratios ``speed(a) / speed(b)``, and its interval is the
t-interval of their logarithms: the interval that inverts the paired t-test of the log speeds, so a ratio whose
interval holds 1 is one that test cannot tell from equal speed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy import stats

from ..llamacpp.runtime import Model
from .bench import bench_pp, bench_tg


@dataclass(frozen=True)
class SpeedRatio:
    """One test's ratio of a over b: geometric mean, its t-interval, and the speeds it came from (tokens/s, in
    repetition order; ``a_first``: whether a ran first in that repetition)."""

    test: str
    ratio: float
    low: float
    high: float
    confidence: float
    a_ts: tuple[float, ...]
    b_ts: tuple[float, ...]
    a_first: tuple[bool, ...]

    def to_json(self) -> dict:
        return asdict(self)


def ratio_interval(a_ts: list[float], b_ts: list[float], confidence: float) -> tuple[float, float, float]:
    """Geometric mean of the paired ratios and the t-interval of their logarithms (at least 2 pairs)."""
    logs = np.log(np.asarray(a_ts, dtype=float)) - np.log(np.asarray(b_ts, dtype=float))
    if len(logs) < 2:
        raise ValueError(f"a ratio's interval needs at least 2 repetitions, got {len(logs)}")
    ci = stats.ttest_1samp(logs, 0.0).confidence_interval(confidence)
    return math.exp(float(logs.mean())), math.exp(float(ci.low)), math.exp(float(ci.high))


def interleaved(path_a: str | Path, path_b: str | Path, *, n_prompt: int, n_gen: int, reps: int, threads: int,
                seed: int, confidence: float = 0.95) -> dict[str, SpeedRatio]:
    """pp and tg of ``path_a`` over ``path_b``, timed in alternation: ``reps`` repetitions, each one timed run of
    each file per test, every timed run after its own warm-up (the bench functions make a fresh context per
    call); the first repetition runs a first."""
    rng = np.random.default_rng(seed)
    models = {"a": Model(path_a, n_ctx=n_prompt, n_batch=2048, n_threads=threads),
              "b": Model(path_b, n_ctx=n_prompt, n_batch=2048, n_threads=threads)}
    tests = {f"pp{n_prompt}": lambda m, r: bench_pp(m, n_prompt, threads, r, rng),
             f"tg{n_gen}": lambda m, r: bench_tg(m, n_gen, threads, r, rng)}
    speeds: dict[str, dict[str, list[float]]] = {t: {"a": [], "b": []} for t in tests}
    order = []
    try:
        for i in range(reps):
            first = ("a", "b") if i % 2 == 0 else ("b", "a")
            order.append(first[0] == "a")
            for name, run in tests.items():
                for who in first:
                    # one timed run after the test's own warm-up: bench_* re-create the context each call
                    speeds[name][who].append(run(models[who], 1)["samples_ts"][0])
    finally:
        for m in models.values():
            m.close()
    out = {}
    for name, s in speeds.items():
        ratio, low, high = ratio_interval(s["a"], s["b"], confidence)
        out[name] = SpeedRatio(name, ratio, low, high, confidence, tuple(s["a"]), tuple(s["b"]), tuple(order))
    return out
