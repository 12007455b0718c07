"""Which tasks may enter "generalization accuracy": those on which the base model is measurably above chance.

A task at chance measures nothing about compression: every variant scores
chance plus noise there, and averaging it in dilutes real differences (the
study's first version averaged MMLU at 0.25 on four choices into its
headline). So the headline is chosen by data, per base model: each candidate
task's base accuracy (the model at ``evaluate.kl_base``) is tested against
the items' chance level with a one-sided exact test (binomial, or
Poisson-binomial when items have different numbers of choices), the p-values
are Holm-adjusted across the candidates, and a task enters when its adjusted
p is below ``report.alpha``. Every candidate stays in the results, marked.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..config import Params
from ..eval import stats

SCREEN_COLUMNS = ["model", "reference", "task", "n", "acc", "ci_low", "ci_high", "chance", "mde_vs_chance", "p",
                  "p_holm", "above_chance", "in_headline"]


def candidates(params: Params) -> list[str]:
    """The tasks the headline may average: ``report.generalization`` (validated to be evaluated, not generative)."""
    return list(params.report.generalization)


def screen(params: Params, scores: dict[str, dict], chance: dict[str, dict[str, np.ndarray]]) -> pd.DataFrame:
    """One row per base model and candidate task: base accuracy against chance, Holm across the candidates.

    ``scores``: variant -> metric -> task -> per-item array (``<task>_acc`` metrics);
    ``chance``: variant -> task -> per-item chance level.
    """
    rep = params.report
    rows = []
    for m in params.models:
        ref = f"{m}-{params.evaluate.kl_base}"
        block = []
        for t in candidates(params):
            acc = scores[ref][f"{t}_acc"][t]
            r = stats.above_chance(acc, chance[ref][t], rep.alpha, rep.confidence, rep.power)
            block.append({"model": m, "reference": ref, "task": t, **r})
        for row, p in zip(block, stats.holm([r["p"] for r in block])):
            row["p_holm"] = p
            row["above_chance"] = bool(p < rep.alpha)
            row["in_headline"] = row["above_chance"]
        rows += block
    return pd.DataFrame(rows, columns=SCREEN_COLUMNS)


def headline_tasks(table: pd.DataFrame) -> dict[str, list[str]]:
    """base model -> the tasks its variants' generalization accuracy averages, in the study's task order."""
    return {m: list(g.loc[g["in_headline"], "task"]) for m, g in table.groupby("model", sort=False)}
