"""Multiple-choice, loglikelihood and generative tasks scored as lm-evaluation-harness scores them.

A choice's log-likelihood is the sum over its tokens given the context
(:mod:`edgellm.eval.requests` builds the token pairs); ``acc`` is the argmax,
``acc_norm`` the argmax after dividing by the choice's length in characters,
TruthfulQA MC2 the normalized probability mass on the true answers, and a
loglikelihood task's ``acc`` whether the continuation is the greedy one (its
``perplexity`` is exp of minus the mean log-likelihood). The scores come from
:class:`~edgellm.eval.batched.BatchScorer`, many questions per decode.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from .batched import BatchScorer, Score
from .requests import build_request
from .tasks import TASKS, Task


@dataclass
class ItemResult:
    index: int
    lls: list[float]
    gold: int
    acc: float
    acc_norm: float | None
    chance: float  # the item's accuracy under uniform guessing (1/k; 0 for a loglikelihood task)


def item_metrics(task: Task, doc: dict, lls: Sequence[float], greedy: Sequence[bool] = ()) -> tuple[float, float | None]:
    """lm-eval's per-document metrics for one task (acc/acc_norm, TruthfulQA MC2, or a loglikelihood
    task's is-greedy ``acc``)."""
    if task.loglikelihood:
        return float(bool(greedy[0])), None
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


def gold_index(task: Task, doc: dict) -> int:
    """The gold choice (0 for a loglikelihood task's single continuation)."""
    return 0 if task.loglikelihood else task.doc_to_target(doc)


def evaluate_task(
    scorer: BatchScorer, task: Task, docs: Sequence[dict], indices: Sequence[int],
    shots: Sequence[Sequence[dict]] | None = None, progress: bool = True,
) -> tuple[dict, list[ItemResult]]:
    """Score a task's items in batched decodes; ``shots[i]`` are item i's few-shot documents."""
    shots = shots or [()] * len(docs)
    t0 = time.perf_counter()
    reqs = [build_request(scorer.model, task, doc, sh) for doc, sh in zip(docs, shots)]
    scores: list[list[Score]] = scorer.score(reqs, progress, task.name)
    items = []
    for idx, doc, sc in zip(indices, docs, scores):
        lls = [s.ll for s in sc]
        acc, acc_norm = item_metrics(task, doc, lls, [s.greedy for s in sc])
        items.append(ItemResult(int(idx), lls, gold_index(task, doc), acc, acc_norm, task.chance(doc)))
    return summarize_items(task, items, time.perf_counter() - t0), items


def summarize_items(task: Task, items: Sequence[ItemResult], seconds: float) -> dict:
    """A task's summary from its per-item results (also how shards scored apart are merged)."""
    accs = [it.acc for it in items]
    summary = {"n": len(items), "acc": float(np.mean(accs)), "acc_stderr": mean_stderr(accs),
               "chance": float(np.mean([it.chance for it in items])), "seconds": seconds}
    if task.loglikelihood:  # lm-eval's perplexity aggregation over the items' continuation log-likelihoods
        summary["perplexity"] = math.exp(-float(np.mean([it.lls[0] for it in items])))
    if task.acc_norm:
        norms = [it.acc_norm for it in items]
        summary |= {"acc_norm": float(np.mean(norms)), "acc_norm_stderr": mean_stderr(norms)}
    return summary


@dataclass
class GenerationResult:
    index: int
    prompt_tokens: int
    completion: str
    tokens: list[int]
    stop: str


def generate_task(
    scorer: BatchScorer, task: Task, docs: Sequence[dict], indices: Sequence[int], max_new_tokens: int,
    n_parallel: int = 16, progress: bool = True,
) -> tuple[dict, list[GenerationResult]]:
    """Greedy answers for a generative task, ``n_parallel`` at a time; judging them is
    ``edgellm.eval.judge``'s job."""
    t0 = time.perf_counter()
    contexts = [scorer.model.tokenize(task.context(doc)) for doc in docs]
    gens = scorer.generate(contexts, max_new_tokens, task.until, n_parallel, progress, task.name)
    out = [GenerationResult(int(idx), int(len(ctx)), g.text, g.tokens, g.stop)
           for idx, ctx, g in zip(indices, contexts, gens)]
    return summarize_generations(out, max_new_tokens, time.perf_counter() - t0), out


def summarize_generations(out: Sequence[GenerationResult], max_new_tokens: int, seconds: float) -> dict:
    """A generative task's summary from its answers."""
    return {"n": len(out), "max_new_tokens": max_new_tokens, "generated_tokens": sum(len(g.tokens) for g in out),
            "truncated": sum(g.stop == "length" for g in out), "seconds": seconds}


def run_tasks(scorer: BatchScorer, items: dict, max_new_tokens: int, n_parallel: int = 16,
              progress: bool = True) -> dict:
    """Every task's items with one scorer: task name -> (summary, per-item results).
    ``items``: task name -> ``TaskItems``."""
    out = {}
    for name, it in items.items():
        task = TASKS[name]
        if task.generative:
            out[name] = generate_task(scorer, task, it.docs, it.indices, max_new_tokens, n_parallel, progress)
        else:
            out[name] = evaluate_task(scorer, task, it.docs, it.indices, it.shots, progress)
    return out
