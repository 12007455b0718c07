"""Scoring (``edgellm.eval.batched``, ``edgellm.eval.scoring``): many questions per decode, prefix trees,
parallel greedy generation, against the naive definitions, on a tiny model built in the test."""

from __future__ import annotations

import numpy as np
import pytest

from edgellm.eval.batched import BatchScorer
from edgellm.eval.requests import Request, build_request, encode_pair
from edgellm.eval.scoring import evaluate_task, generate_task, item_metrics, mean_stderr
from tests.oracles.sequential import SequentialScorer, greedy_plain, score_naive
from edgellm.eval.tasks import TASKS, select_items
from edgellm.llamacpp.runtime import Batch, Model

#: F32 KV cache, no flash attention: the batched and naive decodes then differ only by float32
#: accumulation order (the tiny model's peaked logits give continuations of hundreds of nats)
EXACT = {"kv_f32": True, "flash_attn": 0}
LL_ATOL, LL_RTOL = 1e-4, 2e-6
MIXED = ("arc_easy", "truthfulqa_mc1", "truthfulqa_mc2", "hellaswag", "mmlu_5shot", "winogrande",
         "lambada_openai", "sciq", "openbookqa", "boolq")


@pytest.fixture(scope="module")
def mixed_items(data_dir):
    return {name: select_items(TASKS[name], data_dir, 4, seed=9) for name in MIXED}


def test_encode_pair_moves_trailing_space_to_continuation(tiny_gguf):
    with Model(tiny_gguf["F32"], n_ctx=256) as m:
        ctx, cont = encode_pair(m, "Question: why?\nAnswer: ", "because")
        ctx2, cont2 = encode_pair(m, "Question: why?\nAnswer:", " because")
        assert np.array_equal(ctx, ctx2) and np.array_equal(cont, cont2)
        whole = m.tokenize("Question: why?\nAnswer: because")
        assert np.array_equal(np.concatenate([ctx, cont]), whole)


@pytest.fixture(scope="module")
def naive_reference(tiny_gguf, mixed_items):
    """Every request's pairs decoded one by one from an empty cache: log-likelihoods and greedy flags."""
    with Model(tiny_gguf["F32"], n_ctx=8192, n_batch=8192, n_seq_max=1, n_threads=2, **EXACT) as m:
        reqs = [build_request(m, TASKS[n], d, s) for n, it in mixed_items.items() for d, s in zip(it.docs, it.shots)]
        lls = [score_naive(m, r) for r in reqs]
        greedy = []
        for req in reqs:
            flags = []
            for ctx, cont in req.pairs:
                m.clear()
                seq = np.concatenate([ctx, cont])[:-1]
                b = Batch(len(seq), 1)
                mask = np.zeros(len(seq), dtype=bool)
                mask[len(ctx) - 1 :] = True
                b.add(seq, 0, [0], mask)
                flags.append(bool((np.argmax(m.decode(b), axis=1) == cont).all()))
            greedy.append(flags)
    return reqs, lls, greedy


@pytest.mark.parametrize("budget", [96, 512, 4096])
def test_batched_scoring_equals_naive(tiny_gguf, naive_reference, budget):
    """Every task's requests in one stream: packs of several questions (tiny budget: questions bigger
    than a decode, split over consecutive decodes), every pair's log-likelihood as the naive decode
    gives it, and the greedy flag as the naive argmax gives it."""
    reqs, naive, greedy = naive_reference
    n_batch = min(budget, 512)
    with Model(tiny_gguf["F32"], n_ctx=8192, n_batch=n_batch, n_ubatch=min(512, n_batch), n_seq_max=min(256, n_batch),
               n_threads=2, **EXACT) as m:
        scorer = BatchScorer(m, budget)
        batched = scorer.score(reqs)
    assert scorer.stats.decodes >= (len(reqs) if budget == 96 else 2)
    assert scorer.stats.tokens < sum(r.n_tokens for r in reqs)  # shared prefixes decoded once
    for sc, ll, flags in zip(batched, naive, greedy):
        np.testing.assert_allclose([s.ll for s in sc], ll, atol=LL_ATOL, rtol=LL_RTOL)
        assert [s.greedy for s in sc] == flags


def test_batched_scoring_with_llama_cpp_defaults_picks_the_same_answers(tiny_gguf, mixed_items):
    """With the default F16 KV cache the batch shape changes the rounding (~0.01 nats), not the answers."""
    with Model(tiny_gguf["F32"], n_ctx=8192, n_batch=512, n_seq_max=256, n_threads=2) as m:
        reqs = [build_request(m, TASKS[n], d, s) for n, it in mixed_items.items() for d, s in zip(it.docs, it.shots)]
        batched = BatchScorer(m).score(reqs)
    with Model(tiny_gguf["F32"], n_ctx=8192, n_batch=8192, n_seq_max=1, n_threads=2) as m:
        for req, sc in zip(reqs, batched):
            naive = score_naive(m, req)
            np.testing.assert_allclose([s.ll for s in sc], naive, atol=2e-2, rtol=5e-4)
            if len(naive) > 1 and np.sort(naive)[-1] - np.sort(naive)[-2] > 0.05:
                assert int(np.argmax([s.ll for s in sc])) == int(np.argmax(naive))


