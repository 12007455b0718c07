"""The hallucination judges (``edgellm.eval.judge``): lm-eval's lexical rule and the embedding judge."""

from __future__ import annotations

import pytest

from edgellm.eval.judge import (
    EmbeddingJudge,
    answer_text,
    judge_generations,
    judge_variants,
    lexical_scores,
    truthful,
)
from edgellm.eval.tasks import TASKS, select_items


def test_the_one_rule_counts_ties_as_hallucinated():
    assert truthful(0.9, 0.5) == 1.0 and truthful(0.5, 0.9) == 0.0
    assert truthful(0.7, 0.7) == 0.0  # not closer to a correct reference: hallucinated (lm-eval's *_acc)


def test_lexical_judge_is_lm_eval_s_rule():
    correct, incorrect = ["Paris is the capital of France."], ["Lyon is the capital of France."]
    good = lexical_scores("Paris is the capital of France.", correct, incorrect)
    bad = lexical_scores("Lyon is the capital of France.", correct, incorrect)
    assert good["rougeL_acc"] == 1 and good["bleu_acc"] == 1 and good["rougeL_max"] == pytest.approx(100)
    assert bad["rougeL_acc"] == 0 and bad["bleu_acc"] == 0 and bad["rougeL_diff"] < 0


def test_lexical_judge_equals_lm_eval_process_results_gen(data_dir):
    from lm_eval.tasks.truthfulqa.utils import process_results_gen

    it = select_items(TASKS["truthfulqa_gen"], data_dir, 5, seed=8)
    for k, doc in enumerate(it.docs):
        for completion in ("\nA: " + doc["incorrect_answers"][0], " " + doc["correct_answers"][-1],
                           "\nA: I think . it is " + doc["question"].lower(), ""):
            ours = lexical_scores(completion, doc["correct_answers"], doc["incorrect_answers"])
            theirs = process_results_gen(doc, [completion])
            assert set(ours) == set(theirs)
            for key, v in theirs.items():
                assert ours[key] == pytest.approx(float(v), abs=1e-9), (k, completion, key)


def test_embedding_judge_and_verdicts(data_dir):
    """The real all-MiniLM-L6-v2 from its PyPI package: reference answers judge themselves."""
    it = select_items(TASKS["truthfulqa_gen"], data_dir, 6, seed=4)
    judge = EmbeddingJudge(threads=2)
    truthful_answers = [d["correct_answers"][0] for d in it.docs]
    false = [d["incorrect_answers"][0] for d in it.docs]
    rows_t = judge_generations(["\nA: " + a for a in truthful_answers], it.docs, judge)
    rows_f = judge_generations(["\nA: " + a for a in false], it.docs, judge)
    assert [r["answer"] for r in rows_t] == truthful_answers
    assert all(r["halluc_embed"] == 0 and r["embed_max"] == pytest.approx(1, abs=1e-5) for r in rows_t)
    assert all(r["halluc_embed"] == 1 for r in rows_f)
    assert all(r["halluc_rougeL"] == 1 for r in rows_f) and all(r["halluc_rougeL"] == 0 for r in rows_t)


def test_judge_variants_keeps_only_files_of_the_prepared_items(data_dir):
    """Per variant and task: the mean verdicts over exactly the prepared items; a stale file is skipped."""
    it = select_items(TASKS["truthfulqa_gen"], data_dir, 3, seed=4)

    def gens(answers, indices):
        return [{"index": i, "completion": "\nA: " + a, "tokens": [1, 2], "stop": "until"}
                for i, a in zip(indices, answers)]

    items = {"good": {"truthfulqa_gen": gens([d["correct_answers"][0] for d in it.docs], it.indices)},
             "bad": {"truthfulqa_gen": gens([d["incorrect_answers"][0] for d in it.docs], it.indices)},
             "stale": {"truthfulqa_gen": gens(["x"], it.indices[:1])},
             "other": {"arc_easy": []}}
    out = judge_variants(items, {"truthfulqa_gen": it}, None)
    assert set(out) == {"good", "bad", "stale"} and out["stale"] == {}
    good, bad = out["good"]["truthfulqa_gen"], out["bad"]["truthfulqa_gen"]
    assert good["n"] == bad["n"] == 3 and "halluc_embed" not in good  # no embedder: the lexical judge only
    assert good["halluc_rougeL"] == 0 and bad["halluc_rougeL"] == 1
    assert [r["index"] for r in good["items"]] == it.indices and good["items"][0]["tokens"] == 2


def test_answer_text_drops_the_echoed_prefix():
    assert answer_text("\nA: Yes, it is.") == "Yes, it is."
    assert answer_text(" I have no comment.") == "I have no comment."
