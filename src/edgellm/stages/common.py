"""What every stage starts from: the validated parameters and the layout of the study folder."""

from __future__ import annotations

from pathlib import Path

from ..config import Params, Variant, load_params
from ..paths import Layout, project_root


def context(params_path: str | Path | None = None) -> tuple[Params, Layout]:
    """The parameters and the layout of the study whose ``params.yaml`` is ``params_path`` (default: this one)."""
    root = project_root() if params_path is None else Path(params_path).resolve().parent
    return load_params(root / "params.yaml" if params_path is None else params_path), Layout(root)


def variant_fields(v: Variant) -> dict:
    """The fields that name a variant in every per-variant record."""
    return {"variant": v.name, "model": v.checkpoint, "base": v.base, "recipe": v.recipe, "type": v.qtype,
            "tier": v.tier}
