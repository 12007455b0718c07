"""Uncertainty and paired tests for per-item scores.

Every variant of a study is scored on the same items, so a compressed variant
is compared with its reference item by item: McNemar's exact test for 0/1
scores (only the items on which the two disagree carry information) and a
paired bootstrap for continuous scores (MC2) and for averages over tasks.
Confidence intervals are percentile bootstrap intervals; resampling is
stratified by task for averages over tasks, so every task keeps its size.
Seeds are derived from the study seed and the quantity's name, so a number
does not depend on the order in which the report computes them.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence

import numpy as np


def rng_for(seed: int, *names: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32("/".join(names).encode())])


def _resample_means(x: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    idx = rng.integers(0, len(x), size=(n_boot, len(x)))
    return x[idx].mean(axis=1)


def bootstrap_ci(groups: Sequence[Sequence[float]], n_boot: int, confidence: float,
                 rng: np.random.Generator) -> tuple[float, float, float]:
    """Mean of the group means (one group: the plain mean) and its percentile bootstrap CI."""
    arrays = [np.asarray(g, dtype=np.float64) for g in groups]
    point = float(np.mean([a.mean() for a in arrays]))
    boots = np.mean([_resample_means(a, n_boot, rng) for a in arrays], axis=0)
    lo, hi = np.quantile(boots, [(1 - confidence) / 2, (1 + confidence) / 2])
    return point, float(lo), float(hi)


def paired_bootstrap(a_groups: Sequence[Sequence[float]], b_groups: Sequence[Sequence[float]], n_boot: int,
                     confidence: float, rng: np.random.Generator) -> dict:
    """Difference of means (b - a) over the same items: CI and a two-sided bootstrap p-value."""
    for a, b in zip(a_groups, b_groups):
        if len(a) != len(b):
            raise ValueError(f"paired comparison needs the same items: {len(a)} vs {len(b)}")
    diffs = [np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64) for a, b in zip(a_groups, b_groups)]
    point = float(np.mean([d.mean() for d in diffs]))
    boots = np.mean([_resample_means(d, n_boot, rng) for d in diffs], axis=0)
    lo, hi = np.quantile(boots, [(1 - confidence) / 2, (1 + confidence) / 2])
    # share of resamples on the other side of zero, doubled (at least 1/n_boot: never exactly 0)
    p = min(1.0, 2 * max(min((boots <= 0).mean(), (boots >= 0).mean()), 1 / n_boot)) if point != 0 else 1.0
    return {"delta": point, "ci_low": float(lo), "ci_high": float(hi), "p": float(p), "test": "paired bootstrap"}


def mcnemar_exact(a: Sequence[float], b: Sequence[float]) -> dict:
    """McNemar's exact test on paired 0/1 scores: the discordant items under Binomial(n, 1/2)."""
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"paired comparison needs the same items: {a.shape} vs {b.shape}")
    only_a = int((a & ~b).sum())  # right before, wrong after
    only_b = int((~a & b).sum())
    n = only_a + only_b
    k = min(only_a, only_b)
    p = 1.0 if n == 0 else min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n)
    return {"delta": float(b.mean() - a.mean()), "only_ref": only_a, "only_variant": only_b, "p": p,
            "test": "McNemar exact"}


def compare(ref: Mapping[str, Sequence[float]], var: Mapping[str, Sequence[float]], binary: bool, n_boot: int,
            confidence: float, alpha: float, rng: np.random.Generator) -> dict:
    """A variant against its reference on the same items of one or more tasks.

    0/1 scores: McNemar on the pooled items (the p-value), plus the paired
    bootstrap CI of the difference of task means; continuous scores: the paired
    bootstrap gives both.
    """
    tasks = sorted(ref)
    boot = paired_bootstrap([ref[t] for t in tasks], [var[t] for t in tasks], n_boot, confidence, rng)
    out = dict(boot)
    if binary:
        mc = mcnemar_exact(np.concatenate([ref[t] for t in tasks]), np.concatenate([var[t] for t in tasks]))
        out |= {"p": mc["p"], "test": mc["test"], "only_ref": mc["only_ref"], "only_variant": mc["only_variant"]}
    out["significant"] = bool(out["p"] < alpha)
    return out
