"""The KL reference (exact head, float16 tail renormalised to its exact mass) against the computation from
float32 rows over the whole vocabulary."""

from __future__ import annotations

import numpy as np
import pytest

from edgellm.eval import klref


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=1, keepdims=True))


def _pair(rows: int = 64, vocab: int = 20_000, noise: float = 0.05, seed: int = 0):
    """A base's rows of log-probabilities with a language model's shape (a few likely tokens, a long Zipf-like
    tail) and a variant's: the base's logits plus noise, as quantization perturbs them (small noise: a KL of a
    good quantization, where float16 rows are the least accurate)."""
    rng = np.random.default_rng(seed)
    zipf = -1.1 * np.log(np.arange(1, vocab + 1))
    logits = np.stack([rng.permutation(zipf) for _ in range(rows)]) * 6 + rng.normal(0, 1, (rows, vocab))
    base = _log_softmax(logits).astype(np.float32)
    return base, _log_softmax(logits + rng.normal(0, noise, (rows, vocab))).astype(np.float32)


@pytest.mark.parametrize("k", [16, 256])
def test_the_stored_kl_is_within_1e4_of_float32_rows_where_float16_rows_are_not(k):
    base, var = _pair()
    full = klref.kl_full(base, var)
    stored, same = klref.kl_rows(klref.reference(base, k), var)
    assert abs(stored.mean() - full.mean()) / full.mean() < 1e-4
    assert np.array_equal(same, base.argmax(axis=1) == var.argmax(axis=1))
    # what llama-perplexity's 2-byte rows give on the same pair: the error the exact head removes
    half = klref.kl_full(base.astype(np.float16), var)
    assert abs(half.mean() - full.mean()) / full.mean() > 1e-4


def test_the_whole_vocabulary_as_head_is_exact_and_a_lone_head_is_a_lower_bound():
    base, var = _pair(rows=8, vocab=3_000, noise=0.3)
    full = klref.kl_full(base, var)
    exact, _ = klref.kl_rows(klref.reference(base, 3_000), var)
    np.testing.assert_allclose(exact, full, rtol=1e-9, atol=1e-12)
    ref = klref.reference(base, 16)
    head_only = (np.exp(ref.logp) * (ref.logp - np.take_along_axis(var, ref.ids, axis=1))).sum(axis=1)
    assert head_only.mean() < klref.kl_rows(ref, var)[0].mean()


def test_the_sample_check_and_the_file_round_trip(tmp_path):
    base, var = _pair(rows=32, vocab=5_000)
    ref = klref.reference(base, 64)
    ref = klref.KlReference(ref.ids, ref.logp, ref.log_tail, ref.row16, base[:10])
    path = klref.save(ref, tmp_path / "ref.npz")
    back = klref.load(path)
    for f in ("ids", "logp", "log_tail", "row16", "sample"):
        np.testing.assert_array_equal(getattr(back, f), getattr(ref, f))
    assert back.nbytes == 32 * 64 * 12 + 32 * 8 + 32 * 5_000 * 2 + 10 * 5_000 * 4
    check = klref.sample_check(back, var)
    assert check["kld_check_rows"] == 10 and check["same_top_check_equal"]
    assert abs(check["kld_check_rel_gap"]) < 1e-4
    assert check["kld_check_full"] == pytest.approx(klref.kl_full(base[:10], var[:10]).mean(), rel=1e-12)
