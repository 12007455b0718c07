"""Shared set-up for the benchmarks: the study's folder and its GGUF files (where ``edgellm.paths`` says)."""

from __future__ import annotations

import sys
from pathlib import Path

from edgellm.paths import Layout, project_root

ROOT = project_root()
LAYOUT = Layout(ROOT)
# the reference implementations the benchmarks compare with live beside the tests (tests/oracles)
sys.path.insert(0, str(ROOT))


def study_gguf(qtype: str, model: str = "smollm2-135m") -> Path:
    path = LAYOUT.gguf(model, qtype)
    if not path.is_file():
        sys.exit(f"{path} not found: run `make repro` (or `dvc repro quantize`) first")
    return path
