"""Evaluation tasks as data: ``tasks.yaml`` read into :class:`Task` objects.

The definitions are lm-evaluation-harness 0.4.13's (same Jinja templates, same
rules for turning a column name, a template or a literal into a prompt, a
choice list or a gold index), so they can be diffed against lm-eval's YAMLs
and lm-eval itself can be run on them (``tests/eval/test_lm_eval_equivalence.py``).
The scorer (``edgellm.eval.scoring``) knows nothing task-specific.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml
from jinja2 import BaseLoader, Environment, StrictUndefined

from ..paths import TASKS_FILE
from . import data
from .data import DatasetRef

Doc = dict
Metric = Literal["acc", "acc_only", "mc2", "loglikelihood", "truthfulqa_gen"]

# lm_eval/utils.py: the environment every template is rendered in
_ENV = Environment(loader=BaseLoader, undefined=StrictUndefined, keep_trailing_newline=True)
_ENV.filters["regex_replace"] = lambda s, pattern, repl, count=0: re.sub(pattern, repl, s, count=count)


def _render(template: str, doc: Doc) -> str:
    return _ENV.from_string(template).render(**doc)


# --------------------------------------------------------------------------- document preprocessors
def _hellaswag_preprocess(text: str) -> str:
    # lm_eval/tasks/hellaswag/utils.py::preprocess
    text = text.strip()
    text = text.replace(" [title]", ". ")
    text = re.sub("\\[.*?\\]", "", text)
    return text.replace("  ", " ")


def _hellaswag(doc: Doc) -> Doc:
    """lm-eval's process_docs for the raw hub split; the local mirror is already processed."""
    if "query" in doc:
        return doc
    ctx = doc["ctx_a"] + " " + doc["ctx_b"].capitalize()
    return {
        "query": _hellaswag_preprocess(doc["activity_label"] + ": " + ctx),
        "endings": [_hellaswag_preprocess(e) for e in doc["endings"]],
        "label": int(doc["label"]),
    }


def _format_answers(answers: Sequence[str]) -> list[str]:
    out = []
    for a in answers:
        a = a.strip()
        if a:
            out.append(a if a[-1] == "." else a + ".")
    return out


def _truthfulqa_gen(doc: Doc) -> Doc:
    """lm_eval/tasks/truthfulqa/utils.py::preprocess_function."""
    correct = _format_answers(doc["correct_answers"])
    if "I have no comment." not in correct:
        correct.append("I have no comment.")
    return {**doc, "question": doc["question"].strip(), "correct_answers": correct,
            "incorrect_answers": _format_answers(doc["incorrect_answers"])}


PROCESSORS: dict[str, Callable[[Doc], Doc]] = {"hellaswag": _hellaswag, "truthfulqa_gen": _truthfulqa_gen}


# --------------------------------------------------------------------------- tasks
@dataclass(frozen=True)
class FewShot:
    n: int
    data: DatasetRef
    #: Column whose value a few-shot document must share with the evaluated one (MMLU: subject).
    match: str | None = None


