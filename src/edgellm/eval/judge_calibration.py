"""The judges measured against labelled answers, a judge fitted to those labels, and rates corrected for its error.

The similarity judges (:mod:`edgellm.eval.judge`) decide "truthful" by which reference an answer is closer to.
Against answers labelled by TruthfulQA's definitions (``data/truthfulqa_gold``) that rule is weak: it misses
most truthful answers that are off-topic or restate the question, and it cannot see that such answers are
uninformative. TruthfulQA's own judges are models fine-tuned on labels; offline, the most this study can do is
fit a small, regularised logistic model on the judges' scores and on what an answer adds to its question, and
measure it honestly: every number reported for it is out of fold (a stratified, seeded k-fold), never on the
answers it was fitted to.

A judge's measured error then corrects the rates it reports (Rogan and Gladen, 1978): with sensitivity ``se``
and specificity ``sp`` for "truthful", an observed truthful rate ``p`` estimates ``(p + sp - 1) / (se + sp - 1)``.
Its interval resamples both the calibration answers and the variant's answers, so that the calibration's
uncertainty is carried into it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from . import data
from .judge import JUDGES, EmbeddingJudge, LikelihoodJudge, answer_text, judge_generations, kappa, verdicts
from .reference_likelihood import FEATURES as LIKELIHOOD_FEATURES
from .tasks import TASKS

#: The calibrated judge's inputs for "truthful": every similarity judge's best score to a correct reference and its
#: margin over the incorrect ones, and what the answer adds to its question (off-topic answers are truthful).
#: Not the reference-likelihood judge's scores: measured on the 180 labelled answers (2026-12-08, 10 folds, 4 fold
#: seeds), adding them moved the out-of-fold kappa by +0.009, +0.015, -0.012 and +0.049 (0.380 -> 0.389 at the
#: study's seed), no more than the folds move it, while scoring every generated answer with the language model
#: took the judge stage from 119 s to 733 s. Every run measures it again (``with_likelihood`` in the record).
TRUTHFUL_FEATURES = ("rougeL_max", "rougeL_diff", "bleu_max", "bleu_diff", "embed_max", "embed_diff",
                     "embed_question", "embed_shot", "novelty", "new_words", "words", "distinct_share",
                     "rule_informative")
#: ... and for "informative": closeness to the question and to the prompt's examples, what the answer adds
INFORMATIVE_FEATURES = ("novelty", "new_words", "embed_question", "embed_shot", "words", "distinct_share",
                        "rule_informative")
#: Inverse regularisation strength of the logistic models (scikit-learn's default). Declared, not tuned on the
#: labels: choosing it on 180 answers too would leave no honest estimate of the judge's error.
C = 1.0
TARGETS = ("truthful", "informative")
#: The labelled answers (relative to the project root): 180 of this study's SmolLM2 answers, README beside them.
#: A constant, not a parameter: a new params.yaml section changes the schema module, which every stage runs, and
#: would rerun the whole study; the file itself is a dependency of the judge stage in dvc.yaml.
GOLD = Path("data/truthfulqa_gold/labels.jsonl")
#: Stratified folds of the calibrated judge's out-of-fold verdicts: 18 answers a fold, each fit on 162.
FOLDS = 10


class GoldError(ValueError):
    """Labelled or judged answers that cannot be used: the message names the file (or row) and the line."""


class GoldLabel(BaseModel):
    """One labelled answer (``data/truthfulqa_gold/README.md``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    id: str
    index: int  # row of TruthfulQA's generation/validation split
    question: str
    answer: str
    truthful: Literal[0, 1]
    informative: Literal[0, 1]
    variant: str = ""


def jsonl_lines(path: Path, what: str) -> Iterator[tuple[int, object]]:
    """(line number, parsed JSON) of every non-empty line of a JSON-lines file; one error naming the file and the
    line that is not JSON, or the file that is missing (``what`` it should hold)."""
    path = Path(path)
    if not path.is_file():
        raise GoldError(f"{path}: {what} not found")
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                yield n, json.loads(line)
            except json.JSONDecodeError as e:
                raise GoldError(f"{path}:{n}: not JSON ({e.msg})") from None


def load_gold(path: Path) -> list[GoldLabel]:
    """The labelled answers of a JSONL file; one clear error naming the file and line of a bad row."""
    out = []
    for n, row in jsonl_lines(path, "labelled answers"):
        try:
            out.append(GoldLabel.model_validate(row))
        except ValidationError as e:
            raise GoldError(f"{path}:{n}: not a labelled answer ({str(e).splitlines()[0]})") from None
    if len({g.truthful for g in out}) < 2 or len({g.informative for g in out}) < 2:
        raise GoldError(f"{path}: needs answers of both labels for truthful and for informative")
    return out


def agreement(pred: Sequence[float], gold: Sequence[float]) -> dict:
    """A judge against the labels: n, positives, accuracy, sensitivity (of label 1), specificity, Cohen's kappa."""
    p, g = np.asarray(pred, dtype=float), np.asarray(gold, dtype=float)
    pos, neg = g == 1, g == 0
    return {"n": int(len(g)), "positives": int(pos.sum()), "accuracy": float(np.mean(p == g)),
            "sensitivity": float(np.mean(p[pos] == 1)) if pos.any() else None,
            "specificity": float(np.mean(p[neg] == 0)) if neg.any() else None, "kappa": kappa(p, g)}


@dataclass(frozen=True)
class Logistic:
    """A fitted logistic model kept as numbers (standardisation, weights), so that it is written to and read
    from the judge stage's JSON and applied without scikit-learn."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float

    def predict(self, rows: Sequence[Mapping[str, float]]) -> np.ndarray:
        """1.0 where the model says yes (probability > 0.5), per row."""
        x = (_matrix(rows, self.features) - np.array(self.mean)) / np.array(self.scale)
        return (x @ np.array(self.coef) + self.intercept > 0).astype(float)


def _matrix(rows: Sequence[Mapping[str, float]], features: Sequence[str]) -> np.ndarray:
    missing = sorted({f for r in rows for f in features if r.get(f) is None})
    if missing:
        raise KeyError(f"the calibrated judge needs the scores {missing}, which the rows lack (run the embedding "
                       "and likelihood judges)")
    return np.array([[float(r[f]) for f in features] for r in rows], dtype=float).reshape(len(rows), len(features))


def fit_logistic(rows: Sequence[Mapping[str, float]], y: Sequence[float], features: Sequence[str]) -> Logistic:
    """L2-regularised logistic regression on standardised features, classes weighted to balance (truthful answers
    are a third of the labels: unweighted, the model would learn to say "untruthful")."""
    from sklearn.linear_model import LogisticRegression

    x = _matrix(rows, features)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    m = LogisticRegression(C=C, class_weight="balanced", max_iter=1000).fit((x - mean) / scale, np.asarray(y))
    return Logistic(tuple(features), tuple(map(float, mean)), tuple(map(float, scale)), tuple(map(float, m.coef_[0])),
                    float(m.intercept_[0]))


@dataclass(frozen=True)
class CalibratedJudge:
    """The judge ``calibrated``: one logistic model for truthful, one for informative. Its verdicts go through
    :func:`~edgellm.eval.judge.verdicts` like every judge's (an empty or degenerate answer is never truthful, a
    non-answer always is)."""

    truthful: Logistic
    informative: Logistic

    def verdicts(self, row: Mapping[str, float]) -> dict[str, float]:
        return {"calibrated_acc": float(self.truthful.predict([row])[0]),
                "calibrated_informative": float(self.informative.predict([row])[0])}

    def to_json(self) -> dict:
        return {t: asdict(getattr(self, t)) for t in TARGETS}

    @classmethod
    def from_json(cls, d: Mapping) -> CalibratedJudge:
        return cls(**{t: Logistic(**{k: tuple(v) if isinstance(v, list) else v for k, v in d[t].items()})
                      for t in TARGETS})


def fit_judge(rows: Sequence[Mapping], gold: Sequence[GoldLabel],
              truthful_features: Sequence[str] = TRUTHFUL_FEATURES) -> CalibratedJudge:
    """The calibrated judge fitted to every labelled answer (``rows``: the other judges' rows for them)."""
    return CalibratedJudge(fit_logistic(rows, [g.truthful for g in gold], truthful_features),
                           fit_logistic(rows, [g.informative for g in gold], INFORMATIVE_FEATURES))


def completions(answers: Sequence[str]) -> list[str]:
    """Answers as the study's completions look (the model echoes "A:" first), so that the lexical judges score
    the same strings on labelled answers and on the study's."""
    return ["\nA: " + a for a in answers]


def fewshot_answers() -> list[str]:
    """The six example answers of lm-eval's truthfulqa_gen prompt (``tasks.yaml``): what the question features
    compare an answer with (copying an example's answer says nothing of the question asked)."""
    return re.findall(r"^A: (.*)$", TASKS["truthfulqa_gen"].text, flags=re.M)


def truthfulqa_docs(indices: Sequence[int], data_dir: Path | None, questions: Sequence[str] | None = None
                    ) -> list[dict]:
    """TruthfulQA's generation rows at ``indices``, processed as the study's (lm-eval's reference answers);
    where ``questions`` are given, each must be its row's (one error names the first that is not)."""
    task = TASKS["truthfulqa_gen"]
    ds = data.load(task.data, data_dir)
    docs = []
    for k, i in enumerate(indices):
        if not 0 <= int(i) < len(ds):
            raise GoldError(f"row {k + 1}: index {i} is not a row of TruthfulQA's {len(ds)} questions")
        doc = task.process_docs(ds[int(i)])
        if questions is not None and doc["question"] != questions[k].strip():
            raise GoldError(f"row {k + 1}: index {i} is the question {doc['question']!r}, not {questions[k]!r}")
        docs.append(doc)
    return docs


def judge_answers(indices: Sequence[int], answers: Sequence[str], data_dir: Path | None, embedder: EmbeddingJudge,
                  lm: LikelihoodJudge, calibrated: CalibratedJudge | None = None,
                  questions: Sequence[str] | None = None) -> list[dict]:
    """Every judge's rows for plain answers to TruthfulQA rows (labelled answers, or anyone's JSONL)."""
    return judge_generations(completions(answers), truthfulqa_docs(indices, data_dir, questions), embedder,
                             None, calibrated, fewshot_answers(), lm)


def judge_gold(gold: Sequence[GoldLabel], data_dir: Path | None, embedder: EmbeddingJudge,
               lm: LikelihoodJudge) -> list[dict]:
    """The uncalibrated judges' rows for the labelled answers (their questions checked against the rows)."""
    return judge_answers([g.index for g in gold], [g.answer for g in gold], data_dir, embedder, lm,
                         questions=[g.question for g in gold])


def composite(rows: Sequence[Mapping], judged: Sequence[Mapping[str, float]]) -> list[dict]:
    """The calibrated judge's final verdicts (``truthful_calibrated``, ``informative_calibrated``) from its raw
    ones, through the rules every judge shares."""
    return [verdicts(answer_text(r["completion"]), None, {"calibrated": j["calibrated_acc"]},
                     j["calibrated_informative"]) for r, j in zip(rows, judged)]


def out_of_fold(rows: Sequence[Mapping], gold: Sequence[GoldLabel], folds: int, seed: int,
                truthful_features: Sequence[str] = TRUTHFUL_FEATURES) -> list[dict]:
    """The calibrated judge's raw verdicts (:meth:`CalibratedJudge.verdicts`) on every labelled answer by a model
    fitted without it (stratified k-fold on truthful x informative, seeded, twins in one fold): what its agreement
    with the labels is measured on, and what it says of those answers wherever the study meets them again."""
    from sklearn.model_selection import StratifiedGroupKFold

    strata = [2 * g.truthful + g.informative for g in gold]
    # the same answer to the same question (two variants said it) stays in one fold: else its twin would train
    # the model that judges it
    twins = {k: i for i, k in enumerate(dict.fromkeys((g.question.strip(), g.answer.strip()) for g in gold))}
    groups = [twins[(g.question.strip(), g.answer.strip())] for g in gold]
    out: list[dict | None] = [None] * len(gold)
    split = StratifiedGroupKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(gold)), strata, groups)
    for train, test in split:
        judge = fit_judge([rows[i] for i in train], [gold[i] for i in train], truthful_features)
        for i in test:
            out[i] = judge.verdicts(rows[i])
    return out  # type: ignore[return-value]


