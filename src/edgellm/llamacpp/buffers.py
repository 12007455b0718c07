"""The buffers llama.cpp itself reports allocating for a context: the reference for the memory model.

``llama-completion -v`` prints, while it builds a context, the KV cache it
allocates (``llama_kv_cache: size = ...``, one line per cache: the sliding and
the full-attention layers of an iSWA model have one each), the logits' output
buffer and the compute buffer its scheduler reserves. They are read here for
one context length, KV-cache type and micro-batch, so that
:mod:`edgellm.devices.memory`'s formulas can be held against them.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from .tools import ToolError, tool

MIB = 2**20
ATTEMPTS = 3
_KV = re.compile(r"llama_kv_cache: size = +([\d.]+) MiB \( *(\d+) cells, +(\d+) layers")
_COMPUTE = re.compile(r"compute buffer size is +([\d.]+) MiB")          # at the context's end: 4 decimals
_COMPUTE_RESERVED = re.compile(r"compute buffer size = +([\d.]+) MiB")  # when reserved: 2 decimals
_OUTPUT = re.compile(r"output buffer size = +([\d.]+) MiB")


def reported_buffers(gguf: str | Path, n_ctx: int, kv_type: str = "f16", n_ubatch: int = 512,
                     flash_attn: bool = True, threads: int = 1) -> dict:
    """What llama.cpp allocates for ``n_ctx`` cells: KV bytes (with each cache's cells and layers), compute
    and output buffer bytes, as it prints them (MiB to 2 decimals; the compute buffer to 4)."""
    cmd = [str(tool("llama-completion")), "-m", str(gguf), "-c", str(n_ctx), "-ctk", kv_type, "-ctv", kv_type,
           "-fa", "on" if flash_attn else "off", "-ub", str(n_ubatch), "-b", str(max(n_ubatch, 2048)), "-n", "1",
           "-p", "Hello", "-no-cnv", "--no-warmup", "-t", str(threads), "-fit", "off", "-v"]
    # llama.cpp's log is written by a thread of its own, which now and then loses its last lines when the
    # program ends: a run whose log lacks the sizes is repeated
    for _ in range(ATTEMPTS):
        # the one generated token of a random test model need not be UTF-8: read the output as bytes
        proc = subprocess.run(cmd, capture_output=True)
        text = (proc.stdout + proc.stderr).decode(errors="replace")
        if proc.returncode != 0:
            raise ToolError(f"llama-completion (buffers of {Path(gguf).name} at n_ctx {n_ctx}, {kv_type} cache) "
                            f"failed (exit {proc.returncode}): {' '.join(cmd)}\n{text[-1500:]}")
        caches = [{"bytes": float(m.group(1)) * MIB, "cells": int(m.group(2)), "layers": int(m.group(3))}
                  for m in _KV.finditer(text)]
        comp, outp = _COMPUTE.search(text) or _COMPUTE_RESERVED.search(text), _OUTPUT.search(text)
        if caches and comp is not None and outp is not None:
            return {"kv_bytes": sum(c["bytes"] for c in caches), "caches": caches,
                    "compute_bytes": float(comp.group(1)) * MIB, "output_bytes": float(outp.group(1)) * MIB}
    raise ToolError(f"{gguf}: llama-completion printed no buffer sizes in {ATTEMPTS} runs (n_ctx {n_ctx}, "
                    f"{kv_type}):\n{text[-2000:]}")
