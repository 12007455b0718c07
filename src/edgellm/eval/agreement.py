"""The project's scorer against lm-evaluation-harness itself, item by item.

lm-eval (its own task YAMLs, :mod:`edgellm.eval.lmeval`) scores a base checkpoint with its Hugging Face
backend in float32; the project scores the same items on the F32 GGUF of the same weights, in two contexts:
``exact`` (F32 KV cache, no flash attention: the float32 setting under which the predictions must be equal)
and ``study`` (the evaluate stage's own context: F16 KV cache, flash attention as llama.cpp chooses). Per task
it records the share of items with the same prediction (argmax of the log-likelihoods, or the same greedy
answer and the same ROUGE-L verdict for generative tasks), the log-likelihood differences, both accuracies,
and per item both predictions, so that a reader can hold any item against lm-eval's own output.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..llamacpp.runtime import Model
from . import lmeval
from .batched import BatchScorer
from .judge import lexical_scores
from .scoring import run_tasks
from .tasks import TASKS, TaskItems

#: the project's contexts compared: the reference setting and the study's own
MODES = {"exact": {"kv_f32": True, "flash_attn": 0}, "study": {}}


def score_ours(gguf: Path, items: Mapping[str, TaskItems], *, context: dict, threads: int, max_new_tokens: int,
               n_parallel: int, mode: str) -> dict[str, dict[int, object]]:
    """The project's per-item results on ``gguf``: task -> dataset index -> result."""
    with Model(gguf, **context, n_threads=threads, **MODES[mode]) as m:
        results = run_tasks(BatchScorer(m, context["n_batch"]), dict(items), max_new_tokens, n_parallel,
                            progress=False)
    return {name: {r.index: r for r in res} for name, (_, res) in results.items()}


def _rouge_verdict(completion: str, doc: dict) -> float:
    return lexical_scores(completion, doc["correct_answers"], doc["incorrect_answers"])["rougeL_acc"]


def compare_task(name: str, ref: Mapping[int, object], mine: Mapping[int, object], items: TaskItems) -> dict:
    """One task's agreement: summary numbers and, per item, both predictions."""
    task = TASKS[name]
    if task.generative:
        rows = [{"index": i, "same_completion": mine[i].completion.strip() == ref[i].completion.strip(),
                 "rougeL_ours": _rouge_verdict(mine[i].completion, d), "rougeL_lm_eval": float(ref[i].metrics["rougeL_acc"])}
                for i, d in zip(items.indices, items.docs)]
        return {"n": len(rows), "same_completion": float(np.mean([r["same_completion"] for r in rows])),
                "same_rougeL_verdict": float(np.mean([r["rougeL_ours"] == r["rougeL_lm_eval"] for r in rows])),
                "halluc_rougeL_ours": 1 - float(np.mean([r["rougeL_ours"] for r in rows])),
                "halluc_rougeL_lm_eval": 1 - float(np.mean([r["rougeL_lm_eval"] for r in rows])), "items": rows}
    rows = []
    for i in items.indices:
        a, b = np.asarray(mine[i].lls, dtype=float), np.asarray(ref[i].lls, dtype=float)
        rows.append({"index": i, "pred_ours": int(np.argmax(a)), "pred_lm_eval": int(np.argmax(b)),
                     "max_abs_dll": float(np.abs(a - b).max())})
    d = np.array([r["max_abs_dll"] for r in rows])
    out = {"n": len(rows), "same_prediction": float(np.mean([r["pred_ours"] == r["pred_lm_eval"] for r in rows])),
           "max_abs_dll": float(d.max()), "mean_abs_dll": float(d.mean()),
           "acc_ours": float(np.mean([mine[i].acc for i in items.indices])),
           "acc_lm_eval": float(np.mean([float(ref[i].metrics["acc"]) for i in items.indices]))}
    if task.acc_norm:
        out["same_acc_norm"] = float(np.mean([mine[i].acc_norm == float(ref[i].metrics["acc_norm"])
                                              for i in items.indices]))
    return out | {"items": rows}


def agreement(checkpoint: Path, gguf: Path, items: Mapping[str, TaskItems], workdir: Path, *, context: dict,
              threads: int, max_new_tokens: int, n_parallel: int, modes: list[str]) -> dict:
    """lm-eval on ``checkpoint`` and the project on ``gguf`` (the same weights), on the same ``items``."""
    t0 = time.perf_counter()
    ref = lmeval.run(checkpoint, {k: v.as_tuple() for k, v in items.items()}, workdir, batch_size=4,
                     max_gen_toks=max_new_tokens)
    out = {"lm_eval_seconds": time.perf_counter() - t0, "runs": {}}
    for mode in modes:
        t0 = time.perf_counter()
        mine = score_ours(gguf, items, context=context, threads=threads, max_new_tokens=max_new_tokens,
                          n_parallel=n_parallel, mode=mode)
        out["runs"][mode] = {"seconds": time.perf_counter() - t0,
                             "tasks": {t: compare_task(t, ref[t], mine[t], items[t]) for t in items}}
    return out
