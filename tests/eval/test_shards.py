"""Shards: a task's item ranges, scored in-process or on a real local Ray cluster, merged in item order.

The Ray test starts a cluster on loopback the way a user would on real nodes (``ray start --head`` and
``ray start --address`` for a second node), runs the evaluation's shards through it with the model sent
through the object store, and requires the merged results to equal the in-process ones bit for bit.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import pytest

from edgellm.eval import shards
from edgellm.eval.batched import BatchScorer
from edgellm.eval.scoring import run_tasks
from edgellm.eval.tasks import TASKS, select_items
from edgellm.llamacpp.runtime import Model

ITEMS = {"arc_easy": 7, "piqa": 5, "lambada_openai": 6, "truthfulqa_gen": 3}
CONTEXT = {"n_ctx": 4096, "n_batch": 512, "n_ubatch": 512, "n_seq_max": 256}
RAY = Path(sys.executable).with_name("ray")


@pytest.fixture(scope="module")
def items(data_dir):
    return {name: select_items(TASKS[name], data_dir, n, seed=5) for name, n in ITEMS.items()}


def _local(gguf: Path, items: dict, shard_items: int | None):
    with Model(gguf, **CONTEXT, n_threads=1) as m:
        plan = shards.plan(items, shard_items)
        return plan, shards.merge(items, shards.run_local(BatchScorer(m, 512), items, plan, 8, 2), 8)


def _bits(results: dict) -> dict:
    """Everything a result says but the time it took."""
    out = {}
    for name, (summary, res) in results.items():
        out[name] = ({k: v for k, v in summary.items() if k != "seconds"}, [asdict(r) for r in res])
    return json.loads(json.dumps(out))


def test_the_plan_splits_tasks_into_ranges_and_keeps_a_generative_task_whole(items):
    plan = shards.plan(items, 3)
    assert [(s.task, s.start, s.stop) for s in plan] == [
        ("arc_easy", 0, 3), ("arc_easy", 3, 6), ("arc_easy", 6, 7), ("piqa", 0, 3), ("piqa", 3, 5),
        ("lambada_openai", 0, 3), ("lambada_openai", 3, 6), ("truthfulqa_gen", 0, 3)]
    assert [(s.task, s.start, s.stop) for s in shards.plan(items, None)] == [(n, 0, k) for n, k in ITEMS.items()]


def test_one_shard_per_task_is_the_unsharded_evaluation(tiny_gguf, items):
    """The default plan (``shard_items: null``) reproduces run_tasks, item for item and bit for bit."""
    _, (sharded, stats) = _local(tiny_gguf["Q8_0"], items, None)
    with Model(tiny_gguf["Q8_0"], **CONTEXT, n_threads=1) as m:
        scorer = BatchScorer(m, 512)
        plain = run_tasks(scorer, items, 8, 2, progress=False)
    assert _bits(sharded) == _bits(plain)
    assert (stats.tokens, stats.outputs, stats.decodes) == (scorer.stats.tokens, scorer.stats.outputs,
                                                            scorer.stats.decodes)


def test_merge_rejects_shards_that_do_not_cover_the_items(tiny_gguf, items):
    with Model(tiny_gguf["Q8_0"], **CONTEXT, n_threads=1) as m:
        plan = shards.plan(items, 3)
        done = shards.run_local(BatchScorer(m, 512), items, plan[1:], 8, 2)
    with pytest.raises(RuntimeError, match="arc_easy: the shards' results do not cover its 7 items"):
        shards.merge(items, done, 8)


@pytest.fixture(scope="module")
def ray_cluster():
    """A head and one worker node on loopback, one CPU each, torn down after (``ray stop``)."""
    tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths have a length limit
    # no token authentication: a local `ray.init` (the e2e test's) leaves ~/.ray/auth_token, which a head node then
    # requires and a worker node does not send; the driver (this process) must agree with both
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="disabled",
               PATH=f"{RAY.parent}{os.pathsep}{os.environ['PATH']}")
    saved = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    with socket.socket() as s:  # a free port: a fixed one can be taken by another Ray on the machine
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])

    def ray(*args: str, tries: int = 1) -> None:
        for attempt in range(tries):  # a worker may ask before the head's GCS answers: ask again
            proc = subprocess.run([str(RAY), *args], env=env, capture_output=True, text=True, timeout=180)
            if proc.returncode == 0:
                return
            time.sleep(5)
        raise RuntimeError(f"ray {' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")

    try:
        subprocess.run([str(RAY), "stop", "--force"], env=env, capture_output=True, timeout=120)
        ray("start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=1",
            "--include-dashboard=false", f"--temp-dir={tmp}", "--disable-usage-stats")
        ray("start", f"--address=127.0.0.1:{port}", "--node-ip-address=127.0.0.1", "--num-cpus=1", tries=4)
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([str(RAY), "stop", "--force"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(tmp, ignore_errors=True)
        if saved is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = saved


def test_shards_on_a_real_ray_cluster_merge_to_the_in_process_bits(tiny_gguf, items, ray_cluster):
    """Two nodes, two workers, the model through the object store: the same bits as in-process."""
    from edgellm.eval import cluster

    gguf = tiny_gguf["Q4_K_M"]
    plan, (local, local_stats) = _local(gguf, items, 3)
    done, where = cluster.run_shards(gguf, items, plan, context=CONTEXT, n_batch=512, threads=1, max_new_tokens=8,
                                     n_parallel=2, address=ray_cluster, model_transfer="object_store", progress=False)
    remote, remote_stats = shards.merge(items, done, 8)
    assert _bits(remote) == _bits(local)
    assert (remote_stats.tokens, remote_stats.decodes) == (local_stats.tokens, local_stats.decodes)
    assert len(where) == 2 and len({w["node_id"] for w in where}) == 2, where  # one worker per node
    assert all(w["copied"] and w["path"] != str(gguf) for w in where), where  # bytes, not the driver's path
