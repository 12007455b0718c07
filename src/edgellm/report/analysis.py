"""Analyses across variants: the Pareto front of size against quality, and distillation's recovery."""

from __future__ import annotations

import pandas as pd

from ..config import Params


def pareto_front(df: pd.DataFrame, x: str, y: str, higher_is_better: bool) -> pd.DataFrame:
    """The variants no other variant beats on both size and quality."""
    pts = df[df[x].notna() & df[y].notna()].sort_values([x, y], ascending=[True, not higher_is_better])
    keep, best = [], None
    for i, r in pts.iterrows():
        if best is None or (r[y] > best if higher_is_better else r[y] < best):
            keep.append(i)
            best = r[y]
    return pts.loc[keep]


RECOVERY_COLUMNS = ["variant", "base", "type", "recipe", "distill_tokens", "distill_seconds", "base_variant",
                    "pruned_variant", "ppl_base", "ppl_pruned", "ppl_distilled", "ppl_recovered_share",
                    "gen_acc_base", "gen_acc_pruned", "gen_acc_distilled", "gen_acc_recovered_share",
                    "kld_pruned", "kld_distilled"]


def recovery(df: pd.DataFrame, params: Params) -> pd.DataFrame:
    """How much of the loss from pruning distillation wins back, per distilled variant.

    A distilled recipe is paired with the recipe that applies the same pruning
    without distillation, on the same base model and GGUF type, and with the
    base model at that type where the study has it:
    recovered = (PPL_pruned - PPL_distilled) / (PPL_pruned - PPL_base).
    """
    recipes = params.compress.recipes
    out = []
    for _, r in df[df["recipe"] != ""].iterrows():
        spec = recipes[r["recipe"]]
        if spec.distill is None or spec.prune is None:
            continue
        twins = [n for n, s in recipes.items() if s.distill is None and s.prune == spec.prune]
        pruned = df[(df["recipe"].isin(twins)) & (df["base"] == r["base"]) & (df["type"] == r["type"])]
        base = df[(df["recipe"] == "") & (df["model"] == r["base"]) & (df["type"] == r["type"])]
        row = {"variant": r["variant"], "base": r["base"], "type": r["type"], "recipe": r["recipe"],
               "ppl_distilled": r["ppl"], "gen_acc_distilled": r["gen_acc"], "kld_distilled": r["kld"],
               "distill_tokens": r["distill_tokens"], "distill_seconds": r["distill_seconds"]}
        if len(pruned):
            p = pruned.iloc[0]
            row |= {"pruned_variant": p["variant"], "ppl_pruned": p["ppl"], "gen_acc_pruned": p["gen_acc"],
                    "kld_pruned": p["kld"]}
        if len(base):
            b = base.iloc[0]
            row |= {"base_variant": b["variant"], "ppl_base": b["ppl"], "gen_acc_base": b["gen_acc"]}
        if len(pruned) and len(base):
            lost = row["ppl_pruned"] - row["ppl_base"]
            row["ppl_recovered_share"] = (row["ppl_pruned"] - row["ppl_distilled"]) / lost if lost > 0 else None
            lost_acc = row["gen_acc_base"] - row["gen_acc_pruned"]
            row["gen_acc_recovered_share"] = ((row["gen_acc_distilled"] - row["gen_acc_pruned"]) / lost_acc
                                              if lost_acc > 0 else None)
        out.append(row)
    return pd.DataFrame(out, columns=RECOVERY_COLUMNS)


#: the recovery columns the DVC metrics summary carries
RECOVERY_METRICS = ("ppl_base", "ppl_pruned", "ppl_distilled", "ppl_recovered_share", "gen_acc_base",
                    "gen_acc_pruned", "gen_acc_distilled", "distill_seconds")


def recovery_summary(rec: pd.DataFrame) -> dict:
    """The recovery table as ``metrics/summary.json`` carries it: variant -> rounded values."""
    return {r["variant"]: {k: (None if pd.isna(r.get(k)) else round(float(r[k]), 6)) for k in RECOVERY_METRICS
                           if k in r} for _, r in rec.iterrows()}
