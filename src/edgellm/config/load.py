"""Reading ``params.yaml``: one message naming the file, the key and the value, or a valid :class:`Params`."""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from pydantic import ValidationError

from ..paths import project_root
from .base import ParamsError, mark_paths
from .schema import Params

DATA_ENV = "EDGELLM_DATA_DIR"


def _format_error(path: Path, err: ValidationError, raw: dict) -> str:
    lines = [f"{path}: invalid parameters"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"] if not str(p).startswith(("function-after", "tagged-union")))
        if e["type"] == "extra_forbidden":
            lines.append(f"  unknown key '{loc}' (value {e['input']!r}); check the spelling")
        elif e["type"] == "missing":
            lines.append(f"  missing key '{loc}'")
        else:
            value = e.get("input")
            shown = f" (got {value!r})" if not isinstance(value, dict) else ""
            msg = e["msg"].removeprefix("Value error, ")
            lines.append(f"  '{loc}': {msg}{shown}" if loc else f"  {msg}")
    return "\n".join(lines)


def load_params(path: str | Path | None = None) -> Params:
    """Read and validate params.yaml; raise :class:`ParamsError` naming what is wrong."""
    path = Path(path) if path is not None else project_root() / "params.yaml"
    if not path.is_file():
        raise ParamsError(f"{path}: parameters file not found")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ParamsError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        params = Params.model_validate(raw)
    except ValidationError as e:
        raise ParamsError(_format_error(path, e, raw)) from None
    mark_paths(params)
    return params


def data_dir(params: Params, root: Path | None = None) -> Path | None:
    """The local dataset mirror, or None to read from the hub. ``EDGELLM_DATA_DIR`` wins."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).resolve()
    if params.data.local_dir is None:
        return None
    root = root or project_root()
    return (root / params.data.local_dir).resolve()
