"""Energy per correct answer: what a truthful answer costs on each device, with every band carried through.

Energy per token alone rewards a model that answers fast and wrongly. Here each
deployed variant's TruthfulQA generation is priced on every fleet device:

- an answer costs its prompt (``prompt_tokens`` of the study's few-shot prompt,
  processed at the device's pp speed) and its generated tokens (at its tg
  speed), both from the variant's own answers (``results/items``), times the
  device's power under load;
- a correct answer is a truthful one, at the hallucination rate corrected for
  the judge's measured error (``results/hallucination.json``);
- the band: the cheapest end takes the fastest ends of both speed bands, the
  lowest power and the highest truthful rate of its interval; the dearest end the
  opposite. A device whose power is the profile's guess is labelled an estimate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from .latex import Tex, latex_table

TASK = "truthfulqa_gen"


def tokens_per_answer(items: Mapping[str, list[dict]]) -> tuple[float, float]:
    """(prompt tokens, generated tokens) per answer of a variant's TruthfulQA generation items."""
    rows = items[TASK]
    return float(np.mean([r["prompt_tokens"] for r in rows])), float(np.mean([len(r["tokens"]) for r in rows]))


def answer_energy(best: pd.DataFrame, tokens: Mapping[str, tuple[float, float]],
                  truthful: Mapping[str, tuple[float, float, float]]) -> pd.DataFrame:
    """Per deployed variant and fleet device: joules per answer and per truthful answer, with their bands.

    ``tokens``: variant -> (prompt, generated) tokens per answer; ``truthful``: variant -> (rate, low, high) of
    truthful answers, corrected for the judge's error.
    """
    rows = []
    for r in best.itertuples():
        if r.variant not in tokens or r.variant not in truthful:
            continue
        prompt, gen = tokens[r.variant]
        rate, lo, hi = truthful[r.variant]
        pp_lo, pp_hi = r.pp_ts / r.pp_band, r.pp_ts * r.pp_band
        mid_w = math.sqrt(r.power_w_low * r.power_w_high)
        j = mid_w * (prompt / r.pp_ts + gen / r.tg_ts)
        j_lo = r.power_w_low * (prompt / pp_hi + gen / r.tg_high)
        j_hi = r.power_w_high * (prompt / pp_lo + gen / r.tg_low)
        rows.append({"variant": r.variant, "device": r.device, "backend": r.backend,
                     "prompt_tokens": prompt, "generated_tokens": gen,
                     "j_per_answer": j, "j_per_answer_low": j_lo, "j_per_answer_high": j_hi,
                     "truthful": rate, "truthful_low": lo, "truthful_high": hi,
                     "j_per_correct": j / rate if rate > 0 else math.inf,
                     "j_per_correct_low": j_lo / hi if hi > 0 else math.inf,
                     "j_per_correct_high": j_hi / lo if lo > 0 else math.inf,
                     "estimate": str(r.power_source).startswith("estimated"), "power_source": r.power_source})
    return pd.DataFrame(rows)


def answer_energy_table(df: pd.DataFrame) -> str:
    """Joules per truthful answer, variants down and devices across, each with its band."""
    variants, devices = list(dict.fromkeys(df.variant)), list(dict.fromkeys(df.device))
    idx = df.set_index(["variant", "device"])

    def num(x: float) -> str:
        return "--" if math.isinf(x) else f"{x:.0f}" if x >= 100 else f"{x:.2g}"

    def cell(v: str, d: str) -> Tex:
        r = idx.loc[(v, d)]
        return Tex(f"{num(r.j_per_correct)} ({num(r.j_per_correct_low)}--{num(r.j_per_correct_high)})"
                   + ("$^{e}$" if r.estimate else ""))

    body = [[v, f"{idx.loc[(v, devices[0]), 'truthful']:.2f}", *[cell(v, d) for d in devices]] for v in variants]
    return latex_table(
        ["Variant", "Truthful", *devices], body,
        "Energy per truthful answer (joules) on TruthfulQA generation: the variant's own prompt and generated tokens "
        "per answer at the device's projected prompt and generation speeds, times its power under load, divided by "
        "the truthful rate corrected for the judge's measured error. In parentheses: the band, from the fastest "
        "speeds, lowest power and highest truthful rate of their intervals to the opposite ends. $^{e}$ an estimate: "
        "the device's power is its profile's guess, not a published measurement.",
        "tab:answer-energy", "lr" + "r" * len(devices))