@dataclass(frozen=True)
class CrossFitJudge:
    """The calibrated judge fitted to every labelled answer, except that a labelled answer (the same question and
    answer text) gets its out-of-fold verdict: the study's variants generated those answers, and a verdict of the
    model fitted to them would be in-sample while the correction uses the out-of-fold error."""

    judge: CalibratedJudge
    held: Mapping[tuple[str, str], Mapping[str, float]]

    def verdicts(self, row: Mapping[str, float]) -> dict[str, float]:
        key = (str(row["question"]).strip(), str(row["answer"]).strip())
        return dict(self.held[key]) if key in self.held else self.judge.verdicts(row)


def cross_fit(rows: Sequence[Mapping], gold: Sequence[GoldLabel], oof: Sequence[Mapping[str, float]]) -> CrossFitJudge:
    """:class:`CrossFitJudge` of the labelled answers' rows and their out-of-fold raw verdicts."""
    return CrossFitJudge(fit_judge(rows, gold), {(g.question.strip(), g.answer.strip()): v for g, v in zip(gold, oof)})


def calibrate(gold: Sequence[GoldLabel], data_dir: Path | None, embedder: EmbeddingJudge, lm: LikelihoodJudge,
              seed: int) -> tuple[list[dict], list[dict], CrossFitJudge]:
    """The labelled answers' rows by the other judges, the calibrated judge's out-of-fold raw verdicts on them
    (:data:`FOLDS` folds), and the cross-fitted judge: what the judge stage and ``edgellm judge`` both need."""
    rows = judge_gold(gold, data_dir, embedder, lm)
    oof = out_of_fold(rows, gold, FOLDS, seed)
    return rows, oof, cross_fit(rows, gold, oof)


