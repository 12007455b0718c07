"""The data stage's snapshot (``edgellm.eval.prepared``): written once, read back by every variant."""

from __future__ import annotations

import json

import pytest

from edgellm.eval import data
from edgellm.eval.prepared import (
    calibration_text,
    load_task_items,
    wikitext_text,
    write_prepared,
)
from edgellm.eval.tasks import TASKS, select_items
from edgellm.io import sha256_file
from edgellm.paths import Layout


def test_prepared_items_are_the_seeded_selection(tmp_path, data_dir):
    lay = Layout(tmp_path)
    info = write_prepared(lay, data_dir, {"arc_easy": 4, "mmlu_5shot": 2, "truthfulqa_gen": 3}, seed=7)
    assert json.loads(lay.prepared_info.read_text()) == info and info["seed"] == 7
    for name, n in (("arc_easy", 4), ("mmlu_5shot", 2), ("truthfulqa_gen", 3)):
        ref = select_items(TASKS[name], data_dir, n, seed=7)
        got = load_task_items(lay, name)
        assert got.indices == ref.indices and got.docs == ref.docs, name
        if TASKS[name].fewshot:  # the few-shot examples travel with the item
            assert got.shots == ref.shots and all(len(s) == 5 for s in got.shots)
        assert info["files"][f"tasks/{name}.jsonl"]["selected"] == n
    assert wikitext_text(lay) == data.wikitext_document(data_dir)
    assert calibration_text(lay) == data.calibration_text(data_dir)
    # every file is listed with its hash, so a reader can check exactly what was scored
    for rel, entry in info["files"].items():
        assert entry["sha256"] == sha256_file(lay.prepared / rel), rel


def test_missing_snapshot_names_the_data_stage(tmp_path):
    lay = Layout(tmp_path)
    with pytest.raises(FileNotFoundError, match="run the data stage"):
        load_task_items(lay, "arc_easy")
    with pytest.raises(FileNotFoundError, match="run the data stage"):
        wikitext_text(lay)
    with pytest.raises(FileNotFoundError, match="run the data stage"):
        calibration_text(lay)
