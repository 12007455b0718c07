"""Multiple-choice log-likelihoods and greedy generation, as lm-evaluation-harness computes them.

A choice's log-likelihood is the sum over its tokens given the context; the
context is tokenized on its own and the continuation is the rest of
``context + " " + choice``. All choices of a question share one decode of the
prompt, and consecutive questions reuse their common prompt prefix from the KV
cache.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm  # text bars: they render in executed notebooks (tqdm.auto needs ipywidgets)

from ..llamacpp.runtime import Batch, Model, log_softmax_rows
from .tasks import TASKS, Task


# --------------------------------------------------------------------------- multiple choice
@dataclass
class Generation:
    text: str
    tokens: list[int]
    stop: str  # "until", "eog" or "length"


@dataclass
class Request:
    """One question: its context tokens and one continuation per choice."""

    context: np.ndarray
    continuations: list[np.ndarray]


def encode_pair(model: Model, context: str, continuation: str) -> tuple[np.ndarray, np.ndarray]:
    """lm-eval's ``_encode_pair`` for causal models.

    Trailing spaces of the context move to the continuation; the continuation's
    tokens are what follows the context's own tokens in ``tok(context + continuation)``.
    """
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    whole = model.tokenize(context + continuation)
    ctx = model.tokenize(context)
    return ctx, whole[len(ctx) :]


def build_request(model: Model, task: Task, doc: dict, shots: Sequence[dict] = ()) -> Request:
    context = task.context(doc, shots)
    conts = []
    ctx = None
    for choice in task.doc_to_choice(doc):
        c, cont = encode_pair(model, context, task.target_delimiter + choice)
        if ctx is not None and not np.array_equal(c, ctx):  # pragma: no cover - tokenizer invariant
            raise AssertionError("context tokenization differs between choices")
        ctx = c
        if len(cont) == 0:
            raise ValueError(f"{task.name}: empty continuation for choice {choice!r}")
        conts.append(cont)
    return Request(ctx, conts)


class ChoiceScorer:
    """Log-likelihoods of continuations, one decode per question, prefixes reused.

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
        m, b = self.model, self.batch
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

    def generate(self, context: np.ndarray, max_new_tokens: int, until: Sequence[str] = ()) -> Generation:
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
        return Generation(text, out, stop)


def score_naive(model: Model, req: Request) -> list[float]:
    """The plain way, one full decode per choice: the reference for the shared-prefix scorer."""
    b = Batch(model.n_batch, 1)
    out = []
    for cont in req.continuations:
        model.clear()
        b.clear()
        seq = np.concatenate([req.context, cont])[:-1]
        mask = np.zeros(len(seq), dtype=bool)
        mask[len(req.context) - 1 :] = True
        b.add(seq, 0, [0], mask)
        lp = log_softmax_rows(model.decode(b).copy())
        out.append(float(lp[np.arange(len(cont)), cont].astype(np.float64).sum()))
    return out


@dataclass
class ItemResult:
    index: int
    lls: list[float]
    gold: int
    acc: float
    acc_norm: float | None


def item_metrics(task: Task, doc: dict, lls: Sequence[float]) -> tuple[float, float | None]:
    """lm-eval's per-document metrics for one task (acc/acc_norm or TruthfulQA MC2)."""
    lls = np.asarray(lls, dtype=np.float64)
    if task.metric == "mc2":
        labels = np.asarray(task.doc_to_labels(doc))
        probs = np.exp(lls)
        probs = probs / probs.sum()
        return float(probs[labels == 1].sum()), None
    gold = task.doc_to_target(doc)
    choices = task.doc_to_choice(doc)
    lengths = np.array([float(len(c)) for c in choices])
    acc = 1.0 if int(np.argmax(lls)) == gold else 0.0
    if not task.acc_norm:
        return acc, None
    acc_norm = 1.0 if int(np.argmax(lls / lengths)) == gold else 0.0
    return acc, acc_norm


def mean_stderr(xs: Iterable[float]) -> float:
    """lm-eval's ``mean_stderr``: sample standard deviation over sqrt(n)."""
    xs = np.asarray(list(xs), dtype=np.float64)
    return float(xs.std(ddof=1) / math.sqrt(len(xs))) if len(xs) > 1 else float("nan")


def evaluate_task(
    scorer: ChoiceScorer, task: Task, docs: Sequence[dict], indices: Sequence[int],
    shots: Sequence[Sequence[dict]] | None = None, progress: bool = True,
) -> tuple[dict, list[ItemResult]]:
    """Score a multiple-choice task's items; ``shots[i]`` are item i's few-shot documents."""
    items = []
    shots = shots or [()] * len(docs)
    for idx, doc, sh in tqdm(list(zip(indices, docs, shots)), desc=task.name, disable=not progress, mininterval=5):
        req = build_request(scorer.model, task, doc, sh)
        lls = scorer.score(req)
        acc, acc_norm = item_metrics(task, doc, lls)
        items.append(ItemResult(int(idx), lls, task.doc_to_target(doc), acc, acc_norm))
    accs = [it.acc for it in items]
    summary = {"n": len(items), "acc": float(np.mean(accs)), "acc_stderr": mean_stderr(accs)}
    if task.acc_norm:
        norms = [it.acc_norm for it in items]
        summary |= {"acc_norm": float(np.mean(norms)), "acc_norm_stderr": mean_stderr(norms)}
    return summary, items


@dataclass
class GenerationResult:
    index: int
    prompt_tokens: int
    completion: str
    tokens: list[int]
    stop: str


def generate_task(
    scorer: ChoiceScorer, task: Task, docs: Sequence[dict], indices: Sequence[int], max_new_tokens: int,
    progress: bool = True,
) -> tuple[dict, list[GenerationResult]]:
    """Greedy answers for a generative task; judging them is ``edgellm.eval.judge``'s job."""
    out = []
    t0 = time.perf_counter()
    for idx, doc in tqdm(list(zip(indices, docs)), desc=task.name, disable=not progress, mininterval=5):
        ctx = scorer.model.tokenize(task.context(doc))
        g = scorer.generate(ctx, max_new_tokens, task.until)
        out.append(GenerationResult(int(idx), int(len(ctx)), g.text, g.tokens, g.stop))
    seconds = time.perf_counter() - t0
    n_tok = sum(len(g.tokens) for g in out)
    summary = {"n": len(out), "max_new_tokens": max_new_tokens, "generated_tokens": n_tok,
               "truncated": sum(g.stop == "length" for g in out), "seconds": seconds}
    return summary, out


def run_tasks(scorer: ChoiceScorer, items: dict, max_new_tokens: int, progress: bool = True) -> dict:
    """Every task's items with one scorer (its KV cache carries prefixes from task to task):
    task name -> (summary, per-item results). ``items``: task name -> ``TaskItems``."""
    out = {}
    for name, it in items.items():
        task = TASKS[name]
        if task.generative:
            out[name] = generate_task(scorer, task, it.docs, it.indices, max_new_tokens, progress)
        else:
            out[name] = evaluate_task(scorer, task, it.docs, it.indices, it.shots, progress)
    return out