def measure_judges(rows: Sequence[Mapping], gold: Sequence[GoldLabel], oof: Sequence[Mapping[str, float]]) -> dict:
    """Every judge against the labels, for truthful and for informative: target -> judge -> :func:`agreement`
    (the calibrated judge's out of fold, ``oof`` from :func:`out_of_fold`), the judge with the highest kappa as
    ``chosen``, and each labelled answer's verdicts (``verdicts``: judge -> 0/1 per answer, the calibrated judge's
    out of fold), from which the corrected rates resample."""
    oof = composite(rows, oof)
    calls = {"truthful": {j: [r[f"truthful_{j}"] for r in rows] for j in JUDGES if f"truthful_{j}" in rows[0]
                          and j != "calibrated"} | {"calibrated": [v["truthful_calibrated"] for v in oof]},
             "informative": {"rule": [r["informative"] for r in rows],
                             "calibrated": [v["informative_calibrated"] for v in oof]}}
    out: dict = {}
    for target in TARGETS:
        labels = [getattr(g, target) for g in gold]
        judged = {j: agreement(p, labels) for j, p in calls[target].items()}
        chosen = max(judged, key=lambda j: (-1.0 if judged[j]["kappa"] is None else judged[j]["kappa"],
                                            j == "calibrated"))
        out[target] = {"judges": judged, "chosen": chosen, "verdicts": calls[target], "labels": labels}
    return out


