"""What a quantized KV cache costs and speed at depth (``edgellm.devices.kv_cache``), with llama.cpp's tools on the
tiny model and real WikiText-2."""

from __future__ import annotations

import pytest

from edgellm.devices import kv_cache
from edgellm.devices.memory import KV_TYPES
from edgellm.llamacpp.tools import run_perplexity, tool


def test_quantized_caches_against_the_files_own_f16_cache(tiny_gguf, wiki_file, tmp_path):
    q = kv_cache.kv_quality(tiny_gguf["F16"], wiki_file, tmp_path / "work", threads=2, n_ctx=256, chunks=2)
    assert list(q) == list(KV_TYPES)
    # the f16 run is llama-perplexity's own with the same cache, on the same tokens
    ref = run_perplexity(tool("llama-perplexity"), tiny_gguf["F16"], wiki_file, 256, 2, 2,
                         options=["-fa", "on", "-ctk", "f16", "-ctv", "f16"])
    assert q["f16"]["ppl"] == pytest.approx(ref["ppl"], rel=1e-6)
    for kv in KV_TYPES[1:]:
        assert q[kv]["kld"] >= 0 and 0 < q[kv]["same_top_pct"] <= 100
    # a 4-bit cache loses more than an 8-bit one, and the saved log-probabilities are gone
    assert q["q4_0"]["kld"] > q["q8_0"]["kld"]
    assert not list((tmp_path / "work").iterdir())


def test_speed_at_depth_and_time_to_first_token(tiny_gguf):
    runs = kv_cache.depth_speeds(tiny_gguf["Q4_K_M"], n_prompt=32, n_gen=8, reps=2, threads=2)
    got = {(r["kv_type"], r["depth"], r["test"]) for r in runs}
    assert kv_cache.depths(32) == (0, 32, 128) and kv_cache.depths(512) == (0, 512, 2048)
    assert kv_cache.quality_n_ctx(512) == 2048  # the study's: at least 2,048 tokens
    want = {(KV_TYPES[0], d, t) for d in (0, 32, 128) for t in ("pp", "tg")}
    want |= {(kv, 128, t) for kv in KV_TYPES[1:] for t in ("pp", "tg")}
    assert got == want and all(r["avg_ts"] > 0 for r in runs)
    at = {(r["test"], r["depth"]): r["avg_ts"] for r in runs if r["kv_type"] == KV_TYPES[0]}
    assert kv_cache.time_to_first_token(runs) == pytest.approx(32 / at["pp", 0] + 1 / at["tg", 0])
