"""The one-question-per-decode scorer and the naive one: references for the batched scorer.

:class:`SequentialScorer` is the study's scorer before batching (one llama.cpp
decode per question, the previous question's prompt prefix reused from the KV
cache); ``benchmarks/bench_scorer.py`` measures the batched scorer's speed-up
over it. :func:`score_naive` decodes every continuation on its own from an
empty cache: the plain definition both scorers are tested against.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgellm.llamacpp.runtime import Batch, Model, log_softmax_rows
from edgellm.eval.requests import GeneratedText, Request


class _OneContext:
    """A request seen as one context and its continuations (what the sequential scorer handles)."""

    def __init__(self, req: Request):
        contexts = [c for c, _ in req.pairs]
        if any(not np.array_equal(c, contexts[0]) for c in contexts[1:]):
            raise ValueError("the sequential scorer needs one shared context (not a multiple-input task)")
        self.context = contexts[0]
        self.continuations = [c for _, c in req.pairs]


class SequentialScorer:
    """Log-likelihoods of continuations, one decode per question, prefixes reused (the scorer before
    :class:`~edgellm.eval.batched.BatchScorer`; kept as its baseline and reference).

    After a question, the KV cache keeps its context in sequence 0. The next
    question removes everything after the common prefix, copies sequence 0 into
    one sequence per choice, and decodes only the new context tokens (tagged
    with every choice's sequence) and the choices' own tokens.
    """

    def __init__(self, model: Model, share_prefix: bool = True):
        self.model = model
        self.share_prefix = share_prefix
        self.batch = Batch(model.n_batch, model.n_seq_max)
        self._cached: np.ndarray = np.empty(0, dtype=np.int32)
        model.clear()

    def _common_prefix(self, ctx: np.ndarray) -> int:
        if not self.share_prefix:
            return 0
        n = min(len(ctx) - 1, len(self._cached))  # always decode the last context token
        if n <= 0:
            return 0
        diff = np.nonzero(ctx[:n] != self._cached[:n])[0]
        return int(diff[0]) if len(diff) else n

    def score(self, req: Request) -> list[float]:
        """One question whose continuations share one context (not multiple-input tasks)."""
        m, b = self.model, self.batch
        req = _OneContext(req)
        k = len(req.continuations)
        if k > m.n_seq_max:
            raise ValueError(f"{k} choices > n_seq_max {m.n_seq_max}")
        n_ctx_tok = len(req.context)
        total = n_ctx_tok + sum(len(c) for c in req.continuations)
        if total > min(m.n_ctx, m.n_batch):
            raise ValueError(f"question needs {total} tokens; context/batch is {min(m.n_ctx, m.n_batch)}")
        keep = self._common_prefix(req.context)
        if keep == 0:
            m.clear()
        else:
            m.seq_keep(0)
            m.seq_rm(0, keep, -1)
            for s in range(1, k):
                m.seq_cp(0, s)
        b.clear()
        seqs = list(range(k))
        new_ctx = req.context[keep:]
        logits_mask = np.zeros(len(new_ctx), dtype=bool)
        logits_mask[-1] = True  # predicts the first token of every continuation
        b.add(new_ctx, keep, seqs, logits_mask)
        for s, cont in enumerate(req.continuations):
            mask = np.ones(len(cont), dtype=bool)
            mask[-1] = False
            b.add(cont, n_ctx_tok, [s], mask)
        logits = m.decode(b)
        lp_first = log_softmax_rows(logits[:1].copy())[0]
        out = []
        row = 1
        for cont in req.continuations:
            ll = float(lp_first[cont[0]])
            if len(cont) > 1:
                rows = log_softmax_rows(logits[row : row + len(cont) - 1].copy())
                ll += float(rows[np.arange(len(cont) - 1), cont[1:]].astype(np.float64).sum())
                row += len(cont) - 1
            out.append(ll)
        self._cached = req.context
        return out

    def generate(self, context: np.ndarray, max_new_tokens: int, until: Sequence[str] = ()) -> GeneratedText:
        """Greedy continuation of ``context``, stopped at end-of-generation, at the first of
        ``until`` in the text (which is cut there, as lm-eval cuts it) or after ``max_new_tokens``.

        The context reuses the cached prefix of the previous request (for TruthfulQA the
        six-shot preamble), so only the question and the answer are decoded.
        """
        m, b = self.model, self.batch
        if len(context) + max_new_tokens > m.n_ctx:
            raise ValueError(f"prompt of {len(context)} tokens + {max_new_tokens} new > n_ctx {m.n_ctx}")
        keep = self._common_prefix(context)
        if keep == 0:
            m.clear()
        else:
            m.seq_keep(0)
            m.seq_rm(0, keep, -1)
        pos = keep
        pending = context[keep:]
        out: list[int] = []
        stop = "length"
        text = ""
        while True:
            for start in range(0, len(pending), m.n_batch):  # long prompts in n_batch pieces
                piece = pending[start : start + m.n_batch]
                b.clear()
                mask = np.zeros(len(piece), dtype=bool)
                mask[-1] = True
                b.add(piece, pos, [0], mask)
                logits = m.decode(b)
                pos += len(piece)
            tok = int(np.argmax(logits[0]))
            if m.is_eog(tok):
                stop = "eog"
                break
            out.append(tok)
            text = m.detokenize(out)
            hit = [text.index(u) for u in until if u in text]
            if hit:
                text, stop = text[: min(hit)], "until"
                break
            if len(out) >= max_new_tokens:
                break
            pending = np.asarray([tok], dtype=np.int32)
        # the KV cache now holds the context and every generated token but the last
        self._cached = np.concatenate([context, np.asarray(out[:-1], dtype=np.int32)]) if out else context
        return GeneratedText(text, out, stop)


def score_naive(model: Model, req: Request) -> list[float]:
    """The plain way, one full decode per (context, continuation) pair from an empty cache."""
    b = Batch(model.n_batch, 1)
    out = []
    for ctx, cont in req.pairs:
        model.clear()
        b.clear()
        seq = np.concatenate([ctx, cont])[:-1]
        mask = np.zeros(len(seq), dtype=bool)
        mask[len(ctx) - 1 :] = True
        b.add(seq, 0, [0], mask)
        lp = log_softmax_rows(model.decode(b).copy())
        out.append(float(lp[np.arange(len(cont)), cont].astype(np.float64).sum()))
    return out


def greedy_plain(model: Model, prompt: np.ndarray, n: int) -> list[int]:
    """Greedy tokens with the whole sequence decoded again for every new token (no cache at all)."""
    out: list[int] = []
    b = Batch(model.n_batch, 1)
    for _ in range(n):
        model.clear()
        b.clear()
        seq = np.concatenate([prompt, np.asarray(out, dtype=np.int32)])
        mask = np.zeros(len(seq), dtype=bool)
        mask[-1] = True
        b.add(seq, 0, [0], mask)
        tok = int(np.argmax(model.decode(b)[0]))
        if model.is_eog(tok):
            break
        out.append(tok)
    return out
