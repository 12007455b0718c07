"""What a scorer is asked: token pairs built from a task's documents as lm-evaluation-harness builds them.

A request is one document's (context, continuation) token pairs: one pair per
answer choice for multiple choice, one pair per choice-context for WinoGrande's
multiple input, a single pair for a loglikelihood task (LAMBADA). The context
is tokenized on its own and the continuation is the rest of
``tok(context + continuation)``, with the context's trailing spaces moved to
the continuation, exactly as lm-eval's ``_encode_pair`` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..llamacpp.runtime import Model
from .tasks import Task


@dataclass
class GeneratedText:
    text: str
    tokens: list[int]
    stop: str  # "until", "eog" or "length"


@dataclass
class Request:
    """One document: a (context tokens, continuation tokens) pair per scored continuation."""

    pairs: list[tuple[np.ndarray, np.ndarray]]

    @property
    def n_tokens(self) -> int:
        """Tokens of the pairs without any sharing (an upper bound of what a decode needs)."""
        return sum(len(c) + len(t) for c, t in self.pairs)


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
    pairs = []
    for context, continuation in task.pairs(doc, shots):
        ctx, cont = encode_pair(model, context, continuation)
        if len(cont) == 0:
            raise ValueError(f"{task.name}: empty continuation {continuation!r}")
        if len(ctx) == 0:
            raise ValueError(f"{task.name}: empty context before {continuation!r} (the model adds no BOS)")
        pairs.append((ctx, cont))
    return Request(pairs)
