"""Agreement of the project's scorer with lm-evaluation-harness on the embedded model.

lm-eval 0.4.13 (its own task YAMLs, Hugging Face backend, float32) scores the
study's base checkpoint (models/hf/<model>) on N seeded items of every task; the
project scores the same items on the F32 GGUF of the same weights (converted here
with llama.cpp's converter), twice: with an F32 KV cache and no flash attention
(the float32 reference setting) and with llama.cpp's defaults as the study runs
(F16 KV cache, flash attention auto). Prints per-task prediction agreement and
log-likelihood differences and writes results/lm_eval_agreement.json.

    .venv/bin/python benchmarks/agree_lm_eval.py [--items 100] [--items-for truthfulqa_mc2=30 ...]
        [--modes exact study] [--ref-cache FILE]

lm-eval's Hugging Face backend scores every choice with its whole prompt (about 450,000 tokens
for 100 items of every task: an hour on 2 cores); --ref-cache keeps its outputs so that a later
run reuses them.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import LAYOUT, ROOT

from edgellm.config import data_dir, load_params
from edgellm.eval import lmeval
from edgellm.eval.judge import lexical_scores
from edgellm.eval.batched import BatchScorer
from edgellm.eval.scoring import run_tasks
from edgellm.eval.tasks import TASKS, select_items
from edgellm.io import read_json, write_json
from edgellm.llamacpp.convert import convert_hf
from edgellm.llamacpp.runtime import Model


def ours(gguf: Path, items: dict, max_new: int, exact: bool) -> dict:
    kw = {"kv_f32": True, "flash_attn": 0} if exact else {}
    t0 = time.perf_counter()
    with Model(gguf, n_ctx=8192, n_batch=512, n_seq_max=256, n_threads=2, **kw) as m:
        results = run_tasks(BatchScorer(m), items, max_new, progress=False)
    print(f"  ours ({'exact' if exact else 'study'}): {time.perf_counter() - t0:.1f} s", flush=True)
    return {name: {r.index: r for r in res} for name, (_, res) in results.items()}


def compare(name: str, ref: dict, mine: dict, items) -> dict:
    task = TASKS[name]
    if task.generative:
        same = [mine[i].completion.strip() == ref[i].completion.strip() for i in items.indices]
        verdict = [lexical_scores(mine[i].completion, d["correct_answers"], d["incorrect_answers"])["rougeL_acc"]
                   == ref[i].metrics["rougeL_acc"] for i, d in zip(items.indices, items.docs)]
        return {"n": len(same), "same_completion": float(np.mean(same)), "same_rougeL_verdict": float(np.mean(verdict)),
                "halluc_rougeL_lm_eval": 1 - float(np.mean([ref[i].metrics["rougeL_acc"] for i in items.indices])),
                "halluc_rougeL_ours": 1 - float(np.mean([lexical_scores(mine[i].completion, d["correct_answers"],
                                                                        d["incorrect_answers"])["rougeL_acc"]
                                                         for i, d in zip(items.indices, items.docs)]))}
    d = np.concatenate([np.abs(np.asarray(mine[i].lls) - np.asarray(ref[i].lls)) for i in items.indices])
    pred = [int(np.argmax(mine[i].lls)) == int(np.argmax(ref[i].lls)) for i in items.indices]
    acc_ours = float(np.mean([mine[i].acc for i in items.indices]))
    acc_ref = float(np.mean([float(ref[i].metrics["acc"]) for i in items.indices]))
    row = {"n": len(pred), "same_prediction": float(np.mean(pred)), "max_abs_dll": float(d.max()),
           "mean_abs_dll": float(d.mean()), "acc_ours": acc_ours, "acc_lm_eval": acc_ref}
    if task.acc_norm:
        row["same_acc_norm"] = float(np.mean([mine[i].acc_norm == float(ref[i].metrics["acc_norm"])
                                              for i in items.indices]))
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=100)
    ap.add_argument("--model", default=None)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--tasks", nargs="*", default=sorted(TASKS))
    ap.add_argument("--items-for", nargs="*", default=[], metavar="TASK=N", help="per-task item counts")
    ap.add_argument("--modes", nargs="*", default=["exact", "study"], choices=["exact", "study"])
    ap.add_argument("--ref-cache", type=Path, default=None, help="JSON file for lm-eval's outputs")
    args = ap.parse_args()
    counts = {t: args.items for t in args.tasks} | {k: int(v) for k, v in (x.split("=") for x in args.items_for)}
    params = load_params(LAYOUT.params)
    model = args.model or next(iter(params.models))
    hf = LAYOUT.checkpoint(model)
    if not (hf / "config.json").is_file():
        sys.exit(f"{hf}: base checkpoint missing; run `dvc repro models@{model}` first")
    ddir = data_dir(params, ROOT)
    items = {t: select_items(TASKS[t], ddir, counts[t], params.seed) for t in args.tasks}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        f32 = convert_hf(hf, tmp / "F32.gguf", "f32", ROOT)
        t0 = time.perf_counter()
        key = {"model": model, "counts": counts, "seed": params.seed, "max_new_tokens": args.max_new_tokens}
        cached = read_json(args.ref_cache) if args.ref_cache and args.ref_cache.is_file() else None
        if cached and cached["key"] == key:
            ref = {t: {int(i): lmeval.ItemOutput(**o) for i, o in d.items()} for t, d in cached["outputs"].items()}
            t_ref = cached["seconds"]
        else:
            ref = lmeval.run(hf, {k: v.as_tuple() for k, v in items.items()}, tmp / "lm_eval", batch_size=4,
                             max_gen_toks=args.max_new_tokens)
            t_ref = time.perf_counter() - t0
            if args.ref_cache:
                write_json(args.ref_cache, {"key": key, "seconds": t_ref, "outputs": {
                    t: {str(i): asdict(o) for i, o in d.items()} for t, d in ref.items()}})
        print(f"lm-eval (HF float32): {t_ref:.0f} s", flush=True)
        runs = {}
        for exact in [m == "exact" for m in args.modes]:
            t0 = time.perf_counter()
            mine = ours(f32, items, args.max_new_tokens, exact)
            runs["f32_kv_no_fa" if exact else "study_defaults"] = {
                "seconds": time.perf_counter() - t0,
                "tasks": {t: compare(t, ref[t], mine[t], items[t]) for t in args.tasks}}
    report = {"model": model, "checkpoint": str(hf.relative_to(ROOT)), "items_per_task": counts,
              "seed": params.seed, "lm_eval": "0.4.13, HF backend, float32, batch 4", "lm_eval_seconds": t_ref,
              "max_new_tokens": args.max_new_tokens, "runs": runs}
    write_json(LAYOUT.lm_eval_agreement, report)
    for mode, r in runs.items():
        print(f"\n== project ({mode}, {r['seconds']:.0f} s) vs lm-eval ==")
        for t, row in r["tasks"].items():
            print(f"{t:16s} " + "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))


if __name__ == "__main__":
    main()
