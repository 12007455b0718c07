"""The memory model (``edgellm.devices.memory``) against the buffers llama.cpp itself reports allocating, on a tiny
random Gemma 3 with sliding-window and full-attention layers, whole and depth-pruned, at three contexts and the three
KV-cache types."""

from __future__ import annotations

import pytest

from edgellm.compress.prune import drop_layers
from edgellm.devices.memory import KV_TYPES, attention_from, attention_of
from edgellm.llamacpp.buffers import MIB, reported_buffers
from edgellm.llamacpp.convert import convert_hf
from edgellm.llamacpp.gguf import inspect_gguf
from edgellm.paths import project_root

from ..compress.tiny import save_tiny_gemma3

WINDOW = 8
#: llama.cpp prints the KV cache and output buffer in MiB to 2 decimals
PRINTED = 0.006 * MIB


@pytest.fixture(scope="module")
def tiny_gemma(tmp_path_factory, tiny_hf):
    d = tmp_path_factory.mktemp("gemma3-memory")
    src, model = save_tiny_gemma3(d / "hf", tiny_hf, window=WINDOW)
    gguf = convert_hf(src, d / "base.gguf", "f16", project_root())
    # drop the one full-attention block: every block left slides (the KV cache shrinks to windows)
    pruned = drop_layers(model, [5])
    pruned.save_pretrained(d / "pruned", safe_serialization=True)
    for f in ("tokenizer.model", "tokenizer_config.json"):
        (d / "pruned" / f).write_bytes((src / f).read_bytes())
    return {"base": (gguf, list(model.config.layer_types)),
            "pruned": (convert_hf(d / "pruned", d / "pruned.gguf", "f16", project_root()),
                       list(pruned.config.layer_types))}


@pytest.mark.parametrize("which", ["base", "pruned"])
@pytest.mark.parametrize("n_ctx", [256, 512, 2048])  # llama.cpp pads a context to 256 cells
def test_the_buffers_are_those_llama_cpp_allocates(tiny_gemma, which, n_ctx):
    gguf, types = tiny_gemma[which]
    att = attention_from(inspect_gguf(gguf)["tensors"], 4, [t == "sliding_attention" for t in types], WINDOW, 4096)
    for kv in KV_TYPES:
        got = reported_buffers(gguf, n_ctx, kv)
        assert att.kv_bytes(n_ctx, kv) == pytest.approx(got["kv_bytes"], abs=PRINTED * len(got["caches"]))
        assert att.output_bytes() == pytest.approx(got["output_bytes"], abs=PRINTED)
        # within 1.2 % on both default models (benchmarks/memory_buffers.py), where the logits dominate; 3 % here
        assert att.compute_bytes(n_ctx) == pytest.approx(got["compute_bytes"], rel=0.03)
    # a sliding layer keeps its window (padded), not the context
    cells = {c["layers"]: c["cells"] for c in reported_buffers(gguf, n_ctx, "f16")["caches"] if c["layers"]}
    n_swa = sum(t == "sliding_attention" for t in types)
    assert cells.get(n_swa) == att.swa_cells(n_ctx)
    assert (n_swa == len(types)) == (len(cells) == 1)


def test_a_checkpoint_record_gives_the_layout_and_a_missing_match_is_an_upper_bound(tiny_gemma):
    gguf, types = tiny_gemma["pruned"]
    tensors = inspect_gguf(gguf)["tensors"]
    base = {"config": {"num_hidden_layers": 7, "hidden_size": 256, "vocab_size": 512, "num_key_value_heads": 2,
                       "num_attention_heads": 4, "max_position_embeddings": 4096}}
    pruned = {"config": {"num_hidden_layers": 6}, "prune": {"kept_layer_types": types}}
    # no published model of this shape: every layer is taken to attend fully, and the source says so
    att, source = attention_of(tensors, pruned, base, {})
    assert att.window is None and "upper bound" in source
    assert att.kv_bytes(2048) > reported_buffers(gguf, 2048)["kv_bytes"]
    assert att.contexts() == [512, 4096]
