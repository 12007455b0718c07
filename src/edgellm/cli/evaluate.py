"""Score a GGUF file on tasks, with the study's definitions (lm-evaluation-harness 0.4.13's tasks, the study's
scorer and context settings), and print an lm-eval-style table after a one-line header (the file, its sha256,
the seed, the limit and the context).

``--limit N`` takes the study's seeded subset of N items (the data stage's selection: the same N and seed give
the same items the study scored), not lm-eval's first N. ``-o FILE`` also writes a JSON file: the header, each
task's summary and every item's log-likelihoods (or answer), as the evaluate stage writes them; without it,
only the table is printed, as lm-eval does without --output_path. ``--log-samples`` writes one line per item
beside it (prompt, choices, log-likelihoods, prediction, gold), as lm-eval's --log_samples.

``--reference-context`` scores with an F32 KV cache and flash attention off: the float32 setting in which the
scorer's predictions equal lm-evaluation-harness's on the same weights (the agreement stage's ``exact`` mode;
the study's own context keeps llama.cpp's F16 cache and its flash-attention choice). ``--tasks list`` prints
the known tasks.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import asdict
from pathlib import Path

import llama_cpp

from ..config import Params, data_dir
from ..eval import cluster
from ..eval.agreement import MODES
from ..eval.contexts import scoring_context
from ..eval.tasks import TASKS, Task, select_items
from ..io import sha256_file, write_json
from ..llamacpp.runtime import Model
from ..provenance import versions
from .common import model_file, new_file, non_negative_int, positive_int, study_params, study_root
from .samples import samples_path, write_samples

HELP = "score a GGUF file on tasks (accuracy with stderr and chance, as the study does)"

#: llama.cpp's KV cache type and flash-attention setting by value (what the header names)
KV_TYPES = {llama_cpp.GGML_TYPE_F16: "f16", llama_cpp.GGML_TYPE_F32: "f32"}
FLASH_ATTN = {llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO: "auto", llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED: "off",
              llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED: "on"}


def add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", help="the GGUF file (not needed with --tasks list)")
    p.add_argument("--tasks", required=True,
                   help=f"comma-separated task names, or 'list' to print them (known: {', '.join(sorted(TASKS))})")
    p.add_argument("--limit", type=positive_int, help="items per task: the study's seeded subset (default: all)")
    p.add_argument("--seed", type=int, help="the subset's seed (default: params.yaml's, the study's)")
    p.add_argument("--threads", type=positive_int, help="CPU threads (default: params.yaml's)")
    p.add_argument("--output", "-o", help="also write the results to this JSON file (its folder must exist)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing -o file (and its samples file)")
    p.add_argument("--log-samples", action="store_true",
                   help="write every item (prompt, choices, log-likelihoods, prediction, gold) beside -o "
                        "(eval.json -> eval.samples.jsonl), as lm-eval's --log_samples")
    p.add_argument("--reference-context", action="store_true",
                   help="F32 KV cache, flash attention off: lm-eval's predictions on the same weights "
                        "(default: the study's context)")
    p.add_argument("--shard-items", type=positive_int,
                   help="items per shard (default: params.yaml's execution.shard_items)")
    p.add_argument("--ray-address", help="score the shards on this Ray cluster ('auto', 'host:6379', ...)")
    p.add_argument("--n-gpu-layers", type=non_negative_int, default=0,
                   help="layers offloaded to a GPU (a CUDA build)")


def parse_tasks(text: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [t for t in names if t not in TASKS]
    if unknown or not names:
        raise ValueError(f"unknown task(s) {unknown or [text]}; known: {', '.join(sorted(TASKS))}")
    return names


# --------------------------------------------------------------------------- --tasks list
def task_kind(task: Task) -> tuple[str, str]:
    """lm-eval's output type of a task and the metrics the table reports for it."""
    if task.generative:
        return "generate_until", "answers (judged by the study's report)"
    if task.loglikelihood:
        return "loglikelihood", "acc (greedy), perplexity"
    kind = "multiple_choice" + (" (multiple input)" if task.multiple_input else "")
    return kind, {"acc": "acc, acc_norm", "acc_only": "acc", "mc2": "acc (MC2: true-answer mass)"}[task.metric]


def chance_text(task: Task) -> str:
    """The accuracy of guessing, where the definition fixes it: 1/k for a fixed list of k choices, 0 for a
    loglikelihood task; otherwise it depends on each item's choices (the table reports the items' mean)."""
    if task.generative:
        return ""
    if task.loglikelihood:
        return "0"
    if isinstance(task.choices, list) and task.metric != "mc2":
        return f"{1 / len(task.choices):.4f}"
    return "per item"


def task_list() -> str:
    rows = ["|Task|Kind|Metrics|Chance|Few-shot|Dataset|", "|---|---|---|---:|---:|---|"]
    for name in sorted(TASKS):
        t = TASKS[name]
        kind, metrics = task_kind(t)
        d = t.data
        rows.append(f"|{name}|{kind}|{metrics}|{chance_text(t)}|{t.fewshot.n if t.fewshot else 0}|"
                    f"{d.hub_id}{f' ({d.config})' if d.config else ''}, {d.split}|")
    return "\n".join(rows)


