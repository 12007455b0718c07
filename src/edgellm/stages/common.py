"""What every stage starts from: the validated parameters, the layout of the study folder, and its variant."""

from __future__ import annotations

from pathlib import Path

import yaml

from ..config import Params, ParamsError, Variant, load_params
from ..config.base import start_recording_from_env
from ..paths import Layout, project_root


def context(params_path: str | Path | None = None) -> tuple[Params, Layout]:
    """The parameters and the layout of the study whose ``params.yaml`` is ``params_path`` (default: this one).

    Where the notebook runner asked for it, every parameter the stage reads from here on is recorded (the
    check that ``dvc.yaml`` lists exactly the keys each stage reads)."""
    root = project_root() if params_path is None else Path(params_path).resolve().parent
    params = load_params(root / "params.yaml" if params_path is None else params_path)
    start_recording_from_env()
    return params, Layout(root)


def _table(lay: Layout, table: str, name: str) -> dict:
    path = lay.pipeline_vars
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; run `python -m edgellm.stages.params params.yaml --pipeline {path}`")
    rows = (yaml.safe_load(path.read_text()) or {}).get("pipeline", {}).get(table, {})
    if name not in rows:
        raise ParamsError(f"{name!r} is not in {path} pipeline.{table}; known: {list(rows)}")
    return rows[name]


def study_variant(lay: Layout, name: str) -> Variant:
    """A variant as ``dvc.yaml`` runs it: its entry of ``results/pipeline.yaml`` (which its stages depend on),
    so that a per-variant stage reads its own definition and not the whole variant table of ``params.yaml``."""
    row = _table(lay, "variants", name)
    return Variant(name, row["checkpoint"], row["model"], row.get("recipe"), row["type"], row["tier"])


def study_model(lay: Layout, name: str) -> dict:
    """A base model's entry of ``results/pipeline.yaml`` (refused if it is not one of the study)."""
    return _table(lay, "models", name)


def study_variants(lay: Layout) -> list[Variant]:
    """Every variant of ``results/pipeline.yaml``, in its order: what the stages that gather all variants read
    (they depend on the table, not on the params it is derived from)."""
    path = lay.pipeline_vars
    rows = (yaml.safe_load(path.read_text()) or {}).get("pipeline", {}).get("variants", {}) if path.is_file() else {}
    if not rows:
        raise FileNotFoundError(f"{path}: no variant table; run `python -m edgellm.stages.params params.yaml "
                                f"--pipeline {path}`")
    return [study_variant(lay, name) for name in rows]


def study_checkpoint(lay: Layout, name: str) -> dict:
    """A checkpoint's entry of ``results/pipeline.yaml``: its base model, its recipe (compressed ones), whether
    it gets an importance matrix."""
    return _table(lay, "checkpoints", name)


def variant_fields(v: Variant) -> dict:
    """The fields that name a variant in every per-variant record."""
    return {"variant": v.name, "model": v.checkpoint, "base": v.base, "recipe": v.recipe, "type": v.qtype,
            "tier": v.tier}
