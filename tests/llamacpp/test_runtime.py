"""The llama.cpp runtime (``edgellm.llamacpp.runtime``): loading, decoding, log-probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from edgellm.llamacpp.gguf import ModelFileError
from edgellm.llamacpp.runtime import Batch, Model, log_softmax_rows


def test_truncated_file_is_named(tiny_gguf, tmp_path):
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(tiny_gguf["Q8_0"].read_bytes()[: 200_000])
    with pytest.raises(ModelFileError, match="cut.gguf"):
        Model(cut, n_ctx=64)


def test_batched_sequences_decode_like_single_ones(tiny_gguf):
    """Two sequences in one batch give each the logits it gets alone (F32 KV cache, no flash attention)."""
    with Model(tiny_gguf["F32"], n_ctx=256, n_batch=256, n_seq_max=2, n_threads=2, kv_f32=True, flash_attn=0) as m:
        a, b = m.tokenize("The tower is tall."), m.tokenize("A river runs through")
        alone = []
        for toks in (a, b):
            m.clear()
            batch = Batch(256, 1)
            batch.add(toks, 0, [0], True)
            alone.append(log_softmax_rows(m.decode(batch)))
        m.clear()
        batch = Batch(256, 2)
        batch.add(a, 0, [0], True)
        batch.add(b, 0, [1], True)
        both = log_softmax_rows(m.decode(batch))
        n_vocab = m.n_vocab
    assert both.shape == (len(a) + len(b), n_vocab)
    np.testing.assert_allclose(both[: len(a)], alone[0], atol=1e-3, rtol=1e-5)
    np.testing.assert_allclose(both[len(a):], alone[1], atol=1e-3, rtol=1e-5)
    # log-probabilities: every row sums to one
    np.testing.assert_allclose(np.exp(both.astype(np.float64)).sum(-1), 1.0, rtol=1e-4)
