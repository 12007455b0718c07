"""Shards on a Ray cluster: each worker (a Ray actor) loads the GGUF file once and scores the shards it is given.

What travels: the shard's items (their processed documents, small) with each call, and the model once per
worker, either as bytes through Ray's object store (``model_transfer: object_store``: the worker writes them
to a local temporary file; nodes need share nothing) or as a path every node can read (``path``: a shared
filesystem). The results come back in plan order (:class:`ray.util.ActorPool` ``map``), so
:func:`edgellm.eval.shards.merge` sees what :func:`~edgellm.eval.shards.run_local` would give, bit for bit.
Perplexity and KL are not distributed: they run where the stage runs, next to the KL reference.
"""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Sequence
from pathlib import Path

import ray
from ray.util import ActorPool
from tqdm.auto import tqdm

from ..llamacpp.runtime import Model
from .batched import BatchScorer
from . import shards
from .shards import Shard, ShardResult, score_shard, shard_slice
from .tasks import TaskItems


class ShardWorker:
    """One model and one scorer on one Ray worker (a plain class: :func:`run_shards` wraps it in ``ray.remote``)."""

    def __init__(self, model: bytes | str, context: dict, n_batch: int, threads: int, n_gpu_layers: int = 0):
        if isinstance(model, bytes):  # through the object store: a local copy on this node
            fd, path = tempfile.mkstemp(prefix="edgellm-", suffix=".gguf")
            with os.fdopen(fd, "wb") as f:
                f.write(model)
            self.path, self.copied = path, True
        else:
            self.path, self.copied = model, False
        self.model = Model(self.path, **context, n_threads=threads, n_gpu_layers=n_gpu_layers)
        self.scorer = BatchScorer(self.model, n_batch)

    def where(self) -> dict:
        """Which node and which file this worker scores with (the tests check that bytes were copied)."""
        return {"host": socket.gethostname(), "node_id": ray.get_runtime_context().get_node_id(),
                "path": self.path, "copied": self.copied, "pid": os.getpid()}

    def score(self, shard: Shard, items: TaskItems, max_new_tokens: int, n_parallel: int) -> ShardResult:
        return score_shard(self.scorer, shard, items, max_new_tokens, n_parallel)

    def close(self) -> None:
        self.model.close()
        if self.copied:
            Path(self.path).unlink(missing_ok=True)


def connect(address: str | None, threads: int) -> bool:
    """Join the cluster at ``address`` (or start a local Ray instance when None); True if this call started Ray."""
    if ray.is_initialized():
        return False
    kwargs = {"include_dashboard": False, "logging_level": "WARNING", "log_to_driver": False}
    if address is None:
        ray.init(num_cpus=threads, **kwargs)
    else:
        ray.init(address=address, **kwargs)
    return True


def run_shards(gguf: Path, items: dict[str, TaskItems], shards: Sequence[Shard], *, context: dict, n_batch: int,
               threads: int, max_new_tokens: int, n_parallel: int, address: str | None = None,
               model_transfer: str = "object_store", workers: int | None = None, n_gpu_layers: int = 0,
               progress: bool = True) -> tuple[list[ShardResult], list[dict]]:
    """Score ``shards`` on Ray workers; the results in plan order, and where each worker ran."""
    started = connect(address, threads)
    try:
        cpus = int(ray.cluster_resources().get("CPU", threads))
        n = max(1, min(workers or max(1, cpus // threads), len(shards)))
        model = ray.put(Path(gguf).read_bytes()) if model_transfer == "object_store" else str(Path(gguf).resolve())
        opts = {"num_cpus": min(threads, cpus)} | ({"num_gpus": 1} if n_gpu_layers else {})
        remote = ray.remote(ShardWorker).options(**opts)
        actors = [remote.remote(model, context, n_batch, threads, n_gpu_layers) for _ in range(n)]
        where = ray.get([a.where.remote() for a in actors])
        pool = ActorPool(actors)
        calls = pool.map(lambda a, s: a.score.remote(s, shard_slice(items[s.task], s), max_new_tokens, n_parallel),
                         list(shards))
        results = list(tqdm(calls, total=len(shards), desc="shards", unit="shard", disable=not progress))
        ray.get([a.close.remote() for a in actors])
        for a in actors:
            ray.kill(a)
        return results, where
    finally:
        if started:
            ray.shutdown()


def score_items(gguf: Path, items: dict[str, TaskItems], *, shard_items: int | None, context: dict, n_batch: int,
                threads: int, max_new_tokens: int, n_parallel: int, backend: str = "local",
                address: str | None = None, model_transfer: str = "object_store", workers: int | None = None,
                n_gpu_layers: int = 0, model: Model | None = None, progress: bool = True) -> dict:
    """A variant's task items scored by the shard plan, in-process (on ``model``, whose context is switched to
    ``context``, or on the file loaded once) or on Ray, and merged: what the evaluate stage and ``edgellm eval``
    share. Returns the merged results, the decode counters, the number of shards and where Ray workers ran."""
    plan = shards.plan(items, shard_items)
    where: list[dict] = []
    if backend == "ray":
        done, where = run_shards(gguf, items, plan, context=context, n_batch=n_batch, threads=threads,
                                 max_new_tokens=max_new_tokens, n_parallel=n_parallel, address=address,
                                 model_transfer=model_transfer, workers=workers, n_gpu_layers=n_gpu_layers,
                                 progress=progress)
    else:
        own = model is None
        if own:
            model = Model(gguf, **context, n_threads=threads, n_gpu_layers=n_gpu_layers)
        else:
            model.new_context(**context, n_threads=threads)
        try:
            done = shards.run_local(BatchScorer(model, n_batch), items, plan, max_new_tokens, n_parallel, progress)
        finally:
            if own:
                model.close()
    results, stats = shards.merge(items, done, max_new_tokens)
    return {"results": results, "stats": stats, "shards": len(plan), "where": where}