@dataclass(frozen=True)
class Task:
    name: str
    data: DatasetRef
    text: str
    metric: Metric
    choices: str | list[str] | None = None
    target: str | int | None = None
    labels: str | None = None
    description: str | None = None
    fewshot: FewShot | None = None
    process: str | None = None
    until: tuple[str, ...] = ()
    #: lm-eval's multiple input (WinoGrande): the choices are contexts, ``continuation`` is shared
    multiple_input: bool = False
    continuation: str | None = None
    target_delimiter: str = " "
    fewshot_delimiter: str = "\n\n"
    source: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def generative(self) -> bool:
        return self.metric == "truthfulqa_gen"

    @property
    def loglikelihood(self) -> bool:
        """lm-eval's output_type loglikelihood: one continuation, acc = it is the greedy one."""
        return self.metric == "loglikelihood"

    @property
    def acc_norm(self) -> bool:
        """Whether lm-eval reports acc_norm for this task."""
        return self.metric == "acc"

    @property
    def process_docs(self) -> Callable[[Doc], Doc] | None:
        return PROCESSORS[self.process] if self.process else None

    # lm-eval's ConfigurableTask.doc_to_text / doc_to_choice / doc_to_target
    def doc_to_text(self, doc: Doc) -> str:
        return doc[self.text] if self.text in doc else _render(self.text, doc)

    def doc_to_choice(self, doc: Doc) -> list[str]:
        c = self.choices
        if isinstance(c, list):
            return list(c)
        if c is None:
            raise ValueError(f"task {self.name} has no choices")
        return list(doc[c]) if c in doc else list(ast.literal_eval(_render(c, doc)))

    def doc_to_target(self, doc: Doc) -> int:
        t = self.target
        if isinstance(t, int):
            return t
        if t is None:
            raise ValueError(f"task {self.name} has no target")
        if t in doc:
            return int(doc[t])
        s = _render(t, doc)
        if not s.isdigit():
            raise ValueError(f"task {self.name}: target template gave {s!r}, not an index")
        return int(s)

    def doc_to_continuation(self, doc: Doc) -> str:
        """The continuation of a loglikelihood or multiple-input task (lm-eval's doc_to_target there)."""
        c = self.continuation
        if c is None:
            raise ValueError(f"task {self.name} has no continuation")
        return doc[c] if c in doc else _render(c, doc)

    def pairs(self, doc: Doc, shots: Sequence[Doc] = ()) -> list[tuple[str, str]]:
        """The (context, continuation) strings lm-eval's ``construct_requests`` scores for one document:
        one per choice, the context once per choice (multiple input: one context per choice and the
        same continuation), or the single pair of a loglikelihood task."""
        if self.loglikelihood:
            return [(self.context(doc, shots), self.doc_to_continuation(doc))]
        if self.multiple_input:
            prefix = self.context(doc, shots)
            cont = self.target_delimiter + self.doc_to_continuation(doc)
            return [(prefix + ctx, cont) for ctx in self.doc_to_choice(doc)]
        ctx = self.context(doc, shots)
        return [(ctx, self.target_delimiter + c) for c in self.doc_to_choice(doc)]

    def chance(self, doc: Doc) -> float:
        """The accuracy of guessing uniformly: 1/k for k choices (MC2: the true answers' share), 0 for
        a loglikelihood task (the greedy continuation is one of the whole vocabulary's)."""
        if self.generative or self.loglikelihood:
            return 0.0
        if self.metric == "mc2":
            labels = self.doc_to_labels(doc)
            return sum(labels) / len(labels)
        return 1.0 / len(self.doc_to_choice(doc))

    def doc_to_labels(self, doc: Doc) -> list[int]:
        if self.labels is None:
            raise ValueError(f"task {self.name} has no labels")
        return list(doc[self.labels]) if self.labels in doc else list(ast.literal_eval(_render(self.labels, doc)))

    def select_fewshot(self, doc: Doc, pool: Sequence[Doc]) -> list[Doc]:
        """lm-eval's ``first_n`` sampler over the documents that share ``fewshot.match`` with ``doc``."""
        if self.fewshot is None:
            return []
        m = self.fewshot.match
        shots = [d for d in pool if (m is None or d[m] == doc[m]) and d != doc][: self.fewshot.n]
        if len(shots) < self.fewshot.n:
            raise ValueError(f"task {self.name}: only {len(shots)} few-shot documents for "
                             f"{m}={doc.get(m)!r} in {self.fewshot.data.describe()}; need {self.fewshot.n}")
        return shots

    def context(self, doc: Doc, shots: Sequence[Doc] = ()) -> str:
        """lm-eval's ``fewshot_context`` without a chat template: description, labelled shots, prompt."""
        out = _render(self.description, doc) if self.description else ""
        if shots and (self.multiple_input or self.loglikelihood):
            raise ValueError(f"task {self.name}: few-shot examples are not supported for this output type")
        for s in shots:
            answer = self.doc_to_choice(s)[self.doc_to_target(s)]
            out += self.doc_to_text(s) + self.target_delimiter + answer + self.fewshot_delimiter
        return out + self.doc_to_text(doc)


class TaskFileError(ValueError):
    """A bad task definition; the message names the file, the task and the key."""


_KEYS = {"include", "dataset", "text", "choices", "target", "labels", "description", "fewshot", "process",
         "until", "metric", "target_delimiter", "fewshot_delimiter", "multiple_input", "continuation"}


