"""The memory model against the buffers llama.cpp reports, on the study's base models, at every context length and
KV-cache type the accessibility verdicts use.

For each base model: its GGUF file (the study's ``F16`` by default, or ``--gguf MODEL=PATH``; every type has the
same KV cache and buffers), its checkpoint record (head count, trained context) and the published model of its
shape (sliding-window layout). Prints, per context and KV type, the KV cache, compute and output buffers of
:mod:`edgellm.devices.memory` beside ``llama-completion -v``'s, and the largest relative differences:

    python benchmarks/memory_buffers.py
    python benchmarks/memory_buffers.py --gguf gemma3-270m=/path/gemma-3-270m-q4_k_m.gguf
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _common import LAYOUT, study_gguf

from edgellm.config import load_params
from edgellm.devices.memory import KV_TYPES, attention_of
from edgellm.devices.published import load_archs
from edgellm.io import read_json
from edgellm.llamacpp.buffers import MIB, reported_buffers
from edgellm.llamacpp.gguf import inspect_gguf


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gguf", action="append", default=[], metavar="MODEL=PATH")
    a = ap.parse_args()
    given = dict(g.split("=", 1) for g in a.gguf)
    params = load_params(LAYOUT.params)
    archs = load_archs(LAYOUT.published_models)
    worst = {"kv": 0.0, "compute": 0.0, "output": 0.0}
    print("| model | n_ctx | KV type | KV MiB (model / llama.cpp) | compute MiB | output MiB |")
    print("|---|---:|---|---:|---:|---:|")
    for model in params.models:
        path = Path(given[model]) if model in given else study_gguf(params.evaluate.kl_base, model)
        rec = read_json(LAYOUT.model_record(model))
        att, layout = attention_of(inspect_gguf(path)["tensors"], rec, rec, archs)
        for n_ctx in att.contexts():
            for kv in KV_TYPES:
                got = reported_buffers(path, n_ctx, kv, threads=params.threads)
                mine = {"kv": att.kv_bytes(n_ctx, kv), "compute": att.compute_bytes(n_ctx),
                        "output": att.output_bytes()}
                for k in worst:
                    worst[k] = max(worst[k], abs(mine[k] / got[f"{k}_bytes"] - 1))
                cells = " | ".join(f"{mine[k] / MIB:.2f} / {got[f'{k}_bytes'] / MIB:.2f}" for k in worst)
                print(f"| {model} | {n_ctx} | {kv} | {cells} |")
        print(f"<!-- {model}: {layout} -->")
    print("largest relative difference: " + ", ".join(f"{k} {100 * v:.2f} %" for k, v in worst.items()))


if __name__ == "__main__":
    main()
