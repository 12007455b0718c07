"""Shared set-up for the benchmarks: the study's GGUF files and llama.cpp's tools."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def study_gguf(qtype: str, model: str = "smollm2-135m") -> Path:
    path = ROOT / "models" / "gguf" / model / f"{qtype}.gguf"
    if not path.is_file():
        sys.exit(f"{path} not found: run `make repro` (or `dvc repro quantize`) first")
    return path