def _ref(d: dict, where: str) -> DatasetRef:
    try:
        return DatasetRef(d["hub"], d.get("config"), d["split"], d["local"])
    except (KeyError, TypeError) as e:
        raise TaskFileError(f"{where}: dataset needs hub, split and local ({e})") from None


def _resolve(name: str, raw: dict, path: Path, seen: tuple[str, ...] = ()) -> dict:
    if name not in raw:
        raise TaskFileError(f"{path}: task {seen[-1] if seen else name!r} includes unknown task {name!r}")
    if name in seen:
        raise TaskFileError(f"{path}: include cycle {' -> '.join((*seen, name))}")
    spec = dict(raw[name])
    unknown = sorted(set(spec) - _KEYS)
    if unknown:
        raise TaskFileError(f"{path}: task {name!r} has unknown key(s) {unknown}; known: {sorted(_KEYS)}")
    base = _resolve(spec.pop("include"), raw, path, (*seen, name)) if "include" in spec else {}
    return base | spec


def load_tasks(path: str | Path = TASKS_FILE) -> dict[str, Task]:
    path = Path(path)
    raw = yaml.safe_load(path.read_text())
    if not isinstance(raw, dict):
        raise TaskFileError(f"{path}: expected a mapping of task name -> definition")
    tasks = {}
    for name in raw:
        spec = _resolve(name, raw, path)
        where = f"{path}: task {name!r}"
        for key in ("dataset", "text", "metric"):
            if key not in spec:
                raise TaskFileError(f"{where}: missing {key!r}")
        if spec["metric"] not in Metric.__args__:
            raise TaskFileError(f"{where}: metric {spec['metric']!r} is not one of {list(Metric.__args__)}")
        if spec.get("process") and spec["process"] not in PROCESSORS:
            raise TaskFileError(f"{where}: process {spec['process']!r} is not one of {sorted(PROCESSORS)}")
        if spec["metric"] == "loglikelihood":
            if "continuation" not in spec:
                raise TaskFileError(f"{where}: a loglikelihood task needs a continuation")
        elif spec["metric"] != "truthfulqa_gen" and ("choices" not in spec or "target" not in spec):
            raise TaskFileError(f"{where}: a multiple-choice task needs choices and target")
        if spec.get("multiple_input") and "continuation" not in spec:
            raise TaskFileError(f"{where}: a multiple-input task needs a continuation")
        fs = spec.get("fewshot")
        tasks[name] = Task(
            name=name, data=_ref(spec["dataset"], where), text=spec["text"], metric=spec["metric"],
            choices=spec.get("choices"), target=spec.get("target"), labels=spec.get("labels"),
            description=spec.get("description"),
            fewshot=FewShot(int(fs["n"]), _ref(fs["dataset"], where + " fewshot"), fs.get("match")) if fs else None,
            process=spec.get("process"), until=tuple(spec.get("until", ())),
            multiple_input=bool(spec.get("multiple_input", False)), continuation=spec.get("continuation"),
            target_delimiter=spec.get("target_delimiter", " "), fewshot_delimiter=spec.get("fewshot_delimiter", "\n\n"),
            source=spec,
        )
    return tasks


TASKS: dict[str, Task] = load_tasks()


@dataclass
class TaskItems:
    """A task's selected items: dataset indices, processed documents, each one's few-shot documents."""

    indices: list[int]
    docs: list[Doc]
    shots: list[list[Doc]]
    rows: int = 0  # documents in the split the items were drawn from

    def as_tuple(self) -> tuple[list[int], list[Doc], list[list[Doc]]]:
        return self.indices, self.docs, self.shots


def select_items(task: Task, data_dir: Path | None, limit: int | None, seed: int) -> TaskItems:
    """The seeded subset of a task's documents, processed, with their few-shot examples attached,
    exactly as every variant of a study sees them."""
    ds = data.load(task.data, data_dir)
    idx = data.sample_indices(len(ds), limit, seed)
    pool = list(data.load(task.fewshot.data, data_dir)) if task.fewshot else []
    docs, shots = [], []
    for i in idx:
        doc = ds[i]
        if task.process_docs:
            doc = task.process_docs(doc)
        docs.append(doc)
        shots.append(task.select_fewshot(doc, pool))
    return TaskItems(idx, docs, shots, len(ds))