# --------------------------------------------------------------------------- the run
def table(results: dict) -> str:
    """lm-eval's markdown table: task, n, metric, value, stderr, and the chance level it must beat."""
    rows = ["|Tasks|n|Metric|Value|Stderr|Chance|", "|---|---:|---|---:|---:|---:|"]
    for name, (summary, _) in results.items():
        if TASKS[name].generative:
            rows.append(f"|{name}|{summary['n']}|truncated|{summary['truncated']}| | |")
            continue
        for metric in ("acc", "acc_norm"):
            if metric in summary:
                se = summary[f"{metric}_stderr"]
                rows.append(f"|{name}|{summary['n']}|{metric}|{summary[metric]:.4f}|"
                            f"{'' if math.isnan(se) else f'± {se:.4f}'}|{summary['chance']:.4f}|")
        if "perplexity" in summary:
            rows.append(f"|{name}|{summary['n']}|perplexity|{summary['perplexity']:.4f}| | |")
    return "\n".join(rows)


def context_for(params: Params, reference: bool) -> dict:
    """The scoring context's settings: the study's, or with ``reference`` the agreement stage's ``exact`` context
    (one definition, :data:`edgellm.eval.agreement.MODES`): flash attention off here, the F32 KV cache when the
    model is loaded (:func:`load_reference`; the scorer's context takes no cache type)."""
    return scoring_context(params) | ({"flash_attn": MODES["exact"]["flash_attn"]} if reference else {})


def context_header(context: dict, reference: bool) -> dict:
    """What the scores depend on besides the weights: the context's size, decode size, KV cache type and
    flash attention, named as llama-bench names them (the defaults are llama.cpp's)."""
    defaults = llama_cpp.llama_context_default_params()
    kv = "f32" if reference else KV_TYPES.get(defaults.type_k, str(defaults.type_k))
    fa = context.get("flash_attn", defaults.flash_attn_type)
    return {"n_ctx": context["n_ctx"], "n_batch": context["n_batch"], "n_ubatch": context["n_ubatch"],
            "n_seq_max": context["n_seq_max"], "type_k": kv, "type_v": kv, "flash_attn": FLASH_ATTN.get(fa, str(fa)),
            "reference_context": reference}


def header_line(h: dict) -> str:
    """The one line before the table, as lm-eval prints its run's settings."""
    c = h["context"]
    return (f"{Path(h['model']).name} (sha256 {h['sha256']}), seed: {h['seed']}, limit: {h['limit']}, "
            f"n_ctx: {c['n_ctx']}, n_batch: {c['n_batch']}, kv cache: {c['type_k']}, flash attention: "
            f"{c['flash_attn']}, threads: {h['threads']}")


def check_options(a: argparse.Namespace) -> tuple[Path | None, Path | None]:
    """The combinations that cannot work, refused before any scoring; the JSON and samples files to write."""
    if a.reference_context and a.ray_address:
        raise ValueError("--reference-context scores in this process (an F32 KV cache the Ray workers do not "
                         "set up): drop --ray-address or --reference-context")
    if a.log_samples and not a.output:
        raise ValueError("--log-samples writes its file beside the JSON file: give -o/--output too")
    if not a.output:
        return None, None
    out = new_file(a.output, a.overwrite, "-o")
    samples = new_file(str(samples_path(out)), a.overwrite, "--log-samples") if a.log_samples else None
    return out, samples


def load_reference(path: Path, context: dict, threads: int, n_gpu_layers: int) -> Model:
    """The model loaded in the reference context (its F32 KV cache is a setting of the loaded model, which the
    scorer keeps)."""
    return Model(path, **context, n_threads=threads, n_gpu_layers=n_gpu_layers, kv_f32=MODES["exact"]["kv_f32"])


def run(a: argparse.Namespace) -> int:
    if a.tasks.strip() == "list":
        print(task_list())
        return 0
    if a.model is None:
        raise ValueError("no model file: give the GGUF file to score (only --tasks list needs none)")
    out, samples = check_options(a)
    path = model_file(a.model)
    names = parse_tasks(a.tasks)
    root = study_root()
    params = study_params(root)
    seed = params.seed if a.seed is None else a.seed
    threads = a.threads or params.threads
    ev = params.evaluate
    context = context_for(params, a.reference_context)
    header = {"model": str(path), "sha256": sha256_file(path), "seed": seed, "limit": a.limit, "threads": threads,
              "context": context_header(context, a.reference_context)}
    items = {n: select_items(TASKS[n], data_dir(params, root), a.limit, seed) for n in names}
    shard_items = a.shard_items if a.shard_items is not None else params.execution.shard_items
    model = load_reference(path, context, threads, a.n_gpu_layers) if a.reference_context else None
    try:
        scored = cluster.score_items(path, items, shard_items=shard_items, context=context, n_batch=ev.n_batch,
                                     threads=threads, max_new_tokens=ev.generation.max_new_tokens,
                                     n_parallel=ev.generation.parallel, backend="ray" if a.ray_address else "local",
                                     address=a.ray_address, n_gpu_layers=a.n_gpu_layers, model=model)
    finally:
        if model is not None:
            model.close()
    results, stats = scored["results"], scored["stats"]
    print(header_line(header))
    print(table(results))
    if out is None:
        return 0
    doc = {"header": header,
           "execution": {"shard_items": shard_items, "shards": scored["shards"],
                         "compute": "gpu" if a.n_gpu_layers else "cpu", "ray_address": a.ray_address},
           "tasks": {n: s for n, (s, _) in results.items()}, "scorer": asdict(stats),
           "items": {n: [asdict(r) for r in res] for n, (_, res) in results.items()}, "versions": versions()}
    write_json(out, doc)
    print(f"-> {out}")
    if samples is not None:
        n = write_samples(samples, items, results)
        print(f"-> {samples} ({n} samples)")
    return 0
