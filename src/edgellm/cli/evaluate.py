"""Score a GGUF file on tasks, with the study's definitions (lm-evaluation-harness 0.4.13's tasks, the study's
scorer and context settings), and print an lm-eval-style table.

``--limit N`` takes the study's seeded subset of N items (the data stage's selection: the same N and seed give
the same items the study scored), not lm-eval's first N. The JSON file holds each task's summary and every
item's log-likelihoods (or answer), as the evaluate stage writes them.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import asdict
from pathlib import Path

from ..config import data_dir
from ..eval import cluster
from ..eval.tasks import TASKS, select_items
from ..io import write_json
from ..provenance import versions
from ..stages.evaluate import scoring_context
from .common import model_file, study_params, study_root

HELP = "score a GGUF file on tasks (accuracy with stderr and chance, as the study does)"


def add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="the GGUF file")
    p.add_argument("--tasks", required=True, help=f"comma-separated task names (known: {', '.join(sorted(TASKS))})")
    p.add_argument("--limit", type=int, help="items per task: the study's seeded subset (default: all)")
    p.add_argument("--seed", type=int, help="the subset's seed (default: params.yaml's, the study's)")
    p.add_argument("--threads", type=int, help="CPU threads (default: params.yaml's)")
    p.add_argument("--output", "-o", default="edgellm-eval.json", help="the JSON file (default: %(default)s)")
    p.add_argument("--shard-items", type=int, help="items per shard (default: params.yaml's execution.shard_items)")
    p.add_argument("--ray-address", help="score the shards on this Ray cluster ('auto', 'host:6379', ...)")
    p.add_argument("--n-gpu-layers", type=int, default=0, help="layers offloaded to a GPU (a CUDA build)")


def parse_tasks(text: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [t for t in names if t not in TASKS]
    if unknown or not names:
        raise ValueError(f"unknown task(s) {unknown or [text]}; known: {', '.join(sorted(TASKS))}")
    return names


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


def run(a: argparse.Namespace) -> int:
    path = model_file(a.model)
    names = parse_tasks(a.tasks)
    if a.limit is not None and a.limit < 1:
        raise ValueError(f"--limit {a.limit}: must be at least 1")
    root = study_root()
    params = study_params(root)
    seed = params.seed if a.seed is None else a.seed
    threads = a.threads or params.threads
    ev = params.evaluate
    items = {n: select_items(TASKS[n], data_dir(params, root), a.limit, seed) for n in names}
    shard_items = a.shard_items if a.shard_items is not None else params.execution.shard_items
    scored = cluster.score_items(path, items, shard_items=shard_items, context=scoring_context(params),
                                 n_batch=ev.n_batch, threads=threads, max_new_tokens=ev.generation.max_new_tokens,
                                 n_parallel=ev.generation.parallel, backend="ray" if a.ray_address else "local",
                                 address=a.ray_address, n_gpu_layers=a.n_gpu_layers)
    results, stats = scored["results"], scored["stats"]
    compute = "gpu" if a.n_gpu_layers else "cpu"
    print(table(results))
    out = {"model": str(path), "seed": seed, "limit": a.limit, "threads": threads,
           "execution": {"shard_items": shard_items, "shards": scored["shards"], "compute": compute,
                         "ray_address": a.ray_address},
           "tasks": {n: s for n, (s, _) in results.items()}, "scorer": asdict(stats),
           "items": {n: [asdict(r) for r in res] for n, (_, res) in results.items()}, "versions": versions()}
    write_json(Path(a.output), out)
    print(f"-> {a.output}")
    return 0
