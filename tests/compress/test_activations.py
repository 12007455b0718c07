"""Layer-by-layer activations (``edgellm.compress.activations``), the pruning methods' calibration pass."""

from __future__ import annotations

import torch

from edgellm.compress.activations import LayerRunner, token_batches

from .tiny import ROWS, SEQ, logits, tiny_llama


def test_layer_runner_reproduces_the_model(batches):
    model = tiny_llama()
    runner = LayerRunner(model, batches)
    for i in range(len(model.model.layers)):
        runner.advance(runner.run(i))
    final = [model.lm_head(model.model.norm(h)) for h in runner.hidden]
    for got, ids in zip(final, batches):
        torch.testing.assert_close(got, logits(model, ids), rtol=1e-4, atol=1e-4)


def test_token_batches_cut_the_text_into_rows(text_ids):
    batches = token_batches(text_ids, SEQ, ROWS * SEQ, batch_size=4)
    assert [tuple(b.shape) for b in batches] == [(4, SEQ)] * (ROWS // 4)
    assert torch.equal(torch.cat(batches).flatten(), text_ids[: ROWS * SEQ])
