"""What the subcommands share: the study's parameters (the project's params.yaml when run inside it)."""

from __future__ import annotations

from pathlib import Path

from ..config import Params, load_params
from ..llamacpp.gguf import check_gguf
from ..paths import ProjectNotFound, project_root

#: the study's file, relative to the installed package, for a command run outside a project checkout
PACKAGE_ROOT = Path(__file__).resolve().parents[3]


def study_root() -> Path:
    """The project the command runs in (cwd or a parent with params.yaml and dvc.yaml), else this package's."""
    try:
        return project_root()
    except ProjectNotFound:
        if (PACKAGE_ROOT / "params.yaml").is_file():
            return PACKAGE_ROOT
        raise


def study_params(root: Path | None = None) -> Params:
    return load_params((root or study_root()) / "params.yaml")


def model_file(path: str) -> Path:
    """The GGUF file, checked (a missing or non-GGUF file fails here with its name)."""
    return check_gguf(Path(path))
