"""The generated answers in the report: the audit sample, every judge against the labelled answers, the rates
corrected for the chosen judge's error, and the paper's numbers about them (the judge stage's
results/hallucination.json)."""

from __future__ import annotations

import pandas as pd

from ..config import Params
from ..eval.judge import audit_sample
from ..io import read_json
from ..paths import Layout
from .latex import fmt_grouped, tex_escape

def judge_audit(params: Params, lay: Layout) -> pd.DataFrame:
    """A seeded sample of generated answers (the same questions for every variant) with every verdict,
    so that a reader can check the judges by eye."""
    judged = read_json(lay.judged) if lay.judged.is_file() else {}
    rows = audit_sample(judged.get("variants", {}), params.report.audit_answers, params.seed)
    return pd.DataFrame(rows)


JUDGE_COLUMNS = ["target", "judge", "chosen", "n", "positives", "accuracy", "sensitivity", "specificity", "kappa"]


def judge_labels(lay: Layout) -> pd.DataFrame:
    """Every judge against the labelled answers (the judge stage's calibration): per target (truthful,
    informative) and judge, n, positives, accuracy, sensitivity, specificity and kappa, and which judge the
    rates use (the calibrated judge's numbers are out of fold)."""
    cal = (read_json(lay.judged) if lay.judged.is_file() else {}).get("calibration", {})
    rows = [{"target": t, "judge": j, "chosen": j == cal[t]["chosen"], **m}
            for t in ("truthful", "informative") if t in cal for j, m in cal[t]["judges"].items()]
    return pd.DataFrame(rows, columns=JUDGE_COLUMNS)


def corrected_hallucination(lay: Layout) -> pd.DataFrame:
    """Per variant and generative task: the hallucination rate by the chosen judge, observed and corrected for
    its error on the labelled answers, with the interval that resamples both (the judge stage's)."""
    judged = read_json(lay.judged) if lay.judged.is_file() else {}
    rows = [{"variant": v, "task": t, **r} for v, tasks in sorted(judged.get("corrected", {}).items())
            for t, r in tasks.items()]
    return pd.DataFrame(rows, columns=["variant", "task", "judge", "n", "observed", "corrected", "low", "high",
                                       "resamples", "undefined"])


def cap_numbers(lay: Layout) -> dict[str, tuple]:
    """What the generation cap cuts, measured on every variant's answers: the share cut at the cap, the share
    of those that are repetition loops, and the longest answer that ended by itself (tokens)."""
    judged = read_json(lay.judged) if lay.judged.is_file() else {}
    rows = [r for tasks in judged.get("variants", {}).values() for t in tasks.values() for r in t["items"]]
    cut = [r for r in rows if r.get("stop") == "length"]
    natural = [r["tokens"] for r in rows if r.get("stop") != "length"]
    src = f"{lay.judged.relative_to(lay.root).as_posix()}: stop, tokens, degenerate (every variant's answers)"
    pct = lambda x: fmt_grouped(100 * x, 1)
    return {"nAnswersAll": (len(rows), src),
            "capCutPct": (pct(len(cut) / len(rows)) if rows else "--", src),
            "capCutLoopPct": (pct(sum(bool(r.get("degenerate")) for r in cut) / len(cut)) if cut else "--", src),
            "naturalMaxTokens": (max(natural) if natural else "--", src)}


#: how the tables and the text name each judge
JUDGE_NAMES = {"rougeL": "ROUGE-L", "bleu": "BLEU", "embed": "embedding", "lm": "likelihood",
               "calibrated": "calibrated", "rule": "rule"}
#: every macro :func:`judge_numbers` defines, "--" where the study has no calibration (the paper still builds)
JUDGE_MACROS = ("goldN", "judgeFolds", "goldTruthful", "goldInformative",
                *(f"{k}{x}" for k in ("truth", "inf") for x in ("Judge", "Kappa", "Sens", "Spec")),
                "truthKappaRougeL", "truthKappaBleu", "truthKappaEmbed", "truthKappaLm", "truthKappaCalibrated",
                "truthKappaCalibratedLm", "infKappaRule", "infKappaCalibrated", "likelihoodModel",
                "refHallucObserved", "refHallucCorrected", "refHallucLow", "refHallucHigh")


def judge_numbers(lay: Layout, ref_name: str) -> dict[str, tuple]:
    """The judges against the labelled answers (the judge stage's calibration): the labels' size, each target's
    chosen judge with its agreement, the similarity judges' and the calibrated judge's kappa, and the first
    model's reference's hallucination rate observed and corrected."""
    judged = read_json(lay.judged) if lay.judged.is_file() else {}
    cal = judged.get("calibration")
    src = f"{lay.judged.relative_to(lay.root).as_posix()}: calibration"
    out = {k: ("--", f"{src} (none: no labelled answers or no embedding judge)") for k in JUDGE_MACROS}
    if not cal:
        return out
    f = lambda x: fmt_grouped(x, 2)
    out |= {"goldN": (cal["gold"]["n"], f"{src}.gold.n"), "judgeFolds": (cal["folds"], f"{src}.folds"),
           "goldTruthful": (sum(cal["truthful"]["labels"]), f"{src}.truthful.labels (sum)"),
           "goldInformative": (sum(cal["informative"]["labels"]), f"{src}.informative.labels (sum)")}
    for target, key in (("truthful", "truth"), ("informative", "inf")):
        t = cal[target]
        chosen = t["judges"][t["chosen"]]
        out |= {f"{key}Judge": (JUDGE_NAMES[t["chosen"]], f"{src}.{target}.chosen"),
                f"{key}Kappa": (f(chosen["kappa"]), f"{src}.{target}.judges.<chosen>.kappa"),
                f"{key}Sens": (f(chosen["sensitivity"]), f"{src}.{target}.judges.<chosen>.sensitivity"),
                f"{key}Spec": (f(chosen["specificity"]), f"{src}.{target}.judges.<chosen>.specificity")}
        for j, m in t["judges"].items():
            out[f"{key}Kappa{j[0].upper()}{j[1:]}"] = (f(m["kappa"]), f"{src}.{target}.judges.{j}.kappa")
    ablation = cal["truthful"].get("with_likelihood")
    if ablation:
        out["truthKappaCalibratedLm"] = (f(ablation["kappa"]), f"{src}.truthful.with_likelihood.kappa")
    model = judged.get("judges", {}).get("likelihood")
    if model:
        out["likelihoodModel"] = (tex_escape(model.split(":")[0]), f"{lay.judged.relative_to(lay.root).as_posix()}: "
                                                                   "judges.likelihood")
    ref = judged.get("corrected", {}).get(ref_name, {}).get("truthfulqa_gen")
    if ref:
        at = f"{lay.judged.relative_to(lay.root).as_posix()}: corrected.{ref_name}.truthfulqa_gen"
        out |= {f"refHalluc{k.capitalize()}": (fmt_grouped(ref[k], 3), f"{at}.{k}")
                for k in ("observed", "corrected", "low", "high")}
    return out
