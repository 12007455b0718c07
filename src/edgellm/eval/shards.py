"""A variant's task items as shards (a task's item range): the unit of work in-process and on a Ray cluster.

llama.cpp's log-likelihoods depend on what shares a decode: its quantized kernels quantize each batch's
activations, and the rounding moves with the batch (SmolLM2 Q4_K_M, ARC-Easy: an item scored alone and in a
pack of 30 differ by up to 0.7-0.9 nats summed over its choices, F16 by 0.02: benchmarks/pack_sensitivity.py).
So the shard plan is part of the measurement (``execution.shard_items``, a parameter the evaluate stages depend on), and every backend scores each shard the same way: one fresh pack sequence per
shard, from the same context settings. A plan then gives the same bits wherever its shards run; merging
concatenates them in plan order and recomputes each task's summary from its items.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields

from .batched import BatchScorer, DecodeStats
from .scoring import generate_task, evaluate_task, summarize_generations, summarize_items
from .tasks import TASKS, TaskItems


@dataclass(frozen=True)
class Shard:
    task: str
    start: int
    stop: int


@dataclass
class ShardResult:
    shard: Shard
    results: list  # ItemResult or GenerationResult, in item order
    seconds: float
    stats: DecodeStats


def plan(items: dict[str, TaskItems], shard_items: int | None) -> list[Shard]:
    """Shards in task order, then item order. A generative task stays one shard: its parallel answers share
    decodes as slots free up, so its items cannot be split without changing what shares a decode."""
    out = []
    for name, it in items.items():
        n = len(it.indices)
        step = n if shard_items is None or TASKS[name].generative else shard_items
        out += [Shard(name, a, min(a + step, n)) for a in range(0, n, step)]
    return out


def shard_slice(it: TaskItems, shard: Shard) -> TaskItems:
    a, b = shard.start, shard.stop
    return TaskItems(it.indices[a:b], it.docs[a:b], it.shots[a:b], it.rows)


def _delta(after: DecodeStats, before: DecodeStats) -> DecodeStats:
    return DecodeStats(**{f.name: getattr(after, f.name) - getattr(before, f.name) for f in fields(DecodeStats)})


def score_shard(scorer: BatchScorer, shard: Shard, it: TaskItems, max_new_tokens: int, n_parallel: int,
                progress: bool = False) -> ShardResult:
    """One shard's items (``it``: that range only), scored as every backend scores it."""
    task = TASKS[shard.task]
    before = DecodeStats(**vars(scorer.stats))
    if task.generative:
        summary, res = generate_task(scorer, task, it.docs, it.indices, max_new_tokens, n_parallel, progress)
    else:
        summary, res = evaluate_task(scorer, task, it.docs, it.indices, it.shots, progress)
    return ShardResult(shard, res, summary["seconds"], _delta(scorer.stats, before))


def run_local(scorer: BatchScorer, items: dict[str, TaskItems], shards: Sequence[Shard], max_new_tokens: int,
              n_parallel: int, progress: bool = False) -> list[ShardResult]:
    """Every shard in-process, in plan order, with one scorer."""
    return [score_shard(scorer, s, shard_slice(items[s.task], s), max_new_tokens, n_parallel, progress)
            for s in shards]


def merge(items: dict[str, TaskItems], results: Iterable[ShardResult], max_new_tokens: int
          ) -> tuple[dict[str, tuple[dict, list]], DecodeStats]:
    """Task name -> (summary, per-item results), as :func:`~edgellm.eval.scoring.run_tasks` returns them, and the
    decode counters summed over the shards. Raises if a task's shards do not cover its items exactly once."""
    by_task: dict[str, list[ShardResult]] = {name: [] for name in items}
    stats = DecodeStats()
    for r in results:
        by_task[r.shard.task].append(r)
        for f in fields(DecodeStats):
            setattr(stats, f.name, getattr(stats, f.name) + getattr(r.stats, f.name))
    out = {}
    for name, rs in by_task.items():
        rs.sort(key=lambda r: r.shard.start)
        res = [x for r in rs for x in r.results]
        if [x.index for x in res] != [int(i) for i in items[name].indices]:
            raise RuntimeError(f"{name}: the shards' results do not cover its {len(items[name].indices)} items in order")
        seconds = sum(r.seconds for r in rs)
        task = TASKS[name]
        summary = summarize_generations(res, max_new_tokens, seconds) if task.generative else \
            summarize_items(task, res, seconds)
        out[name] = (summary, res)
    return out, stats
