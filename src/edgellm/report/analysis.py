"""Analyses across variants: the Pareto front of size against quality, distillation's recovery, and which
speed differences exceed their noise."""

from __future__ import annotations

import math

import pandas as pd

from ..config import Params


def faster_beyond_noise(a: pd.Series, b: pd.Series, col: str) -> bool:
    """Variant ``a`` faster than ``b`` in ``col`` (``pp_ts``, ``tg_ts``) by more than twice the standard error of
    the difference of their means (llama-bench's repetitions, ``<col>_sd``): the study's rule for "faster"."""
    se = math.sqrt((a[f"{col}_sd"] ** 2 + b[f"{col}_sd"] ** 2) / max(int(a.get("repetitions") or 1), 1))
    return bool(a[col] - b[col] > 2 * se)


def speed_verdict(faster: int, slower: int, n: int) -> str:
    """"faster" when more than half of ``n`` variants are faster than their reference beyond noise, "slower"
    when more than half are slower, else "mixed"."""
    return "faster" if faster > n / 2 else "slower" if slower > n / 2 else "mixed"


def pareto_front(df: pd.DataFrame, x: str, y: str, higher_is_better: bool) -> pd.DataFrame:
    """The variants no other variant beats on both size and quality."""
    pts = df[df[x].notna() & df[y].notna()].sort_values([x, y], ascending=[True, not higher_is_better])
    keep, best = [], None
    for i, r in pts.iterrows():
        if best is None or (r[y] > best if higher_is_better else r[y] < best):
            keep.append(i)
            best = r[y]
    return pts.loc[keep]


RECOVERY_COLUMNS = ["variant", "base", "type", "recipe", "method", "distill_tokens", "distill_seconds",
                    "heldout_kl_before", "heldout_kl_after", "kl_recovered_share", "base_variant", "ppl_base",
                    "ppl_distilled", "kld_distilled", "gen_acc_base", "gen_acc_distilled"]


def recovery(df: pd.DataFrame, params: Params) -> pd.DataFrame:
    """How much of the damage of pruning distillation repairs, per distilled variant (at ``compress.types``).

    The distillation run measures its student's KL divergence to the teacher on held-out calibration rows before
    the first step (the pruned model) and after the last (the distilled model): recovered = 1 - after / before.
    Beside it: the variant's WikiText-2 perplexity, KL and accuracy, and the base model's at the same type.
    """
    out = []
    sub = df[(df["recipe"] != "") & df["type"].isin(params.compress.types)]
    for _, r in sub.iterrows():
        spec = params.compress.recipes[r["recipe"]]
        if spec.distill is None:
            continue
        base = df[(df["recipe"] == "") & (df["model"] == r["base"]) & (df["type"] == r["type"])]
        before, after = r["heldout_kl_before"], r["heldout_kl"]
        row = {"variant": r["variant"], "base": r["base"], "type": r["type"], "recipe": r["recipe"],
               "method": r["method"], "distill_tokens": r["distill_tokens"], "distill_seconds": r["distill_seconds"],
               "heldout_kl_before": before, "heldout_kl_after": after,
               "kl_recovered_share": (1 - after / before) if before and pd.notna(after) else None,
               "ppl_distilled": r["ppl"], "kld_distilled": r["kld"], "gen_acc_distilled": r["gen_acc"]}
        if len(base):
            b = base.iloc[0]
            row |= {"base_variant": b["variant"], "ppl_base": b["ppl"], "gen_acc_base": b["gen_acc"]}
        out.append(row)
    return pd.DataFrame(out, columns=RECOVERY_COLUMNS)


#: the recovery columns the DVC metrics summary carries
RECOVERY_METRICS = ("heldout_kl_before", "heldout_kl_after", "kl_recovered_share", "ppl_base", "ppl_distilled",
                    "gen_acc_base", "gen_acc_distilled", "distill_seconds")


def recovery_summary(rec: pd.DataFrame) -> dict:
    """The recovery table as ``metrics/summary.json`` carries it: variant -> rounded values."""
    return {r["variant"]: {k: (None if pd.isna(r.get(k)) else round(float(r[k]), 6)) for k in RECOVERY_METRICS
                           if k in r} for _, r in rec.iterrows()}