def test_sequential_scorer_still_equals_naive(tiny_gguf, mixed_items):
    """The benchmark's baseline (one decode per question, prefixes reused) is itself correct."""
    with Model(tiny_gguf["F32"], n_ctx=8192, n_batch=8192, n_seq_max=32, n_threads=2, **EXACT) as m:
        for name in ("arc_easy", "mmlu_5shot"):
            it = mixed_items[name]
            reqs = [build_request(m, TASKS[name], d, s) for d, s in zip(it.docs, it.shots)]
            scorer = SequentialScorer(m)
            shared = [scorer.score(r) for r in reqs]
            naive = [score_naive(m, r) for r in reqs]
            np.testing.assert_allclose(np.concatenate(shared), np.concatenate(naive), atol=LL_ATOL, rtol=LL_RTOL)
        with pytest.raises(ValueError, match="shared context"):
            scorer.score(build_request(m, TASKS["winogrande"], mixed_items["winogrande"].docs[0]))


def test_task_metrics_of_the_new_output_types(tiny_gguf, mixed_items):
    """LAMBADA: acc = greedy, perplexity = exp(-mean ll); WinoGrande: the gold context wins or not."""
    with Model(tiny_gguf["F32"], n_ctx=8192, n_batch=512, n_seq_max=256, n_threads=2) as m:
        scorer = BatchScorer(m)
        it = mixed_items["lambada_openai"]
        summary, res = evaluate_task(scorer, TASKS["lambada_openai"], it.docs, it.indices, progress=False)
        assert summary["perplexity"] == pytest.approx(np.exp(-np.mean([r.lls[0] for r in res])))
        assert summary["chance"] == 0 and all(len(r.lls) == 1 and r.acc in (0.0, 1.0) for r in res)
        it = mixed_items["winogrande"]
        summary, res = evaluate_task(scorer, TASKS["winogrande"], it.docs, it.indices, progress=False)
        assert summary["chance"] == 0.5 and "acc_norm" not in summary
        for r, d in zip(res, it.docs):
            assert r.gold == int(d["answer"]) - 1 and r.acc == float(int(np.argmax(r.lls)) == r.gold)


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
    assert item_metrics(TASKS["lambada_openai"], {"text": "a b"}, [-9.0], [True]) == (1.0, None)
    assert mean_stderr([1, 0, 1, 1]) == pytest.approx(np.std([1, 0, 1, 1], ddof=1) / 2)


def test_scorer_rejects_oversized_questions(tiny_gguf):
    with Model(tiny_gguf["F32"], n_ctx=256, n_batch=256, n_seq_max=2) as m:
        scorer = BatchScorer(m)
        big = Request([(np.ones(300, dtype=np.int32), np.ones(2, dtype=np.int32))])
        with pytest.raises(ValueError, match="tokens"):
            scorer.score([big])
        many = Request([(np.ones(3, dtype=np.int32), np.ones(1, dtype=np.int32))] * 3)
        with pytest.raises(ValueError, match="n_seq_max"):
            scorer.score([many])


# --------------------------------------------------------------------------- generation
@pytest.mark.parametrize("parallel", [1, 3])
def test_parallel_generation_equals_plain_decoding(tiny_gguf, data_dir, parallel):
    """Five answers through three sequences (finished ones make room for the next question): the same
    greedy tokens as decoding each answer from scratch, token by token."""
    task = TASKS["truthfulqa_gen"]
    it = select_items(task, data_dir, 5, seed=2)
    with Model(tiny_gguf["F32"], n_ctx=4096, n_batch=512, n_seq_max=8, n_threads=2, **EXACT) as m:
        scorer = BatchScorer(m)
        summary, res = generate_task(scorer, task, it.docs, it.indices, max_new_tokens=10, n_parallel=parallel,
                                     progress=False)
        assert summary["n"] == 5 and [r.index for r in res] == it.indices
        for r, doc in zip(res, it.docs):
            assert r.stop in ("length", "until", "eog") and 0 < r.prompt_tokens
            plain = greedy_plain(m, m.tokenize(task.context(doc)), 10)
            assert r.tokens == plain[: len(r.tokens)]
            if r.stop == "length":
                assert len(r.tokens) == 10 and r.completion == m.detokenize(r.tokens)


def test_generation_stops_at_until_and_cuts_the_text(tiny_gguf):
    with Model(tiny_gguf["F32"], n_ctx=1024, n_batch=512, n_seq_max=4, n_threads=2) as m:
        scorer = BatchScorer(m)
        prompt = m.tokenize("The")
        free, = scorer.generate([prompt], 12, ())
        assert free.stop in ("length", "eog")
        text = free.text
        # an ASCII character the model is going to produce (the tiny model also emits raw bytes)
        cut = text[next(i for i, ch in enumerate(text) if i > 0 and ch.isascii() and ch.isprintable())]
        g, = scorer.generate([prompt], 12, (cut,))
        assert g.stop == "until" and g.text == text[: text.index(cut)]
        with pytest.raises(ValueError, match="n_ctx"):
            scorer.generate([prompt], 2000, ())
