"""Perplexity throughput: edgellm's evaluator against llama-perplexity, same file, text, n_ctx and chunks.

Both are timed end to end (load, tokenization, all chunks) in this one run. Target: ratio >= 0.8.
Usage: python benchmarks/bench_perplexity.py [--type Q4_K_M] [--chunks 16] [--n-ctx 512]
"""

from __future__ import annotations

import argparse
import time

from _common import LAYOUT, study_gguf

from edgellm.eval.perplexity import perplexity
from edgellm.llamacpp.runtime import Model
from edgellm.llamacpp.tools import run_perplexity, tool


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--type", default="Q4_K_M")
    ap.add_argument("--chunks", type=int, default=16)
    ap.add_argument("--n-ctx", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    gguf = study_gguf(a.type)
    text = LAYOUT.wikitext
    n_batch = 2048

    t0 = time.perf_counter()
    # the same batch as ours (n_batch // n_ctx sequences a decode): the later -b overrides run_perplexity's own
    ref = run_perplexity(tool("llama-perplexity"), gguf, text, a.n_ctx, a.chunks, a.threads,
                         options=["-b", str(n_batch)])["ppl"]
    t_ref = time.perf_counter() - t0

    t0 = time.perf_counter()
    n_seq = n_batch // a.n_ctx
    with Model(gguf, n_ctx=n_seq * a.n_ctx, n_batch=n_seq * a.n_ctx, n_seq_max=n_seq, n_threads=a.threads) as m:
        res = perplexity(m, m.tokenize(text.read_text()), a.n_ctx, n_batch, a.chunks, progress=False)
    t_ours = time.perf_counter() - t0

    tokens = a.chunks * a.n_ctx
    print(f"{gguf.name}: {a.chunks} chunks x {a.n_ctx} tokens, {a.threads} threads")
    print(f"  llama-perplexity: PPL {ref:.4f}  {t_ref:7.2f} s  {tokens / t_ref:7.1f} tokens/s")
    print(f"  edgellm         : PPL {res.ppl:.4f}  {t_ours:7.2f} s  {tokens / t_ours:7.1f} tokens/s")
    print(f"  PPL relative difference: {abs(res.ppl - ref) / ref:.2e}")
    print(f"  throughput ratio edgellm / llama-perplexity: {t_ref / t_ours:.3f}  (target >= 0.8)")


if __name__ == "__main__":
    main()
