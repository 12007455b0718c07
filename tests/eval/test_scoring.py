"""Scoring (``edgellm.eval.scoring``): multiple-choice log-likelihoods with shared prefixes, and greedy
generation with a reused prefix, on a tiny model built in the test."""

from __future__ import annotations

import numpy as np
import pytest

from edgellm.eval.scoring import (
    ChoiceScorer,
    Request,
    build_request,
    encode_pair,
    generate_task,
    item_metrics,
    mean_stderr,
    score_naive,
)
from edgellm.eval.tasks import TASKS, select_items
from edgellm.llamacpp.runtime import Batch, Model


# --------------------------------------------------------------------------- multiple choice
def test_encode_pair_moves_trailing_space_to_continuation(tiny_gguf):
    with Model(tiny_gguf["F32"], n_ctx=256) as m:
        ctx, cont = encode_pair(m, "Question: why?\nAnswer: ", "because")
        ctx2, cont2 = encode_pair(m, "Question: why?\nAnswer:", " because")
        assert np.array_equal(ctx, ctx2) and np.array_equal(cont, cont2)
        whole = m.tokenize("Question: why?\nAnswer: because")
        assert np.array_equal(np.concatenate([ctx, cont]), whole)


@pytest.mark.parametrize("exact", [False, True])
def test_shared_prefix_scoring_equals_naive(tiny_gguf, data_dir, exact):
    kw = {"kv_f32": True, "flash_attn": 0} if exact else {}
    with Model(tiny_gguf["F32"], n_ctx=8192, n_batch=8192, n_seq_max=16, n_threads=2, **kw) as m:
        for name in ("arc_easy", "truthfulqa_mc1", "hellaswag", "mmlu_5shot"):
            task = TASKS[name]
            it = select_items(task, data_dir, 3, seed=9)
            reqs = [build_request(m, task, d, s) for d, s in zip(it.docs, it.shots)]
            # a fresh scorer per task: score_naive below reuses the model's KV cache, which the scorer's
            # cached prefix would otherwise describe wrongly (a new scorer clears both)
            scorer = ChoiceScorer(m)
            shared = [scorer.score(r) for r in reqs]  # consecutive questions reuse the cached prefix
            naive = [score_naive(m, r) for r in reqs]
            if exact:
                # F32 KV cache, no flash attention: only float32 accumulation order differs
                np.testing.assert_allclose(np.concatenate(shared), np.concatenate(naive), atol=1e-4, rtol=2e-6)
            else:
                # llama.cpp's default F16 KV cache rounds differently for different batch shapes
                # (up to ~0.01 nats after MMLU 5-shot's 2,000-token prompts)
                np.testing.assert_allclose(np.concatenate(shared), np.concatenate(naive), atol=2e-2, rtol=5e-4)
            assert [int(np.argmax(s)) for s in shared] == [int(np.argmax(n)) for n in naive]


def test_item_metrics_follow_lm_eval():
    arc = TASKS["arc_easy"]
    doc = {"question": "q", "choices": {"text": ["a", "bbbb"], "label": ["A", "B"]}, "answerKey": "B"}
    assert item_metrics(arc, doc, [-1.0, -2.0]) == (0.0, 1.0)  # acc picks "a"; per-char, "bbbb" wins
    mc1 = TASKS["truthfulqa_mc1"]
    doc = {"question": "q", "mc1_targets": {"choices": ["t", "f"], "labels": [1, 0]}}
    assert item_metrics(mc1, doc, [-1.0, -3.0]) == (1.0, None)
    mc2 = TASKS["truthfulqa_mc2"]
    doc = {"question": "q", "mc2_targets": {"choices": ["t1", "t2", "f"], "labels": [1, 1, 0]}}
    p = np.exp([-1.0, -2.0, -0.5])
    assert item_metrics(mc2, doc, [-1.0, -2.0, -0.5])[0] == pytest.approx((p[0] + p[1]) / p.sum())
    assert mean_stderr([1, 0, 1, 1]) == pytest.approx(np.std([1, 0, 1, 1], ddof=1) / 2)


def test_scorer_rejects_oversized_questions(tiny_gguf):
    with Model(tiny_gguf["F32"], n_ctx=256, n_batch=256, n_seq_max=2) as m:
        scorer = ChoiceScorer(m)
        big = Request(np.ones(300, dtype=np.int32), [np.ones(2, dtype=np.int32)])
        with pytest.raises(ValueError, match="tokens"):
            scorer.score(big)
        many = Request(np.ones(3, dtype=np.int32), [np.ones(1, dtype=np.int32)] * 3)
        with pytest.raises(ValueError, match="n_seq_max"):
            scorer.score(many)


# --------------------------------------------------------------------------- generation
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
