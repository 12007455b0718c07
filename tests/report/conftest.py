"""A study folder in tmp_path holding copies of the committed records of the default study, the per-item
scores (``results/items``, committed since the report reads them) included."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edgellm.config import load_params
from edgellm.paths import Layout

ROOT = Path(__file__).resolve().parents[2]
RECORDS = ("models", "gguf", "eval", "items", "profile", "bundles", "devices", "measured", "agreement", "kv_cache")
FILES = ("hallucination.json", "fleet.csv", "fleet.json", "accessibility.csv", "pipeline.yaml")


def make_study(dest: Path) -> Path:
    for name in ("params.yaml", "dvc.yaml"):
        shutil.copy(ROOT / name, dest / name)
    (dest / "results").mkdir()
    for d in RECORDS:
        shutil.copytree(ROOT / "results" / d, dest / "results" / d)
    for f in FILES:
        shutil.copy(ROOT / "results" / f, dest / "results" / f)
    # the published models' shapes: where the fleet reads a sliding-window layout
    (dest / "data" / "published").mkdir(parents=True)
    shutil.copy(ROOT / "data" / "published" / "models.yaml", dest / "data" / "published" / "models.yaml")
    return dest


@pytest.fixture(scope="session")
def study(tmp_path_factory) -> tuple:
    root = make_study(tmp_path_factory.mktemp("study"))
    lay = Layout(root)
    return load_params(lay.params), lay
