"""Multiple-choice scoring: one shared prompt decode per question (and prefixes reused across questions)
against the naive way (the prompt decoded again for every choice). Same items, same file.

With --exact the KV cache is F32 and flash attention off: the two ways then differ only by float32
accumulation order; with llama.cpp's defaults (F16 KV cache) the batch shape changes the rounding.

Usage: python benchmarks/bench_prefix.py [--type F16] [--items 10] [--exact]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import LAYOUT, study_gguf

from edgellm.eval.prepared import load_task_items
from edgellm.eval.scoring import ChoiceScorer, build_request, score_naive
from edgellm.eval.tasks import TASKS
from edgellm.llamacpp.runtime import Model


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--type", default="F16")
    ap.add_argument("--items", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--exact", action="store_true", help="F32 KV cache, no flash attention")
    a = ap.parse_args()
    gguf = study_gguf(a.type)
    kw = {"kv_f32": True, "flash_attn": 0} if a.exact else {}
    with Model(gguf, n_ctx=4096, n_batch=4096, n_seq_max=32, n_threads=a.threads, **kw) as m:
        reqs = []
        for name in sorted(TASKS):
            task = TASKS[name]
            if task.generative or not LAYOUT.task_items(name).is_file():
                continue
            it = load_task_items(LAYOUT, name)
            reqs += [build_request(m, task, d, s) for d, s in zip(it.docs[: a.items], it.shots[: a.items])]
        t0 = time.perf_counter()
        scorer = ChoiceScorer(m)
        shared = [scorer.score(r) for r in reqs]
        t_shared = time.perf_counter() - t0
        t0 = time.perf_counter()
        naive = [score_naive(m, r) for r in reqs]
        t_naive = time.perf_counter() - t0
    diff = np.abs(np.concatenate(shared) - np.concatenate(naive))
    same_pred = np.mean([np.argmax(s) == np.argmax(n) for s, n in zip(shared, naive)])
    mode = "F32 KV, no flash attention" if a.exact else "llama.cpp defaults (F16 KV)"
    print(f"{gguf.name} ({mode}): {len(reqs)} questions, {sum(len(r.continuations) for r in reqs)} choices")
    print(f"  naive  : {t_naive:7.2f} s")
    print(f"  shared : {t_shared:7.2f} s")
    print(f"  speed-up shared / naive: {t_naive / t_shared:.2f}x (target >= 1.5x)")
    print(f"  log-likelihood max |diff| {diff.max():.2e}, mean {diff.mean():.2e}; same argmax {100 * same_pred:.1f}%")


if __name__ == "__main__":
    main()
