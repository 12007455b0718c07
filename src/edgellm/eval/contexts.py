"""The llama.cpp contexts the study scores in, one definition each for the stages, the CLI and the benchmarks."""

from __future__ import annotations

from ..config import Params

#: llama.cpp's most sequences in one context (LLAMA_MAX_SEQ)
MAX_SEQ = 256


def scoring_context(params: Params) -> dict:
    """The scoring context: ``evaluate.n_ctx`` cells, decodes of ``evaluate.n_batch`` tokens (in ubatches of
    at most 512, llama.cpp's default), and as many sequences as llama.cpp allows (at most 256, and no more
    than n_batch, its output buffer's rows); the scorer closes a pack when it would need more (one-token
    continuations add sequences but no tokens)."""
    ev = params.evaluate
    return dict(n_ctx=ev.n_ctx, n_batch=ev.n_batch, n_ubatch=min(512, ev.n_batch), n_seq_max=min(MAX_SEQ, ev.n_batch))


def perplexity_context(params: Params) -> dict:
    """The context llama-perplexity would use: ``n_batch // n_ctx`` windows decoded together."""
    pp = params.evaluate.perplexity
    n_seq = max(1, pp.n_batch // pp.n_ctx)
    return dict(n_ctx=n_seq * pp.n_ctx, n_batch=n_seq * pp.n_ctx, n_seq_max=n_seq, n_threads=params.threads)
