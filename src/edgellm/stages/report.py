"""Stage ``report``: results tables, metrics, figures, LaTeX tables and the paper's generated inputs."""

from __future__ import annotations

from pathlib import Path

from ..report.build import build
from .common import context


def run(params_path: str | Path | None = None) -> dict:
    params, lay = context(params_path)
    return build(params, lay)
