"""The batched scorer against llama-bench pp512 and against the one-question-per-decode scorer, in one run.

On one GGUF file, in this order:
1. ``llama-bench -p 512 -n 0``: the hardware's prompt-processing rate (tokens/s);
2. the batched scorer (:class:`edgellm.eval.batched.BatchScorer`) on real items of every multiple-choice and
   loglikelihood task: its rate in unique tokens decoded per second (tokens of the packs' prefix trees over
   the time spent in llama_decode and the log-softmax), and its wall rate (the same tokens over the whole
   call, tokenization excluded);
3. the previous scorer (:class:`tests.oracles.sequential.SequentialScorer`, one decode per question) on the
   same requests: the speed-up, and the largest log-likelihood difference;
4. generation: TruthfulQA answers in parallel sequences against one at a time (same greedy tokens?).

Target: batched rate >= 0.8 x pp512; the run also prints the rate that the output layer's share of the work
allows (the logit rows the scored tokens need, which pp512 does not compute).

Usage: python benchmarks/bench_scorer.py [--model smollm2-135m] [--type F16] [--items 60] [--n-batch 512] [--answers 32]
"""

from __future__ import annotations

import argparse
import time

import llama_cpp
import numpy as np
from _common import ROOT, study_gguf

from edgellm.eval.batched import BatchScorer
from edgellm.eval.requests import build_request
from tests.oracles.sequential import SequentialScorer
from edgellm.eval.tasks import TASKS, select_items
from edgellm.llamacpp.runtime import Model
from edgellm.llamacpp.tools import run_llama_bench

TASKS_MC = ["arc_easy", "arc_challenge", "hellaswag", "piqa", "boolq", "mmlu", "sciq", "openbookqa",
            "lambada_openai", "truthfulqa_mc1", "truthfulqa_mc2"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--type", default="F16")
    ap.add_argument("--model", default="smollm2-135m", help="a base model of the study (its file at --type)")
    ap.add_argument("--items", type=int, default=60, help="items per task")
    ap.add_argument("--n-batch", type=int, default=512, help="tokens per decode (the study's evaluate.n_batch)")
    ap.add_argument("--answers", type=int, default=32, help="TruthfulQA answers generated (0: skip)")
    ap.add_argument("--max-new", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    gguf = study_gguf(a.type, a.model)
    data_dir = ROOT / "data" / "mirror"

    bench = run_llama_bench(gguf, 512, 0, 3, a.threads)["pp512"]
    pp = float(bench["avg_ts"])
    print(f"{gguf.name}: llama-bench pp512 {pp:.1f} +- {float(bench['stddev_ts']):.1f} tokens/s ({a.threads} threads)")

    items = {n: select_items(TASKS[n], data_dir, a.items, seed=1) for n in TASKS_MC}
    with Model(gguf, n_ctx=8192, n_batch=a.n_batch, n_ubatch=min(512, a.n_batch), n_seq_max=256,
               n_threads=a.threads) as m:
        reqs = [build_request(m, TASKS[n], d, s) for n, it in items.items() for d, s in zip(it.docs, it.shots)]
        scorer = BatchScorer(m, a.n_batch)
        t0 = time.perf_counter()
        batched = scorer.score(reqs)
        wall = time.perf_counter() - t0
        st = scorer.stats
        rate = st.tokens / st.seconds
        print(f"batched scorer: {len(reqs)} questions, {sum(len(r.pairs) for r in reqs)} continuations, "
              f"{st.tokens} unique tokens in {st.decodes} decodes of <= {a.n_batch}")
        print(f"  decode rate {rate:.1f} tokens/s = {rate / pp:.2f}x pp512 (target >= 0.8x); "
              f"wall {st.tokens / wall:.1f} tokens/s = {st.tokens / wall / pp:.2f}x ({wall:.1f} s)")
        # What the target can be: every requested row of logits costs the output layer's n_vocab x n_embd
        # multiply-adds, which pp512 pays for one token in 512; a token's body costs about the other weights'
        # (attention over the context left out). At pp512's speed per multiply-add the scorer's rate would be
        # pp512 / (1 + share x output/body): on a 262k-vocabulary model that, not the scorer, bounds the ratio.
        out_macs = m.n_vocab * llama_cpp.llama_model_n_embd(m._model)
        body = max(1, m.n_params - out_macs)
        share = st.outputs / st.tokens
        bound = 1 / (1 + share * out_macs / body)
        print(f"  logit rows {st.outputs} of {st.tokens} tokens ({100 * share:.1f}%), each {out_macs / body:.2f}x a "
              f"token's body: at pp512's speed per multiply-add {bound:.2f}x pp512; the scorer reaches "
              f"{rate / pp / bound:.2f} of that")

        if a.answers:
            task = TASKS["truthfulqa_gen"]
            it = select_items(task, data_dir, a.answers, seed=1)
            ctxs = [m.tokenize(task.context(d)) for d in it.docs]
            t0 = time.perf_counter()
            par = scorer.generate(ctxs, a.max_new, task.until, n_parallel=16)
            t_par = time.perf_counter() - t0

        # the previous scorer with the context the evaluate stage gave it (one question per decode)
        m.new_context(n_ctx=4096, n_batch=4096, n_seq_max=32, n_threads=a.threads)
        one = [r for r in reqs if len({c.tobytes() for c, _ in r.pairs}) == 1]  # the old scorer's kind
        old = SequentialScorer(m)
        t0 = time.perf_counter()
        sequential = [old.score(r) for r in one]
        t_old = time.perf_counter() - t0
        new = [[s.ll for s in sc] for r, sc in zip(reqs, batched) if len({c.tobytes() for c, _ in r.pairs}) == 1]
        t_new = wall * sum(r.n_tokens for r in one) / sum(r.n_tokens for r in reqs)  # its share of the batched time
        diff = np.abs(np.concatenate(new) - np.concatenate(sequential))
        same = np.mean([np.argmax(x) == np.argmax(y) for x, y in zip(new, sequential)])
        print(f"one question per decode (previous scorer), {len(one)} of the questions: {t_old:.1f} s; "
              f"batched on them ~{t_new:.1f} s: speed-up {t_old / t_new:.1f}x")
        print(f"  log-likelihood max |diff| {diff.max():.2e} (F16 KV cache, different batch shapes); "
              f"same argmax {100 * same:.1f}%")

        if a.answers:
            t0 = time.perf_counter()
            seq = [old.generate(c, a.max_new, task.until) for c in ctxs]
            t_seq = time.perf_counter() - t0
            n_tok = sum(len(g.tokens) for g in par)
            same_tok = np.mean([p.tokens == s.tokens for p, s in zip(par, seq)])
            print(f"generation, {len(ctxs)} TruthfulQA answers <= {a.max_new} tokens ({n_tok} generated): "
                  f"16 parallel {t_par:.1f} s, one at a time {t_seq:.1f} s: speed-up {t_seq / t_par:.1f}x; "
                  f"identical greedy tokens {100 * same_tok:.0f}% of answers")


if __name__ == "__main__":
    main()
