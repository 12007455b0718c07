"""``edgellm eval --log-samples``: one JSON line per scored item, as lm-eval's ``--log_samples`` writes
``samples_<task>.jsonl``, so that any item can be held against another scorer's.

Prompts and choices come from the task definitions (:meth:`~edgellm.eval.tasks.Task.pairs`, ``context``,
``doc_to_choice``): the strings the scorer tokenized, not a re-rendering of lm-eval's templates.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..eval.tasks import TASKS, Task, TaskItems
from ..io import atomic_path


def samples_path(output: Path) -> Path:
    """Beside the JSON file: ``eval.json`` -> ``eval.samples.jsonl``."""
    return output.with_name(output.stem + ".samples.jsonl")


def doc_hash(doc: dict) -> str:
    """The document's identity across runs and tools: sha256 of its JSON with sorted keys."""
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def choices(task: Task, doc: dict) -> list[str]:
    """The answer options as the task defines them (a loglikelihood task: its one continuation)."""
    return [task.doc_to_continuation(doc)] if task.loglikelihood else task.doc_to_choice(doc)


def scored_row(task: Task, doc: dict, shots: list[dict], r) -> dict:
    """A multiple-choice or loglikelihood item: prompt, options, the (context, continuation) pairs scored
    (WinoGrande's multiple input: the options are the contexts, the prompt what precedes them), each pair's
    log-likelihood, the prediction (argmax; none for a loglikelihood task, whose ``acc`` says
    whether the continuation is the greedy one), the gold answer, acc and acc_norm."""
    return {"prompt": task.context(doc, shots), "choices": choices(task, doc),
            "arguments": [list(p) for p in task.pairs(doc, shots)], "lls": r.lls,
            "pred": None if task.loglikelihood else int(np.argmax(r.lls)), "gold": r.gold, "acc": r.acc,
            "acc_norm": r.acc_norm}


def generated_row(task: Task, doc: dict, r) -> dict:
    """A generative item: its prompt (the scorer's, without few-shot documents) and the greedy completion."""
    return {"prompt": task.context(doc), "until": list(task.until), "completion": r.completion, "stop": r.stop,
            "completion_tokens": len(r.tokens)}


def rows(name: str, items: TaskItems, results: list) -> Iterator[dict]:
    """One task's sample rows, in item order (the results must be the items', in order)."""
    task = TASKS[name]
    for idx, doc, shots, r in zip(items.indices, items.docs, items.shots, results, strict=True):
        if r.index != int(idx):
            raise RuntimeError(f"{name}: result for item {r.index} where item {idx} was expected")
        body = generated_row(task, doc, r) if task.generative else scored_row(task, doc, shots, r)
        yield {"task": name, "index": int(idx), "doc_hash": doc_hash(doc), **body}


def write_samples(path: Path, items: dict[str, TaskItems], results: dict[str, tuple[dict, list]]) -> int:
    """Every task's rows as JSON lines (written atomically); the number of lines."""
    n = 0
    with atomic_path(path) as tmp, tmp.open("w") as f:
        for name, (_, res) in results.items():
            for row in rows(name, items[name], res):
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
                n += 1
    return n
