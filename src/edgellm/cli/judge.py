"""Judge answers to TruthfulQA questions: each row's verdicts by every judge of the study, one JSON line per row.

FILE is JSON lines with ``index`` (the row of TruthfulQA's generation/validation split) and ``answer`` (the text;
or ``completion``, a model's raw output, "A:" echo and all). Rows that also carry ``truthful`` and/or
``informative`` (0/1) are labelled: the agreement of every judge with those labels (n, accuracy, sensitivity,
specificity, Cohen's kappa) is printed after the rows, on stderr, so that anyone can hold the judges against
their own labels.

The calibrated judge is fitted, as the judge stage fits it, to the study's labelled answers
(``data/truthfulqa_gold/labels.jsonl``, or ``--gold``), and an answer that is one of those gets its out-of-fold
verdict, so its agreement is never measured in-sample; questions come from the study's data (params.yaml's
``data.local_dir``, else the hub).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..config.load import data_dir
from ..eval.judge import JUDGES, EmbeddingJudge, answer_text
from ..eval.judge_calibration import (
    GOLD,
    GoldError,
    agreement,
    calibrate,
    jsonl_lines,
    judge_answers,
    load_gold,
)
from ..eval.reference_likelihood import ReferenceLikelihood
from .common import study_params, study_root

HELP = "every judge's verdicts on answers to TruthfulQA questions (JSONL), and their agreement with labels"
#: what each printed row carries besides index and answer
SHOWN = ("informative", "informative_calibrated", "uninformative_reason",
         *(f"truthful_{j}" for j in JUDGES))


def add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", type=Path, help="JSON lines of {index, answer} (or completion), optionally labelled")
    p.add_argument("--gold", type=Path, help="labelled answers the calibrated judge is fitted to (default: "
                                             "the study's data/truthfulqa_gold/labels.jsonl)")


def read_rows(path: Path) -> list[dict]:
    """The answers of a JSONL file; one error naming the file and line of a row without index and answer."""
    rows = []
    for n, row in jsonl_lines(path, "answers"):
        text = None
        if isinstance(row, dict):
            text = row.get("answer", answer_text(row["completion"]) if isinstance(row.get("completion"), str) else None)
        if text is None or not isinstance(row.get("index"), int) or not isinstance(text, str):
            raise GoldError(f"{path}:{n}: a row needs an integer 'index' and an 'answer' (or 'completion') string")
        for label in ("truthful", "informative"):
            if label in row and row[label] not in (0, 1):
                raise GoldError(f"{path}:{n}: {label!r} must be 0 or 1, not {row[label]!r}")
        rows.append({**row, "answer": text})
    if not rows:
        raise GoldError(f"{path}: no answers")
    return rows


def run(a: argparse.Namespace) -> int:
    rows = read_rows(a.file)
    root = study_root()
    params = study_params(root)
    gold_path = a.gold or (root / GOLD if root is not None else None)
    if gold_path is None:
        raise GoldError("no labelled answers to fit the calibrated judge to: give --gold FILE (outside a checkout)")
    where = data_dir(params, root)
    embedder, lm = EmbeddingJudge(params.threads), ReferenceLikelihood(params.threads)
    # cross-fitted: an answer that is one of the labelled ones gets the out-of-fold verdict, not an in-sample one
    calibrated = calibrate(load_gold(gold_path), where, embedder, lm, params.seed)[2]
    judged = judge_answers([r["index"] for r in rows], [r["answer"] for r in rows], where, embedder, lm, calibrated)
    for r, j in zip(rows, judged):
        print(json.dumps({"index": r["index"], "answer": r["answer"], **{k: j[k] for k in SHOWN if k in j}}))
    for label in ("truthful", "informative"):
        have = [(r[label], j) for r, j in zip(rows, judged) if label in r]
        if not have:
            continue
        keys = [f"truthful_{x}" for x in JUDGES] if label == "truthful" else ["informative", "informative_calibrated"]
        for k in keys:
            m = agreement([j[k] for _, j in have], [y for y, _ in have])
            print(f"{k} vs labels: " + ", ".join(f"{n} {v:.3f}" if isinstance(v, float) else f"{n} {v}"
                                                 for n, v in m.items()), file=sys.stderr)
    return 0
