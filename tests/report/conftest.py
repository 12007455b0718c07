"""A study folder in tmp_path holding copies of the committed records of the default study.

The per-item scores (``results/items``) are DVC outputs, not committed: the fixture
writes items whose means are the committed accuracies (``round(acc * n)`` items right),
so every column computed from the committed records is reproduced exactly. Items are
numbered 0..n-1, so a frontier variant's items are the first of the reference's.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edgellm.config import load_params
from edgellm.paths import Layout

ROOT = Path(__file__).resolve().parents[2]
RECORDS = ("models", "gguf", "eval", "profile", "bundles", "devices", "measured")
FILES = ("hallucination.json", "fleet.csv", "fleet.json", "accessibility.csv")


def synth_items(eval_record: dict) -> dict:
    out = {}
    for task, s in eval_record["tasks"].items():
        if "acc" not in s:
            continue
        n, chance = s["n"], s.get("chance")
        if task == "truthfulqa_mc2":
            out[task] = [{"index": i, "acc": s["acc"], "chance": chance} for i in range(n)]
        else:
            k = round(s["acc"] * n)
            out[task] = [{"index": i, "acc": 1.0 if i < k else 0.0, "chance": chance} for i in range(n)]
    return out


def make_study(dest: Path) -> Path:
    for name in ("params.yaml", "dvc.yaml"):
        shutil.copy(ROOT / name, dest / name)
    (dest / "results").mkdir()
    for d in RECORDS:
        shutil.copytree(ROOT / "results" / d, dest / "results" / d)
    for f in FILES:
        shutil.copy(ROOT / "results" / f, dest / "results" / f)
    items = dest / "results" / "items"
    items.mkdir()
    for p in (ROOT / "results" / "eval").glob("*.json"):
        (items / p.name).write_text(json.dumps(synth_items(json.loads(p.read_text()))))
    return dest


@pytest.fixture(scope="session")
def study(tmp_path_factory) -> tuple:
    root = make_study(tmp_path_factory.mktemp("study"))
    lay = Layout(root)
    return load_params(lay.params), lay
