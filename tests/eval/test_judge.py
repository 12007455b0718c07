"""Generated answers: greedy decoding with a reused prefix, and the hallucination judges."""

from __future__ import annotations

import numpy as np
import pytest

from edgellm.evaluate import ChoiceScorer, generate_task
from edgellm.judge import EmbeddingJudge, answer_text, judge_generations, lexical_scores
from edgellm.runtime import Batch, Model
from edgellm.tasks import TASKS, select_items


def greedy_from_scratch(m: Model, prompt: np.ndarray, n: int) -> list[int]:
    """The plain way: the whole sequence decoded again for every new token."""
    out: list[int] = []
    b = Batch(m.n_batch, 1)
    for _ in range(n):
        m.clear()
        b.clear()
        seq = np.concatenate([prompt, np.asarray(out, dtype=np.int32)])
        mask = np.zeros(len(seq), dtype=bool)
        mask[-1] = True
        b.add(seq, 0, [0], mask)
        tok = int(np.argmax(m.decode(b)[0]))
        if m.is_eog(tok):
            break
        out.append(tok)
    return out


def test_greedy_generation_with_cached_prefix_equals_plain_decoding(tiny_gguf, data_dir):
    task = TASKS["truthfulqa_gen"]
    it = select_items(task, data_dir, 3, seed=2)
    with Model(tiny_gguf["F32"], n_ctx=2048, n_batch=2048, n_threads=2, kv_f32=True, flash_attn=0) as m:
        scorer = ChoiceScorer(m)
        _, res = generate_task(scorer, task, it.docs, it.indices, max_new_tokens=10, progress=False)
        for r, doc in zip(res, it.docs):
            assert r.stop in ("length", "until", "eog") and 0 < r.prompt_tokens
            plain = greedy_from_scratch(m, m.tokenize(task.context(doc)), 10)
            assert r.tokens == plain[: len(r.tokens)]
            if r.stop == "length":
                assert len(r.tokens) == 10 and r.completion == m.detokenize(r.tokens)


def test_generation_stops_at_until_and_cuts_the_text(tiny_gguf):
    with Model(tiny_gguf["F32"], n_ctx=1024, n_batch=1024, n_threads=2) as m:
        scorer = ChoiceScorer(m)
        prompt = m.tokenize("The")
        free = scorer.generate(prompt, 12, ())
        assert free.stop in ("length", "eog")
        text = free.text
        # an ASCII character the model is going to produce (the tiny model also emits raw bytes)
        cut = text[next(i for i, ch in enumerate(text) if i > 0 and ch.isascii() and ch.isprintable())]
        g = scorer.generate(prompt, 12, (cut,))
        assert g.stop == "until" and g.text == text[: text.index(cut)]
        with pytest.raises(ValueError, match="n_ctx"):
            scorer.generate(prompt, 2000, ())


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
    truthful = [d["correct_answers"][0] for d in it.docs]
    false = [d["incorrect_answers"][0] for d in it.docs]
    rows_t = judge_generations(["\nA: " + a for a in truthful], it.docs, judge)
    rows_f = judge_generations(["\nA: " + a for a in false], it.docs, judge)
    assert [r["answer"] for r in rows_t] == truthful
    assert all(r["halluc_embed"] == 0 and r["embed_max"] == pytest.approx(1, abs=1e-5) for r in rows_t)
    assert all(r["halluc_embed"] == 1 for r in rows_f)
    assert all(r["halluc_rougeL"] == 1 for r in rows_f) and all(r["halluc_rougeL"] == 0 for r in rows_t)


def test_answer_text_drops_the_echoed_prefix():
    assert answer_text("\nA: Yes, it is.") == "Yes, it is."
    assert answer_text(" I have no comment.") == "I have no comment."
