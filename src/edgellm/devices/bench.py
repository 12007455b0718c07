"""Resource consumption on a device, measured the way ``llama-bench`` measures it.

``pp`` (prompt processing): a prompt of ``n_prompt`` random tokens decoded in
``n_batch`` pieces into an empty KV cache of ``n_prompt`` cells; ``tg`` (token
generation): ``n_gen`` single-token decodes with logits, into a cache of
``n_gen`` cells. Each test has one warm-up run, then ``repetitions`` timed runs;
the speed is the mean and sample standard deviation of tokens/s over the runs,
as llama-bench reports ``avg_ts`` and ``stddev_ts``. A profile runs in a child
process so that its peak RSS is the model's alone.
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from ..llamacpp.runtime import Batch, Model
from .energy import RaplCounter, from_counter
from .host import rss_bytes


def _speed(n_tokens: int, seconds: list[float]) -> dict:
    ts = [n_tokens / s for s in seconds]
    return {"n_tokens": n_tokens, "avg_ts": statistics.fmean(ts),
            "stddev_ts": statistics.stdev(ts) if len(ts) > 1 else 0.0, "samples_ts": ts}


def _prompt(model: Model, batch: Batch, tokens: np.ndarray) -> None:
    """llama-bench's test_prompt: decode ``tokens`` in n_batch pieces, logits for the last only."""
    done = 0
    while done < len(tokens):
        piece = tokens[done : done + batch.capacity]
        batch.clear()
        mask = np.zeros(len(piece), dtype=bool)
        mask[-1] = True
        batch.add(piece, done, [0], mask)
        model.decode(batch)
        done += len(piece)
    model.synchronize()


def bench_pp(model: Model, n_prompt: int, threads: int, reps: int, rng: np.random.Generator,
             n_batch: int = 2048) -> dict:
    model.new_context(n_ctx=n_prompt, n_batch=n_batch, n_threads=threads)
    batch = Batch(min(n_batch, n_prompt), 1)

    def prompt() -> np.ndarray:
        toks = rng.integers(0, model.n_vocab, n_prompt, dtype=np.int32)
        if model.add_bos:
            toks[0] = model.bos
        return toks

    _prompt(model, batch, prompt())  # warm-up
    times = []
    for _ in range(reps):
        model.clear()
        toks = prompt()
        t0 = time.perf_counter_ns()
        _prompt(model, batch, toks)
        times.append((time.perf_counter_ns() - t0) / 1e9)
    return _speed(n_prompt, times)


def _generate(model: Model, batch: Batch, n_gen: int, rng: np.random.Generator) -> None:
    token = model.bos if model.add_bos else int(rng.integers(model.n_vocab))
    for pos in range(n_gen):
        batch.clear()
        batch.add([token], pos, [0], True)
        model.decode(batch)
        model.synchronize()
        token = int(rng.integers(model.n_vocab))


def bench_tg(model: Model, n_gen: int, threads: int, reps: int, rng: np.random.Generator) -> dict:
    """tg tokens/s; with readable RAPL counters also the energy per generated token (whole package)."""
    model.new_context(n_ctx=n_gen, n_batch=2048, n_threads=threads)
    batch = Batch(1, 1)
    _generate(model, batch, 1, rng)  # warm-up
    rapl = RaplCounter.open()
    times, joules = [], 0.0
    for _ in range(reps):
        model.clear()
        e0 = rapl.read() if rapl else None
        t0 = time.perf_counter_ns()
        _generate(model, batch, n_gen, rng)
        times.append((time.perf_counter_ns() - t0) / 1e9)
        if rapl:
            joules += rapl.joules_since(e0)
    out = _speed(n_gen, times)
    if rapl:
        out["energy"] = from_counter(joules, sum(times), n_gen * reps, "rapl")
    return out


def bench_ttft(model: Model, n_prompt: int, threads: int, reps: int, rng: np.random.Generator) -> dict:
    """Time to first token: prompt decode plus the greedy choice of the first new token."""
    model.new_context(n_ctx=n_prompt + 8, n_batch=2048, n_threads=threads)
    batch = Batch(n_prompt, 1)
    times = []
    for i in range(reps + 1):
        model.clear()
        toks = rng.integers(0, model.n_vocab, n_prompt, dtype=np.int32)
        t0 = time.perf_counter_ns()
        batch.clear()
        mask = np.zeros(n_prompt, dtype=bool)
        mask[-1] = True
        batch.add(toks, 0, [0], mask)
        int(np.argmax(model.decode(batch)[0]))
        if i:  # the first run is the warm-up
            times.append((time.perf_counter_ns() - t0) / 1e9)
    return {"n_prompt": n_prompt, "mean_s": statistics.fmean(times),
            "stddev_s": statistics.stdev(times) if len(times) > 1 else 0.0}


def profile_model(path: str | Path, threads: list[int], n_prompt: int, n_gen: int, reps: int,
                  ttft_prompt: int, seed: int) -> dict:
    """All measurements of one GGUF file, in this process (see :func:`profile_in_subprocess`)."""
    rss_before = rss_bytes()
    rng = np.random.default_rng(seed)
    model = Model(path, n_ctx=n_prompt, n_batch=2048, n_threads=max(threads))
    out = {
        "file_bytes": Path(path).stat().st_size,
        "model_bytes": model.size_bytes,
        "n_params": model.n_params,
        "load_seconds": model.load_seconds,
        "rss_before_load_bytes": rss_before,
        "runs": [],
    }
    for t in threads:
        out["runs"].append({
            "threads": t,
            f"pp{n_prompt}": bench_pp(model, n_prompt, t, reps, rng),
            f"tg{n_gen}": bench_tg(model, n_gen, t, reps, rng),
            "ttft": bench_ttft(model, ttft_prompt, t, reps, rng),
        })
    model.close()
    out["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out["peak_rss_model_bytes"] = out["peak_rss_bytes"] - rss_before
    return out


def profile_in_subprocess(path: str | Path, **kw) -> dict:
    """Run :func:`profile_model` in a fresh interpreter so peak RSS belongs to this model only."""
    code = (
        "import json,sys; from edgellm.devices.bench import profile_model; "
        "print(json.dumps(profile_model(**json.loads(sys.argv[1]))))"
    )
    args = json.dumps({"path": str(path), **kw})
    proc = subprocess.run([sys.executable, "-c", code, args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"profiling {path} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
