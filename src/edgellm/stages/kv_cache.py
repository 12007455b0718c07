"""Stage ``kv_cache@<variant>``: what llama.cpp's quantized KV caches cost in quality, and speed at context depth,
for a deployed variant of a base model (:mod:`edgellm.devices.kv_cache`)."""

from __future__ import annotations

import time
from pathlib import Path

from ..devices import kv_cache
from ..io import write_json
from ..provenance import versions
from .common import context, study_variant, variant_fields


def run(variant: str, params_path: str | Path | None = None) -> dict:
    params, lay = context(params_path)
    v = study_variant(lay, variant)
    pr = params.profile
    gguf = lay.gguf(v.checkpoint, v.qtype)
    t0 = time.perf_counter()
    n_ctx = kv_cache.quality_n_ctx(pr.n_prompt)
    quality = kv_cache.kv_quality(gguf, lay.wikitext, lay.work("kv_cache"), params.threads, n_ctx)
    speeds = kv_cache.depth_speeds(gguf, pr.n_prompt, pr.n_gen, pr.repetitions, params.threads)
    record = {**variant_fields(v), "n_ctx": n_ctx, "chunks": kv_cache.QUALITY_CHUNKS,
              "quality": quality, "speeds": speeds, "ttft_s": kv_cache.time_to_first_token(speeds),
              "ttft_prompt": pr.n_prompt, "seconds": time.perf_counter() - t0, "versions": versions()}
    write_json(record_path(lay.root, variant), record)
    return record


def record_path(root: Path, variant: str) -> Path:
    """``results/kv_cache/<variant>.json``."""
    return Path(root) / "results" / "kv_cache" / f"{variant}.json"
