"""What a quantized KV cache costs, and how speed falls with context depth: llama.cpp's own measurements.

Two measurements of one GGUF file on this host, both with llama.cpp's tools:

- **quality** (``llama-perplexity``): the same tokens of WikiText-2 at a long
  context, once with the K and V caches in ``f16`` (saving its
  log-probabilities with ``--kl-divergence-base``), then with each quantized
  cache type against it (``--kl-divergence``): perplexity, mean KL divergence,
  the share of tokens whose most probable next token is unchanged, and the RMS
  of the probability change. Flash attention is on, as llama.cpp requires for a
  quantized V cache. This is the llama.cpp KV-type measurement, with the file's
  own f16 cache as the reference, so it isolates the cache;
- **speed at depth** (``llama-bench -d``): pp and tg after ``depth`` tokens are
  already in the cache, for the f16 cache at every depth and for each quantized
  type at the deepest one; and the time to first token of a ``n_prompt``-token
  prompt, ``n_prompt / pp + 1 / tg`` at depth 0.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..llamacpp.tools import run_perplexity, run_tool, tool
from .memory import KV_TYPES

#: The context of the quality measurement and the depths of the speed measurement (tokens already in the cache),
#: in prompt lengths of the profile (``profile.n_prompt``, llama-bench's pp prompt). At the study's 512-token
#: prompt: a 2,048-token context (llama.cpp's KV-type comparisons use long contexts) in 2 chunks, each scoring its
#: second half (2,048 tokens scored), and depths 0, 512 and 2,048. A smoke study's short prompt shrinks them with
#: it (its kv_cache stages had measured 2,048-token contexts of the real SmolLM2: 8 of the test suite's minutes).
QUALITY_CONTEXT_PROMPTS = 4
QUALITY_CHUNKS = 2
DEPTH_PROMPTS = (0, 1, 4)


def quality_n_ctx(n_prompt: int) -> int:
    """The quality measurement's context for a profile prompt of ``n_prompt`` tokens."""
    return QUALITY_CONTEXT_PROMPTS * n_prompt


def depths(n_prompt: int) -> tuple[int, ...]:
    """The speed measurement's depths for a profile prompt of ``n_prompt`` tokens."""
    return tuple(k * n_prompt for k in DEPTH_PROMPTS)


def _cache(kv: str) -> list[str]:
    return ["-fa", "on", "-ctk", kv, "-ctv", kv]


def kv_quality(gguf: Path, text: Path, work: Path, threads: int, n_ctx: int,
               chunks: int = QUALITY_CHUNKS) -> dict[str, dict]:
    """Per KV-cache type: llama-perplexity's perplexity and, for the quantized ones, its KL divergence statistics
    against the f16 cache of the same file on the same tokens. ``work`` holds the f16 run's log-probabilities
    (deleted afterwards: on a 262,144-token vocabulary they take about 1 GB)."""
    binary = tool("llama-perplexity")
    base = work / f"{gguf.stem}.kv-f16.kld"
    work.mkdir(parents=True, exist_ok=True)
    try:
        out = {KV_TYPES[0]: run_perplexity(binary, gguf, text, n_ctx, chunks, threads, options=_cache(KV_TYPES[0]),
                                           kl_base=base)}
        for kv in KV_TYPES[1:]:
            out[kv] = run_perplexity(binary, gguf, text, n_ctx, chunks, threads, options=_cache(kv), kl_base=base,
                                     kl_compare=True)
    finally:
        base.unlink(missing_ok=True)
    return out


def depth_speeds(gguf: Path, n_prompt: int, n_gen: int, reps: int, threads: int) -> list[dict]:
    """llama-bench's pp and tg at each of :func:`depths` with the f16 cache, and with each quantized cache at the
    deepest: one row per (cache type, depth, test) as llama-bench reports it."""
    runs = []
    # one run per type: given lists, llama-bench would cross every K type with every V type
    for kv in KV_TYPES:
        at = depths(n_prompt) if kv == KV_TYPES[0] else depths(n_prompt)[-1:]
        cmd = [str(tool("llama-bench")), "-m", str(gguf), "-p", str(n_prompt), "-n", str(n_gen), "-r", str(reps),
               "-t", str(threads), "-fa", "1", "-ctk", kv, "-ctv", kv, "-d", ",".join(map(str, at)), "-o", "json"]
        for r in json.loads(run_tool(cmd, "llama-bench at depth").stdout):
            runs.append({"kv_type": r["type_k"], "depth": r["n_depth"], "test": "pp" if r["n_prompt"] else "tg",
                         "n": r["n_prompt"] or r["n_gen"], "avg_ts": r["avg_ts"], "stddev_ts": r["stddev_ts"]})
    return runs


def time_to_first_token(runs: list[dict]) -> float:
    """Seconds to the first generated token of the f16 cache's pp prompt at depth 0: the prompt, then one token."""
    at = {(r["test"], r["depth"]): r for r in runs if r["kv_type"] == KV_TYPES[0]}
    pp, tg = at["pp", 0], at["tg", 0]
    return pp["n"] / pp["avg_ts"] + 1 / tg["avg_ts"]
