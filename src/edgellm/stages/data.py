"""Stage ``data``: snapshot the study's exact inputs (texts and each task's seeded items) into data/prepared."""

from __future__ import annotations

from pathlib import Path

from ..config import data_dir
from ..eval.prepared import write_prepared
from .common import context


def run(params_path: str | Path | None = None) -> dict:
    params, lay = context(params_path)
    return write_prepared(lay, data_dir(params, lay.root), params.evaluate.tasks, params.seed)
