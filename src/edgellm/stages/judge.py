"""Stage ``judge``: every variant's generated answers judged at once (lm-eval's lexical judges, embeddings, a
language model's likelihood of the references, and a judge calibrated on labelled answers), each judge measured
against those labels, and the hallucination rates corrected for the chosen judge's error.

One stage for all variants: the embedding and likelihood models are loaded once (``embed=False``: neither; the
likelihood judge is measured on the labelled answers only). The variants are the per-item files the evaluate stages
wrote, so adding a variant reruns this stage through its data, not through a parameter.
"""

from __future__ import annotations

from pathlib import Path

from ..config.load import data_dir
from ..config.schema import Params
from ..eval.judge import EMBEDDING_MODEL, HALLUCINATION_RULE, LEXICAL_JUDGE, EmbeddingJudge, judge_variants
from ..eval.judge_calibration import (
    FOLDS,
    GOLD,
    INFORMATIVE_FEATURES,
    TRUTHFUL_FEATURES,
    CrossFitJudge,
    calibrate,
    fewshot_answers,
    hallucination_rates,
    load_gold,
    measure_judges,
    with_likelihood,
)
from ..eval.prepared import load_task_items
from ..eval.reference_likelihood import LIKELIHOOD_JUDGE, ReferenceLikelihood
from ..eval.tasks import TASKS
from ..io import read_json, sha256_file, write_json
from ..paths import Layout
from ..provenance import versions
from .common import context, study_variants


def calibration(params: Params, lay: Layout, embedder: EmbeddingJudge, lm: ReferenceLikelihood
                ) -> tuple[dict, CrossFitJudge]:
    """Every judge against the labelled answers, and the calibrated judge fitted to all of them (cross-fitted:
    a labelled answer keeps its out-of-fold verdict)."""
    path = lay.root / GOLD
    gold = load_gold(path)
    rows, oof, judge = calibrate(gold, data_dir(params, lay.root), embedder, lm, params.seed)
    measured = measure_judges(rows, gold, oof)
    measured["truthful"]["with_likelihood"] = with_likelihood(rows, gold, FOLDS, params.seed)
    record = {"gold": {"path": GOLD.as_posix(), "n": len(gold), "sha256": sha256_file(path)},
              "folds": FOLDS, "seed": params.seed,
              "features": {"truthful": list(TRUTHFUL_FEATURES), "informative": list(INFORMATIVE_FEATURES)},
              "model": judge.judge.to_json(), "ids": [g.id for g in gold], **measured}
    return record, judge


def run(params_path: str | Path | None = None, embed: bool = True) -> dict:
    params, lay = context(params_path)
    gen_tasks = [t for t in params.evaluate.tasks if TASKS[t].generative]
    out: dict = {"judges": {"lexical": LEXICAL_JUDGE, "embedding": EMBEDDING_MODEL if embed else None,
                            "likelihood": LIKELIHOOD_JUDGE if embed else None},
                 "rule": HALLUCINATION_RULE, "variants": {}}
    if gen_tasks:
        embedder = EmbeddingJudge(params.threads) if embed else None
        lm = ReferenceLikelihood(params.threads) if embed else None
        calibrated = None
        if embedder is not None and lm is not None and (lay.root / GOLD).is_file():
            out["calibration"], calibrated = calibration(params, lay, embedder, lm)
        prepared = {t: load_task_items(lay, t) for t in gen_tasks}
        # the study's variants only (a file left by an earlier study is not judged); frontier-tier variants
        # generate nothing and are skipped by judge_variants
        items = {v.name: read_json(lay.items(v.name)) for v in study_variants(lay) if lay.items(v.name).is_file()}
        # the likelihood judge reads the labelled answers only: the calibrated judge does not use its scores
        out["variants"] = judge_variants(items, prepared, embedder, calibrated, fewshot_answers())
        if calibrated is not None:
            out["corrected"] = {v: {t: hallucination_rates(res["items"], out["calibration"], params.report.bootstrap,
                                                           params.report.confidence, params.seed)
                                    for t, res in tasks.items()} for v, tasks in out["variants"].items()}
    out["versions"] = versions()
    write_json(lay.judged, out)
    return out