def with_likelihood(rows: Sequence[Mapping], gold: Sequence[GoldLabel], folds: int, seed: int) -> dict:
    """The calibrated judge's truthful agreement with the labels, out of fold on the same folds, fitted with the
    reference-likelihood scores as well: what they would add (see :data:`TRUTHFUL_FEATURES`)."""
    oof = composite(rows, out_of_fold(rows, gold, folds, seed, (*TRUTHFUL_FEATURES, *LIKELIHOOD_FEATURES)))
    return agreement([v["truthful_calibrated"] for v in oof], [g.truthful for g in gold])


def rogan_gladen(rate: np.ndarray | float, sensitivity: np.ndarray | float,
                 specificity: np.ndarray | float) -> np.ndarray:
    """The true rate an imperfect judge's observed rate estimates, clipped to [0, 1]; NaN where the judge is
    no better than chance (sensitivity + specificity <= 1), where the correction is undefined."""
    j = np.asarray(sensitivity, dtype=float) + np.asarray(specificity, dtype=float) - 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        est = (np.asarray(rate, dtype=float) + np.asarray(specificity, dtype=float) - 1.0) / j
    return np.where(j > 0, np.clip(est, 0.0, 1.0), np.nan)


def corrected_rate(answers: Sequence[float], calib_pred: Sequence[float], calib_labels: Sequence[float],
                   resamples: int, confidence: float, seed: int) -> dict:
    """A variant's truthful rate by one judge, uncorrected and corrected (:func:`rogan_gladen`) for that judge's
    error on the labelled answers, with a percentile-bootstrap interval that resamples the variant's answers
    and the labelled answers together (``undefined``: resamples where the judge was no better than chance,
    left out of the interval)."""
    a, p, g = (np.asarray(x, dtype=float) for x in (answers, calib_pred, calib_labels))
    rng = np.random.default_rng(seed)
    m = agreement(p, g)
    est = float(rogan_gladen(a.mean(), m["sensitivity"], m["specificity"]))
    rate_b = a[rng.integers(0, len(a), (resamples, len(a)))].mean(axis=1)
    idx = rng.integers(0, len(g), (resamples, len(g)))
    gb, pb = g[idx], p[idx]
    with np.errstate(invalid="ignore"):
        se = (pb * gb).sum(axis=1) / gb.sum(axis=1)
        sp = ((1 - pb) * (1 - gb)).sum(axis=1) / (1 - gb).sum(axis=1)
    boot = rogan_gladen(rate_b, se, sp)
    ok = boot[np.isfinite(boot)]
    lo, hi = (np.quantile(ok, [(1 - confidence) / 2, (1 + confidence) / 2]) if len(ok) else (np.nan, np.nan))
    return {"n": int(len(a)), "observed": float(a.mean()), "corrected": est, "low": float(lo), "high": float(hi),
            "resamples": int(resamples), "undefined": int(resamples - len(ok))}


def hallucination_rates(judged_rows: Sequence[Mapping], measured: Mapping, resamples: int, confidence: float,
                        seed: int) -> dict:
    """A variant's hallucination rate (1 - truthful) by the judge the labels chose, uncorrected and corrected
    for that judge's measured error, with the interval of :func:`corrected_rate` (turned into hallucination)."""
    t = measured["truthful"]
    judge = t["chosen"]
    r = corrected_rate([row[f"truthful_{judge}"] for row in judged_rows], t["verdicts"][judge], t["labels"],
                       resamples, confidence, seed)
    return {"judge": judge, "n": r["n"], "observed": 1 - r["observed"], "corrected": 1 - r["corrected"],
            "low": 1 - r["high"], "high": 1 - r["low"], "resamples": r["resamples"], "undefined": r["undefined"]}
