"""The bounded KL reference (top-k plus tail mass) against the full computation over the whole vocabulary."""

from __future__ import annotations

import numpy as np

from edgellm.eval import klref


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=1, keepdims=True))


def _pair(rows: int = 64, vocab: int = 20_000, noise: float = 0.3, seed: int = 0):
    """A base's rows of log-probabilities with a language model's shape (a few likely tokens, a long Zipf-like
    tail) and a variant's: the base's logits plus noise, as quantization perturbs them."""
    rng = np.random.default_rng(seed)
    zipf = -1.1 * np.log(np.arange(1, vocab + 1))
    logits = np.stack([rng.permutation(zipf) for _ in range(rows)]) * 6 + rng.normal(0, 1, (rows, vocab))
    return _log_softmax(logits), _log_softmax(logits + rng.normal(0, noise, (rows, vocab)))


def test_bounded_kl_is_a_lower_bound_within_1e4_of_the_full_sum():
    base, var = _pair()
    ref = klref.top_k(base, 256)
    bounded, same = klref.kl_rows(ref, var)
    full = klref.kl_full(base, var)
    assert np.all(bounded <= full * (1 + 1e-9) + 1e-15)
    assert abs(full.mean() - bounded.mean()) / full.mean() < 1e-4
    assert np.array_equal(same, base.argmax(axis=1) == var.argmax(axis=1))
    assert ref.nbytes == 64 * 256 * (4 + 8) + 64 * 8


def test_a_variant_that_keeps_the_tail_proportions_gives_the_exact_kl():
    base = _log_softmax(np.random.default_rng(1).normal(0, 1, (8, 2_000)))  # a flat base: a heavy tail
    ref = klref.top_k(base, 16)
    # the variant moves mass between the head and the tail but keeps the tail's proportions
    var = base.copy()
    tail = np.ones_like(base, dtype=bool)
    np.put_along_axis(tail, ref.ids, False, axis=1)
    var[tail] += np.log(20.0)
    var = _log_softmax(var)
    bounded, _ = klref.kl_rows(ref, var)
    full = klref.kl_full(base, var)
    assert full.min() > 1e-3  # the variant differs from the base, and not only by rounding
    np.testing.assert_allclose(bounded, full, rtol=1e-9)


def test_the_gap_shrinks_as_k_grows_and_vanishes_at_the_whole_vocabulary():
    base, var = _pair(rows=16, vocab=3_000, noise=1.0)
    gaps = [klref.kl_gap(base, var, k)["rel_gap"] for k in (8, 64, 512, 3_000)]
    assert gaps[0] > gaps[1] > gaps[2] > 0 and abs(gaps[3]) < 1e-12


def test_the_reference_round_trips_through_its_file(tmp_path):
    base, var = _pair(rows=4, vocab=500)
    ref = klref.top_k(base, 32)
    back = klref.load(klref.save(ref, tmp_path / "ref.npz"))
    assert np.array_equal(back.ids, ref.ids) and np.array_equal(back.logp, ref.logp)
    assert np.array_equal(klref.kl_rows(back, var)[0], klref.kl_rows(ref, var)[0])
