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

SCREEN_COLUMNS = ["model", "reference", "task", "role", "n", "acc", "ci_low", "ci_high", "chance", "mde_vs_chance",
                  "p", "p_holm", "above_chance", "in_headline"]
#: the hallucination metrics' tasks, tested against chance like every task (their own Holm family): a metric whose
#: task the reference does not score above chance carries no claim. -> the headline metric each gives
HALLUCINATION_TASKS = {"truthfulqa_mc1": "halluc_mc1", "truthfulqa_mc2": "mc2"}


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
            block.append({"model": m, "reference": ref, "task": t, "role": "generalization", **r})
        hal = []
        for t, metric in HALLUCINATION_TASKS.items():
            # MC1's per-item accuracy, MC2's mass on the true answers (item_scores files it as the metric mc2)
            per_item = scores[ref].get(f"{t}_acc") or scores[ref].get(metric if metric == "mc2" else "")
            if per_item is None or t not in per_item:
                continue
            acc, c = per_item[t], chance[ref][t]
            binary = bool(np.isin(acc, (0.0, 1.0)).all())
            r = (stats.above_chance(acc, c, rep.alpha, rep.confidence, rep.power) if binary else
                 stats.above_chance_mean(acc, c, rep.alpha, rep.confidence, stats.rng_for(params.seed, ref, t),
                                         rep.power))
            hal.append({"model": m, "reference": ref, "task": t, "role": "hallucination", **r})
        for family in (block, hal):
            for row, p in zip(family, stats.holm([r["p"] for r in family])):
                row["p_holm"] = p
                row["above_chance"] = bool(p < rep.alpha)
                row["in_headline"] = row["above_chance"] and row["role"] == "generalization"
        rows += block + hal
    return pd.DataFrame(rows, columns=SCREEN_COLUMNS)


def metrics_at_chance(table: pd.DataFrame) -> dict[str, set[str]]:
    """base model -> the hallucination metrics whose task its reference does not score above chance (no claim)."""
    hal = table[table["role"] == "hallucination"]
    return {m: {HALLUCINATION_TASKS[t] for t in g.loc[~g["above_chance"].astype(bool), "task"]}
            for m, g in hal.groupby("model", sort=False)}


def headline_tasks(table: pd.DataFrame) -> dict[str, list[str]]:
    """base model -> the tasks its variants' generalization accuracy averages, in the study's task order."""
    return {m: list(g.loc[g["in_headline"], "task"]) for m, g in table.groupby("model", sort=False)}
