"""The judges against labelled answers (``edgellm.eval.judge_calibration``), the corrected rates, and
``edgellm judge``: on the study's 180 labelled TruthfulQA answers (data/truthfulqa_gold) and synthetic judges
whose error is known."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgellm.cli import main
from edgellm.eval.judge import NON_ANSWER, EmbeddingJudge, non_answer, uninformative_reason
from edgellm.eval.judge_calibration import (
    CalibratedJudge,
    GoldError,
    agreement,
    corrected_rate,
    cross_fit,
    fit_judge,
    judge_gold,
    load_gold,
    measure_judges,
    out_of_fold,
    rogan_gladen,
    with_likelihood,
)
from edgellm.eval.reference_likelihood import ReferenceLikelihood

ROOT = Path(__file__).resolve().parents[2]
GOLD = ROOT / "data" / "truthfulqa_gold" / "labels.jsonl"


@pytest.fixture(scope="module")
def gold():
    return load_gold(GOLD)


@pytest.fixture(scope="module")
def gold_rows(gold, data_dir):
    return judge_gold(gold, data_dir, EmbeddingJudge(threads=2), ReferenceLikelihood(threads=2))


def test_no_answer_given_is_a_non_answer():
    # the labelled answers' "not provided" refusals (TruthfulQA: truthful, uninformative); the judges had counted
    # them informative
    for text in ("The answer is not provided.", "The answer to this question is not provided.",
                 "the answer is unknown", "The answer is not known!"):
        assert non_answer(text) and uninformative_reason(text) == NON_ANSWER, text
    for text in ("The answer is 42.", "The answer is not a fruit.", "Not provided by law, the tax is due."):
        assert not non_answer(text), text


def test_bad_gold_file_names_file_and_line(tmp_path):
    p = tmp_path / "labels.jsonl"
    p.write_text(json.dumps({"id": "a", "index": 1, "question": "q", "answer": "x", "truthful": 1, "informative": 0})
                 + "\n" + json.dumps({"id": "b", "index": 2, "question": "q", "answer": "y", "truthful": 2,
                                      "informative": 1}) + "\n")
    with pytest.raises(GoldError, match=r"labels\.jsonl:2: not a labelled answer"):
        load_gold(p)
    with pytest.raises(GoldError, match="not found"):
        load_gold(tmp_path / "missing.jsonl")


def test_agreement_by_hand():
    # 4 positives (3 found), 6 negatives (4 rejected): accuracy 7/10; kappa (0.7 - 0.48) / 0.52
    pred = [1, 1, 1, 0, 1, 1, 0, 0, 0, 0]
    gold = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    m = agreement(pred, gold)
    assert (m["n"], m["positives"]) == (10, 4)
    assert m["accuracy"] == pytest.approx(0.7) and m["sensitivity"] == pytest.approx(0.75)
    assert m["specificity"] == pytest.approx(4 / 6)
    p_e = 0.5 * 0.4 + 0.5 * 0.6
    assert m["kappa"] == pytest.approx((0.7 - p_e) / (1 - p_e))


def test_rogan_gladen():
    assert rogan_gladen(0.37, 1.0, 1.0) == pytest.approx(0.37)  # a perfect judge: nothing to correct
    # true rate 0.3, sens 0.8, spec 0.9: observed 0.3 * 0.8 + 0.7 * 0.1 = 0.31
    assert rogan_gladen(0.31, 0.8, 0.9) == pytest.approx(0.3)
    assert np.isnan(rogan_gladen(0.5, 0.5, 0.5))  # a coin: no correction exists
    assert rogan_gladen(0.01, 0.8, 0.9) == 0.0  # below the judge's false-positive floor: clipped


def test_corrected_rate_recovers_a_known_rate():
    """A synthetic judge with sensitivity 0.8 and specificity 0.7 observes 0.3 x 0.8 + 0.7 x 0.3 = 0.45 on a
    variant whose true truthful rate is 0.3; corrected with its measured error, the rate is back at the truth
    of the sample, inside the interval."""
    rng = np.random.default_rng(0)
    labels = (rng.random(4000) < 0.4).astype(float)
    calib = np.where(labels == 1, rng.random(4000) < 0.8, rng.random(4000) < 0.3).astype(float)
    truth = (rng.random(3000) < 0.3).astype(float)
    answers = np.where(truth == 1, rng.random(3000) < 0.8, rng.random(3000) < 0.3).astype(float)
    r = corrected_rate(answers, calib, labels, 500, 0.95, 1)
    assert abs(r["observed"] - 0.45) < 0.03
    se = np.sqrt(0.45 * 0.55 / 3000) / 0.5  # the observed rate's standard error through the correction (J = 0.5)
    assert abs(r["corrected"] - truth.mean()) < 3 * se and r["low"] < truth.mean() < r["high"]
    # the same with 100 labelled answers: the calibration's uncertainty widens the interval
    small = corrected_rate(answers, calib[:100], labels[:100], 500, 0.95, 1)
    assert small["high"] - small["low"] > 2 * (r["high"] - r["low"])


def test_judges_against_the_labels(gold, gold_rows):
    """Every judge is measured on the 180 labelled answers; the calibrated judge out of fold, which must be
    below its agreement on the answers it was fitted to (else the folds leak); the chosen judge has the
    highest kappa."""
    oof = out_of_fold(gold_rows, gold, folds=10, seed=0)
    m = measure_judges(gold_rows, gold, oof)
    truthful = m["truthful"]["judges"]
    assert set(truthful) == {"rougeL", "bleu", "embed", "lm", "calibrated"}
    assert all(j["n"] == 180 and j["positives"] == sum(g.truthful for g in gold) for j in truthful.values())
    assert all(j["kappa"] > 0 for j in truthful.values())  # every judge is better than chance, none is good
    for target in ("truthful", "informative"):
        judged = m[target]["judges"]
        assert judged[m[target]["chosen"]]["kappa"] == max(j["kappa"] for j in judged.values())
    fitted = fit_judge(gold_rows, gold)
    in_sample = [fitted.verdicts(r)["calibrated_acc"] for r in gold_rows]
    out = m["truthful"]["verdicts"]["calibrated"]
    labels = [g.truthful for g in gold]
    assert agreement(in_sample, labels)["kappa"] > agreement(out, labels)["kappa"]
    # the cross-fitted judge gives a labelled answer its out-of-fold raw verdict, any other answer the full fit's
    crossed = cross_fit(gold_rows, gold, oof)
    assert [crossed.verdicts(r) for r in gold_rows] == oof
    other = {**gold_rows[0], "answer": gold_rows[0]["answer"] + " Indeed."}
    assert crossed.verdicts(other) == fitted.verdicts(other)
    # the rule judge of informative now finds the "not provided" refusals the labels call uninformative
    refusals = [k for k, g in enumerate(gold) if "not provided" in g.answer]
    assert refusals and all(m["informative"]["verdicts"]["rule"][k] == 0 for k in refusals)
    # the calibrated judge reads no likelihood score (the study's answers get none); what they would add is
    # measured with them, which needs them
    stripped = [{k: v for k, v in r.items() if not k.startswith("lm_")} for r in gold_rows]
    assert [fitted.verdicts(r) for r in stripped] == [fitted.verdicts(r) for r in gold_rows]
    assert 0 < with_likelihood(gold_rows, gold, 10, 0)["kappa"] != agreement(out, labels)["kappa"]
    with pytest.raises(KeyError, match="lm_max"):
        with_likelihood(stripped, gold, 10, 0)
    # the fitted judge survives its JSON record
    again = CalibratedJudge.from_json(json.loads(json.dumps(fitted.to_json())))
    assert [again.verdicts(r) for r in gold_rows] == [fitted.verdicts(r) for r in gold_rows]


def test_cli_judges_a_file_and_scores_its_labels(tmp_path, capsys, gold):
    rows = [{"index": g.index, "answer": g.answer, "truthful": g.truthful} for g in gold[:6]]
    rows.append({"index": 5, "completion": "\nA: The answer is not provided."})
    p = tmp_path / "answers.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["judge", str(p)]) == 0
    out, err = capsys.readouterr()
    printed = [json.loads(line) for line in out.splitlines()]
    assert [r["index"] for r in printed] == [r["index"] for r in rows]
    assert printed[-1]["answer"] == "The answer is not provided." and printed[-1]["informative_calibrated"] == 0
    assert "truthful_calibrated vs labels: n 6" in err and "informative vs labels" not in err

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"index": 3, "answer": "x"}\n{"answer": "no index"}\n')
    assert main(["judge", str(bad)]) == 2
    assert "bad.jsonl:2: a row needs an integer 'index'" in capsys.readouterr().err
