"""The data stage's snapshot: the exact texts and items every variant reads, written and read here only.

Every variant scores the same files, and a reader can see (and hash) exactly
which items were scored: ``data/prepared/`` holds the perplexity text, the
calibration text, one JSON-lines file per task (dataset index, processed
document, the item's few-shot documents) and ``info.json`` with sources and
sha256 of every file.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..io import atomic_dir, sha256_file, write_json
from ..paths import Layout
from . import data
from .tasks import TASKS, TaskItems, select_items


def write_prepared(lay: Layout, data_dir: Path | None, tasks: dict[str, int | None], seed: int) -> dict:
    """Snapshot the texts and each task's seeded item subset into ``lay.prepared`` (atomically)."""
    info: dict = {"source": str(data_dir) if data_dir else "huggingface hub", "seed": seed, "files": {}}
    with atomic_dir(lay.prepared) as tmp:
        for name, ref, text in (
            (lay.wikitext.name, data.WIKITEXT2_TEST, data.wikitext_document(data_dir)),
            (lay.calibration.name, data.LAMBADA_DEV, data.calibration_text(data_dir)),
        ):
            (tmp / name).write_text(text)
            info["files"][name] = {"dataset": ref.describe(), "chars": len(text)}
        (tmp / "tasks").mkdir()
        for name, limit in tasks.items():
            task = TASKS[name]
            it = select_items(task, data_dir, limit, seed)
            with open(tmp / "tasks" / f"{name}.jsonl", "w") as f:
                for i, doc, shots in zip(*it.as_tuple()):
                    row = {"index": i, "doc": doc}
                    if task.fewshot:  # the item's few-shot examples travel with it
                        row["fewshot"] = shots
                    f.write(json.dumps(row, sort_keys=True) + "\n")
            info["files"][f"tasks/{name}.jsonl"] = {"dataset": task.data.describe(), "rows": it.rows,
                                                    "selected": len(it.indices)}
        for f in sorted(tmp.rglob("*")):
            if f.is_file():
                info["files"].setdefault(str(f.relative_to(tmp)), {})["sha256"] = sha256_file(f)
        write_json(tmp / lay.prepared_info.name, info)
    return info


def load_task_items(lay: Layout, task: str) -> TaskItems:
    """A task's prepared items, in the order every variant scores them."""
    path = lay.task_items(task)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: prepared items missing; run the data stage (evaluate.tasks names {task!r})")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line]
    return TaskItems([r["index"] for r in rows], [r["doc"] for r in rows], [r.get("fewshot", []) for r in rows])


def subset_items(items: TaskItems, limit: int | None, seed: int) -> TaskItems:
    """A seeded random subset of the prepared items (a tier's share of the reference's items), in their order:
    the same for every variant of the tier, and paired with the reference by dataset index."""
    keep = data.sample_indices(len(items.indices), limit, seed)
    return TaskItems([items.indices[i] for i in keep], [items.docs[i] for i in keep], [items.shots[i] for i in keep],
                     items.rows)


def wikitext_text(lay: Layout) -> str:
    """The prepared perplexity text (WikiText-2 test)."""
    if not lay.wikitext.is_file():
        raise FileNotFoundError(f"{lay.wikitext}: prepared text missing; run the data stage")
    return lay.wikitext.read_text()


def calibration_text(lay: Layout) -> str:
    """The prepared calibration text (LAMBADA development)."""
    if not lay.calibration.is_file():
        raise FileNotFoundError(f"{lay.calibration}: prepared calibration text missing; run the data stage")
    return lay.calibration.read_text()
