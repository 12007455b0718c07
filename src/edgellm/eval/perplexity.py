"""Perplexity and KL divergence, computed as ``llama-perplexity`` computes them.

The text is tokenized once, cut into non-overlapping ``n_ctx`` windows whose
first token becomes BOS (when the model adds one), ``n_batch // n_ctx`` windows
are decoded together, and only the second half of each window is scored. KL
divergence to a base variant is taken over exactly those tokens, with the same
summary statistics as ``llama-perplexity --kl-divergence``; the base's
log-probabilities are written once per model (:func:`write_kl_reference`, in the form of :mod:`.klref`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm  # text bars: they render in executed notebooks (tqdm.auto needs ipywidgets)

from ..llamacpp.runtime import Batch, Model, log_softmax_rows
from . import klref


@dataclass
class PerplexityResult:
    ppl: float
    ppl_stderr: float
    nll: float
    n_tokens: int  # scored tokens
    n_chunks: int
    n_ctx: int
    seconds: float
    kl: dict | None = None


def _chunks(tokens: np.ndarray, n_ctx: int, max_chunks: int | None) -> int:
    if len(tokens) < 2 * n_ctx:
        raise ValueError(f"the text tokenizes to {len(tokens)} tokens; need at least {2 * n_ctx} for n_ctx={n_ctx}")
    n = len(tokens) // n_ctx
    return n if max_chunks is None else min(n, max_chunks)


def _window_logprobs(model: Model, batch: Batch, tokens: np.ndarray, first_chunk: int, n_seq: int, n_ctx: int):
    """Decode ``n_seq`` windows as separate sequences; yield (targets, log-probs) per window."""
    first = n_ctx // 2
    model.clear()
    batch.clear()
    mask = np.arange(n_ctx) >= first
    for s in range(n_seq):
        start = (first_chunk + s) * n_ctx
        window = tokens[start : start + n_ctx].copy()
        if model.add_bos:
            window[0] = model.bos
        batch.add(window, 0, [s], mask)
    logits = model.decode(batch)
    n_scored = n_ctx - first - 1
    for s in range(n_seq):
        start = (first_chunk + s) * n_ctx
        rows = logits[s * (n_ctx - first) : s * (n_ctx - first) + n_scored]
        targets = tokens[start + first + 1 : start + n_ctx]
        yield targets, log_softmax_rows(rows)


def _windows(model: Model, tokens: np.ndarray, n_ctx: int, n_batch: int, max_chunks: int | None,
             progress: bool, desc: str):
    """Yield (targets, log-probs) for every scored window, decoding n_batch // n_ctx at a time."""
    n_chunk = _chunks(tokens, n_ctx, max_chunks)
    n_seq = max(1, n_batch // n_ctx)
    if model.n_seq_max < n_seq or model.n_ctx < n_seq * n_ctx:
        raise ValueError(f"{model.path.name}: context too small for {n_seq} x {n_ctx} tokens")
    batch = Batch(n_seq * n_ctx, n_seq)
    for i in tqdm(range(0, n_chunk, n_seq), desc=desc, disable=not progress):
        yield from _window_logprobs(model, batch, tokens, i, min(n_seq, n_chunk - i), n_ctx)


def n_scored(n_tokens: int, n_ctx: int, max_chunks: int | None) -> int:
    n = n_tokens // n_ctx
    n = n if max_chunks is None else min(n, max_chunks)
    return n * (n_ctx - n_ctx // 2 - 1)


def write_kl_reference(model: Model, tokens: np.ndarray, n_ctx: int, n_batch: int, max_chunks: int | None,
                       out: Path, top_k: int, check_rows: int, progress: bool = True) -> klref.KlReference:
    """The base model's scored tokens as :mod:`.klref` keeps them (its k most probable tokens exactly, the rest
    in float16, and float32 rows of the first ``check_rows`` tokens), so every variant is compared with one
    decode of the base instead of one per variant."""
    _chunks(tokens, n_ctx, max_chunks)
    parts, sample = [], []
    for _, lp in _windows(model, tokens, n_ctx, n_batch, max_chunks, progress, f"KL reference {model.path.name}"):
        parts.append(klref.reference(lp, top_k))
        taken = sum(len(s) for s in sample)
        if taken < check_rows:
            sample.append(np.asarray(lp[: check_rows - taken], dtype=np.float32))
    ref = klref.concat(parts, np.concatenate(sample))
    klref.save(ref, out)
    return ref


def perplexity(
    model: Model,
    tokens: np.ndarray,
    n_ctx: int,
    n_batch: int = 2048,
    max_chunks: int | None = None,
    reference: klref.KlReference | None = None,
    progress: bool = True,
) -> PerplexityResult:
    """Perplexity by llama-perplexity's protocol; KL divergence when given the base's reference (and on its
    sample rows, the gap to the computation from float32 rows)."""
    n_chunk = _chunks(tokens, n_ctx, max_chunks)
    if reference is not None and len(reference) != n_scored(len(tokens), n_ctx, max_chunks):
        raise ValueError(f"KL reference has {len(reference)} rows; expected {n_scored(len(tokens), n_ctx, max_chunks)}"
                         " (made with other perplexity settings?)")
    nlls: list[np.ndarray] = []
    kls: list[np.ndarray] = []
    same_top: list[np.ndarray] = []
    check: dict = {}
    r = 0
    t0 = time.perf_counter()
    for targets, lp in _windows(model, tokens, n_ctx, n_batch, max_chunks, progress, f"perplexity {model.path.name}"):
        nlls.append(-lp[np.arange(len(targets)), targets].astype(np.float64))
        if reference is not None:
            kl, same = klref.kl_rows(reference.rows(r, r + len(lp)), lp)
            if r == 0 and reference.sample is not None:
                check = klref.sample_check(reference, lp)
            r += len(lp)
            kls.append(kl)
            same_top.append(same)
    seconds = time.perf_counter() - t0
    nll = np.concatenate(nlls)
    mean = float(nll.mean())
    # llama-perplexity's uncertainty: sqrt(var(nll) / (N - 1)) propagated to PPL
    var = float((nll**2).mean() - mean**2)
    stderr = math.sqrt(var / (len(nll) - 1)) * math.exp(mean) if var > 0 else float("nan")
    kl = kl_summary(np.concatenate(kls), np.concatenate(same_top)) | check if reference is not None else None
    return PerplexityResult(math.exp(mean), stderr, mean, len(nll), n_chunk, n_ctx, seconds, kl)


def kl_summary(kld: np.ndarray, same_top: np.ndarray) -> dict:
    """The statistics ``llama-perplexity --kl-divergence`` prints."""
    n = len(kld)
    p = float(same_top.mean())
    return {
        "kld_mean": float(kld.mean()),
        "kld_stderr": float(kld.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan"),
        "kld_median": float(np.median(kld)),
        "kld_p99": float(np.percentile(kld, 99)),
        "kld_max": float(kld.max()),
        "same_top_p": p,
        "same_top_p_stderr": math.sqrt(p * (1 - p) / (n - 1)) if n > 1 else float("nan"),
    }
