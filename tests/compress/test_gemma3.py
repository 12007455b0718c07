"""A tiny random Gemma 3 (sliding-window and global blocks, q/k norms, four norms per block) through pruning,
llama.cpp's converter and the runtime: its logits agree with the float model as the Llama tests' do.

The window (8 tokens) is far shorter than the 48-token prompt, and the two kinds of block use different RoPE
bases, so a block the runtime takes for the wrong kind changes the logits: the depth-pruned model drops a
global block, which moves every later block off llama.cpp's default one-global-in-six rule.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from edgellm.compress.activations import token_batches
from edgellm.compress.prune import drop_layers, prune_depth, prune_unstructured, prune_width
from edgellm.llamacpp.convert import convert_hf, swa_pattern
from edgellm.llamacpp.runtime import Batch, Model, log_softmax_rows
from edgellm.paths import project_root

from .tiny import ROWS, SEQ, save_tiny_gemma3, tiny_gemma3

PROMPT = 48


@pytest.fixture(scope="module")
def gemma(tmp_path_factory, tiny_hf):
    return save_tiny_gemma3(tmp_path_factory.mktemp("gemma3"), tiny_hf)


def _save(model, like, d):
    model.save_pretrained(d, safe_serialization=True)
    for f in ("tokenizer.model", "tokenizer_config.json"):
        shutil.copy(like / f, d / f)
    return d


def _llama_logprobs(gguf, ids) -> np.ndarray:
    with Model(gguf, n_ctx=64, n_batch=64, n_threads=2, kv_f32=True) as m:
        batch = Batch(64, 1)
        batch.add(ids.tolist(), 0, [0], True)
        return log_softmax_rows(m.decode(batch))


def _agree(gguf, model, ids):
    with torch.no_grad():
        ref = torch.log_softmax(model(input_ids=ids[None]).logits[0].float(), -1).numpy()
    got = _llama_logprobs(gguf, ids)
    np.testing.assert_allclose(got, ref, atol=2e-2)
    assert np.abs(got - ref).mean() < 3e-3
    top2 = np.sort(ref, -1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 0.02  # a random model has near-ties, which float rounding may flip
    assert clear.mean() > 0.8 and np.array_equal(got.argmax(-1)[clear], ref.argmax(-1)[clear])
    return got


def test_pruned_gemma3_converts_and_agrees_with_llama_cpp(gemma, text_ids, tmp_path):
    src, base = gemma
    ids = text_ids[:PROMPT]
    batches = token_batches(text_ids, SEQ, ROWS * SEQ, 4)
    _agree(convert_hf(src, tmp_path / "base.gguf", "f32", project_root()), base, ids)

    # drop block 5, the only global one before the last: the blocks after it are no longer where llama.cpp's
    # default rule puts the global ones, so the file must carry the pattern the checkpoint's config holds
    depth, rec = prune_depth(base, batches, 1, "kl", kl_scores=[1.0] * 5 + [0.0] + [1.0])
    assert rec["removed"] == [5] and rec["kept_global_layers"] == [] and depth.config.layer_types == ["sliding_attention"] * 6
    width, wrec = prune_width(base, batches, intermediate_size=384, num_heads=2, num_kv_heads=1)
    assert wrec["num_attention_heads"] == 2 and width.config.layer_types == base.config.layer_types
    sparse = tiny_gemma3()
    prune_unstructured(sparse, "wanda", pattern="2:4", batches=batches)
    for name, model in {"depth": depth, "width": width, "wanda": sparse}.items():
        d = _save(model, src, tmp_path / name)
        gguf = convert_hf(d, tmp_path / f"{name}.gguf", "f32", project_root())
        _agree(gguf, model, ids)
    assert swa_pattern(json.loads((tmp_path / "depth" / "config.json").read_text())) == [True] * 6


def test_without_the_pattern_the_runtime_takes_a_sliding_block_for_a_global_one(gemma, text_ids, tmp_path):
    """The control: the same depth-pruned file without the per-block pattern (llama.cpp's default rule makes
    block 5, once sliding, global) no longer agrees with the float model."""
    import gguf as gguf_py
    from gguf.scripts.gguf_new_metadata import copy_with_new_metadata

    src, base = gemma
    ids = text_ids[:PROMPT]
    depth = drop_layers(base, [5])
    with_pattern = convert_hf(_save(depth, src, tmp_path / "d"), tmp_path / "d.gguf", "f32", project_root())
    reader = gguf_py.GGUFReader(with_pattern)
    key = gguf_py.Keys.Attention.SLIDING_WINDOW_PATTERN.format(arch="gemma3")
    assert list(reader.fields[key].contents()) == [True] * 6
    without = tmp_path / "no-pattern.gguf"
    copy_with_new_metadata(reader, gguf_py.GGUFWriter(without, arch="gemma3"), {}, [key])
    with torch.no_grad():
        ref = torch.log_softmax(depth(input_ids=ids[None]).logits[0].float(), -1).numpy()
    assert np.abs(_llama_logprobs(without, ids) - ref).max() > 0.1
    np.testing.assert_allclose(_llama_logprobs(with_pattern, ids), ref, atol=2e-2)
