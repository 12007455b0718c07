"""Pruning (``edgellm.compress.prune``, ``edgellm.compress.activations``) on tiny Llama models built in the test."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgellm.compress.activations import token_batches
from edgellm.compress.prune import (
    block_drop_kl,
    count_params,
    drop_layers,
    layer_importance,
    prune_depth,
    prune_unstructured,
    prune_width,
)

from .tiny import ROWS, SEQ, block_weights, logits, tiny_llama


# --------------------------------------------------------------------------- unstructured
def test_magnitude_zeroes_the_share_of_each_matrix(batches):
    model = tiny_llama()
    shapes = {n: p.shape for n, p in model.named_parameters()}
    rec = prune_unstructured(model, "magnitude", sparsity=0.5)
    for n, w in block_weights(model).items():
        assert (w == 0).float().mean() == pytest.approx(0.5, abs=1 / w.numel()), n
    assert {n: p.shape for n, p in model.named_parameters()} == shapes
    assert rec["block_sparsity"] == pytest.approx(0.5, abs=1e-3)
    assert int(torch.count_nonzero(model.model.embed_tokens.weight)) == model.model.embed_tokens.weight.numel()


def test_wanda_prunes_per_row_and_follows_the_activations(batches):
    model = tiny_llama()
    # input channel 3 of every attention projection never carries signal: Wanda must prune it first
    for layer in model.model.layers:
        layer.input_layernorm.weight.data[3] = 0.0
    prune_unstructured(model, "wanda", sparsity=0.25, batches=batches)
    for n, w in block_weights(model).items():
        assert torch.all((w == 0).sum(1) == int(w.shape[1] * 0.25)), n  # exactly 25 % of each row
        if n.endswith(("q_proj.weight", "k_proj.weight", "v_proj.weight")):
            assert torch.all(w[:, 3] == 0), n


def test_two_four_keeps_two_of_every_four(batches):
    model = tiny_llama()
    prune_unstructured(model, "wanda", pattern="2:4", batches=batches)
    for n, w in block_weights(model).items():
        groups = (w != 0).view(w.shape[0], -1, 4).sum(-1)
        assert torch.all(groups == 2), n


# --------------------------------------------------------------------------- depth
def _make_identity(layer) -> None:
    """A block whose attention and MLP write nothing into the residual stream."""
    layer.self_attn.o_proj.weight.data.zero_()
    layer.mlp.down_proj.weight.data.zero_()


@pytest.mark.parametrize("metric", ["block_influence", "angular", "kl"])
def test_depth_pruning_drops_a_block_that_does_nothing(batches, metric):
    model = tiny_llama(layers=4)
    _make_identity(model.model.layers[2])
    pruned, rec = prune_depth(model, batches, 1, metric)
    assert rec["removed"] == [2]
    assert pruned.config.num_hidden_layers == 3 and len(pruned.model.layers) == 3
    assert count_params(pruned)["params"] < count_params(model)["params"]
    for ids in batches:
        torch.testing.assert_close(logits(pruned, ids), logits(model, ids), rtol=1e-5, atol=1e-5)
    # the generated cache indices follow the new numbering
    out = pruned.generate(input_ids=batches[0][:1, :8], max_new_tokens=4, do_sample=False)
    assert out.shape == (1, 12)


def test_block_influence_ranks_every_layer(batches):
    model = tiny_llama(layers=4)
    imp = layer_importance(model, batches, 2, "block_influence")
    assert len(imp["scores"]) == 4 and len(imp["removed"]) == 2
    assert all(0 <= s <= 2 for s in imp["scores"])
    order = sorted(range(4), key=lambda i: imp["scores"][i])
    assert sorted(order[:2]) == imp["removed"]


def test_kl_importance_is_the_kl_of_really_dropping_each_block(batches):
    # the hook that skips a block must give what drop_layers builds: each score is the KL to the model
    # with that block really removed, and the cheapest block is the one dropped
    model = tiny_llama(layers=4)
    imp = layer_importance(model, batches, 1, "kl")
    for i, score in enumerate(imp["scores"]):
        dropped = drop_layers(model, [i])
        kl = [torch.nn.functional.kl_div(torch.log_softmax(logits(dropped, ids), -1),
                                         torch.log_softmax(logits(model, ids), -1), log_target=True,
                                         reduction="sum") for ids in batches]
        assert score == pytest.approx(float(sum(kl)) / sum(ids.numel() for ids in batches), rel=1e-4), i
    assert min(imp["scores"]) > 0
    assert imp["removed"] == [min(range(4), key=lambda i: imp["scores"][i])]


def test_depth_pruning_by_kl_scores_computed_once_drops_what_scoring_again_drops(batches):
    # the block_kl stage scores a base model once; every depth recipe reads the scores instead of scoring again
    model = tiny_llama(layers=4)
    scores = block_drop_kl(model, batches)
    for n in (1, 2):
        fresh, fresh_info = prune_depth(model, batches, n, "kl")
        reused, reused_info = prune_depth(model, batches, n, "kl", kl_scores=scores)
        assert reused_info == fresh_info and len(reused_info["removed"]) == n
        ids = batches[0]
        assert torch.equal(logits(reused, ids), logits(fresh, ids))
    # the blocks dropped are the given scores' cheapest, not those of a fresh scoring
    made_up = [-s for s in scores]
    _, info = prune_depth(model, batches, 1, "kl", kl_scores=made_up)
    assert info["removed"] == [max(range(4), key=lambda i: scores[i])] != fresh_info["removed"][:1]
    with pytest.raises(ValueError, match="3 block KL scores for a model of 4 blocks"):
        prune_depth(model, batches, 1, "kl", kl_scores=scores[:3])
    with pytest.raises(ValueError, match="cannot remove 4 of 4 layers"):
        prune_depth(model, batches, 4, "kl", kl_scores=scores)


# --------------------------------------------------------------------------- width
def test_width_pruning_of_dead_channels_and_heads_changes_nothing(batches):
    model = tiny_llama(layers=2, hidden=64, inter=128, heads=4, kv=2)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.mlp.up_proj.weight[64:] = 0              # MLP channels 64.. never fire
            layer.self_attn.v_proj.weight[16:32] = 0       # KV head 1 (query heads 2, 3) outputs zero
        dead = torch.arange(48, 64)                        # residual channels nobody writes or reads
        model.model.embed_tokens.weight[:, dead] = 0
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight[dead] = 0
            layer.mlp.down_proj.weight[dead] = 0
    pruned, rec = prune_width(model, batches, hidden_size=48, intermediate_size=64, num_heads=2, num_kv_heads=1)
    c = pruned.config
    assert (c.hidden_size, c.intermediate_size, c.num_attention_heads, c.num_key_value_heads, c.head_dim) == (48, 64, 2, 1, 16)
    assert rec["kept_kv_heads"] == [[0], [0]] and rec["kept_heads"] == [[0, 1], [0, 1]]
    assert pruned.model.layers[0].mlp.gate_proj.weight.shape == (64, 48)
    for ids in batches:
        torch.testing.assert_close(logits(pruned, ids), logits(model, ids), rtol=1e-3, atol=1e-3)  # eps of RMSNorm


def test_width_pruning_respects_grouped_query_attention(batches):
    model = tiny_llama(layers=2, heads=4, kv=2)
    with pytest.raises(ValueError, match="cannot be split evenly"):
        prune_width(model, batches, num_heads=3)
    with pytest.raises(ValueError, match="multiple of the number of query heads"):
        prune_width(model, batches, hidden_size=50)
    pruned, rec = prune_width(model, batches, num_heads=2)  # one query head per KV group
    assert pruned.config.num_key_value_heads == 2
    assert all(len(h) == 2 and h[0] // 2 != h[1] // 2 for h in rec["kept_heads"])


def test_pruned_checkpoints_convert_and_agree_with_llama_cpp(tmp_path, tiny_hf, text_ids):
    """Depth- and width-pruned checkpoints are plain HF checkpoints llama.cpp converts and runs."""
    import shutil

    from transformers import AutoModelForCausalLM

    from edgellm.llamacpp.convert import convert_hf
    from edgellm.llamacpp.runtime import Batch, Model, log_softmax_rows
    from edgellm.paths import project_root

    base = AutoModelForCausalLM.from_pretrained(tiny_hf, dtype=torch.float32).eval()
    batches = token_batches(text_ids, SEQ, ROWS * SEQ, 4)
    ids = text_ids[:48]
    for name, (pruned, _) in {"depth": prune_depth(base, batches, 1),
                              "width": prune_width(base, batches, intermediate_size=256, num_heads=2)}.items():
        d = tmp_path / name
        pruned.save_pretrained(d, safe_serialization=True)
        for f in ("tokenizer.model", "tokenizer_config.json"):
            shutil.copy(tiny_hf / f, d / f)
        gguf = convert_hf(d, tmp_path / f"{name}.gguf", "f32", project_root())
        ref = torch.log_softmax(logits(pruned, ids[None])[0], -1).numpy()
        with Model(gguf, n_ctx=64, n_batch=64, n_threads=2) as m:
            batch = Batch(64, 1)
            batch.add(ids.tolist(), 0, [0], True)
            got = log_softmax_rows(m.decode(batch))
        # llama.cpp keeps the KV cache in F16: agreement within ~0.01 nats, same predictions
        np.testing.assert_allclose(got, ref, atol=2e-2)
        assert np.abs(got - ref).mean() < 3e-3
        assert np.array_equal(got.argmax(-1), ref.argmax(-1))
