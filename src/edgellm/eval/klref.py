"""The KL reference: what KL divergence and top-1 agreement need of the base, exact where it matters.

``llama-perplexity --kl-divergence-base`` keeps the base's full rows of log-probabilities at 2 bytes an
entry (0.4 GB for 4,080 tokens of SmolLM2's 49,152-token vocabulary, 2.1 GB at Gemma 3's 262,144). At that
precision the KL of a good quantization (0.003) is off by up to 2e-3 relative, and ties of the top token flip
(measured on SmolLM2's Q8_0 and Q4_1 against float32 rows). Here the split is

    KL(P || Q) = sum_{i in K} p_i (log p_i - log q_i)  +  sum_{i not in K} p_i (log p_i - log q_i)

with K the base's k most probable tokens. Stored per scored token:

* the ids of K and their log-probabilities in float64 (the head, where nearly all the KL is; exact);
* the log of the probability outside K, computed from the full row (not as 1 - sum, which cancels);
* the full row in float16 (2 bytes an entry, as llama-perplexity), used only outside K, renormalised there to
  the exact tail mass, so float16's rounding cannot move probability between head and tail.

Top-1 agreement is exact (the base's top token is the first of K). The KL agrees with float32 rows within
1e-4 relative on SmolLM2's Q8_0, Q4_1 and Q2_K at k = 256 (the head alone, a lower bound, is 6-9 % low there).
The file also keeps float32 full rows of the first few scored tokens: every evaluation computes its KL there
both ways and records the gap (:func:`sample_check`), so the agreement is measured on each variant.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..io import atomic_path


@dataclass(frozen=True)
class KlReference:
    """Per scored token of the base: its k most probable tokens (most probable first) with their
    log-probabilities (float64), the log of the probability of every other token, and the whole row in float16;
    ``sample``: float32 full rows of the first scored tokens, to check the rest against."""

    ids: np.ndarray  # (rows, k) int32
    logp: np.ndarray  # (rows, k) float64
    log_tail: np.ndarray  # (rows,) float64
    row16: np.ndarray  # (rows, vocab) float16
    sample: np.ndarray | None = None  # (n, vocab) float32

    def __len__(self) -> int:
        return len(self.ids)

    def rows(self, start: int, stop: int) -> KlReference:
        return KlReference(self.ids[start:stop], self.logp[start:stop], self.log_tail[start:stop],
                           self.row16[start:stop])

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.ids, self.logp, self.log_tail, self.row16, self.sample) if a is not None)


def _logsumexp(x: np.ndarray) -> np.ndarray:
    """Row-wise log(sum(exp(x))) in float64; -inf for a row of -inf."""
    x = np.asarray(x, dtype=np.float64)
    m = x.max(axis=1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return (m + np.log(np.exp(x - m).sum(axis=1, keepdims=True)))[:, 0]


def _without(lp: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """``lp`` in float64 with the entries ``ids`` of each row set to -inf."""
    rest = np.array(lp, dtype=np.float64)
    np.put_along_axis(rest, ids, -np.inf, axis=1)
    return rest


def reference(lp: np.ndarray, k: int) -> KlReference:
    """The reference of full rows of log-probabilities ``lp`` (rows, vocab)."""
    k = min(k, lp.shape[1])
    part = np.argpartition(-lp, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(lp, part, axis=1), axis=1, kind="stable")
    ids = np.take_along_axis(part, order, axis=1).astype(np.int32)
    logp = np.take_along_axis(lp, ids, axis=1).astype(np.float64)
    return KlReference(ids, logp, _logsumexp(_without(lp, ids)), np.asarray(lp, dtype=np.float16))


def kl_rows(ref: KlReference, lp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: KL(base || variant), and whether the variant's most probable token is the base's.
    ``lp``: the variant's full rows of log-probabilities.

    The head is summed in float64. The tail, a small share of the KL spread over the whole vocabulary, is
    computed in float32 (one pass per operation over 262,144 entries a row) and summed in float64; the test
    holds it to 1e-4 of the float64 computation from float32 rows."""
    lq = np.take_along_axis(lp, ref.ids, axis=1).astype(np.float64)
    head = (np.exp(ref.logp) * (ref.logp - lq)).sum(axis=1)
    has_tail = np.isfinite(ref.log_tail)
    tail = np.zeros(len(lp))
    if has_tail.any():
        rows = np.flatnonzero(has_tail)
        t = ref.row16[rows].astype(np.float32)
        np.put_along_axis(t, ref.ids[rows], -np.inf, axis=1)
        top = t.max(axis=1, keepdims=True)
        e = np.exp(t - top)  # 0 at the head's entries
        # renormalise the float16 tail to its exact mass: p_i = e_i * exp(top + shift), shift = log_tail - lse
        shift = ref.log_tail[rows] - (top[:, 0] + np.log(e.sum(axis=1, dtype=np.float64)))
        t += shift.astype(np.float32)[:, None]
        t -= lp[rows]
        np.put_along_axis(t, ref.ids[rows], 0.0, axis=1)  # -inf - x at the head's entries, where e is 0
        tail[rows] = (e * t).sum(axis=1, dtype=np.float64) * np.exp(top[:, 0] + shift)
    return head + tail, ref.ids[:, 0] == lp.argmax(axis=1)


def kl_full(base_lp: np.ndarray, lp: np.ndarray) -> np.ndarray:
    """Per row, KL(base || variant) over the whole vocabulary from full rows (what the reference is checked
    against)."""
    b = np.asarray(base_lp, dtype=np.float64)
    return (np.exp(b) * (b - np.asarray(lp, dtype=np.float64))).sum(axis=1)


def sample_check(ref: KlReference, lp: np.ndarray) -> dict:
    """The KL and top-1 agreement of a variant's first rows ``lp`` from the stored float32 rows and from the
    reference, and their relative gap."""
    n = min(len(ref.sample), len(lp))
    stored, same = kl_rows(ref.rows(0, n), lp[:n])
    full = kl_full(ref.sample[:n], lp[:n])
    same_full = ref.sample[:n].argmax(axis=1) == lp[:n].argmax(axis=1)
    gap = float((stored.mean() - full.mean()) / full.mean()) if full.mean() > 0 else 0.0
    return {"kld_check_rows": n, "kld_check_full": float(full.mean()), "kld_check_stored": float(stored.mean()),
            "kld_check_rel_gap": gap, "same_top_check_equal": bool(np.array_equal(same, same_full))}


def concat(parts: list[KlReference], sample: np.ndarray | None = None) -> KlReference:
    """One reference from consecutive pieces (one per decoded window)."""
    return KlReference(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("ids", "logp", "log_tail", "row16")),
                       sample)


_FIELDS = ("ids", "logp", "log_tail", "row16", "sample")


def save(ref: KlReference, path: Path) -> Path:
    arrays = {f: getattr(ref, f) for f in _FIELDS if getattr(ref, f) is not None}
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
    return path


def load(path: Path) -> KlReference:
    with np.load(path) as z:
        return KlReference(*(z[f] if f in z.files else None for f in _FIELDS))
