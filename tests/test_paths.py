"""Where the study's files are (``edgellm.paths``): the project root, and the package's own data files."""

from __future__ import annotations

import pytest

from edgellm import paths
from edgellm.paths import Layout, ProjectNotFound, project_root


def test_package_data_files_are_found_from_the_package():
    assert paths.TASKS_FILE.is_file() and paths.RUN_SH_TEMPLATE.is_file()
    profiles = [p for p in paths.PROFILES_DIR.iterdir() if p.is_file()]
    assert len(profiles) >= 5 and {p.suffix for p in profiles} == {".yaml"}


def test_project_root_from_the_environment_or_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGELLM_ROOT", str(tmp_path))
    assert project_root() == tmp_path.resolve()
    monkeypatch.delenv("EDGELLM_ROOT")
    study = tmp_path / "study"
    (study / "notebooks").mkdir(parents=True)
    (study / "params.yaml").write_text("seed: 1\n")
    monkeypatch.chdir(study / "notebooks")  # papermill runs a notebook from its folder
    with pytest.raises(ProjectNotFound, match="no params.yaml with a dvc.yaml beside it"):
        project_root()
    (study / "dvc.yaml").write_text("stages: {}\n")
    assert project_root() == study.resolve()
    assert issubclass(ProjectNotFound, FileNotFoundError)


def test_layout_keeps_every_path_inside_the_study(tmp_path):
    lay = Layout(tmp_path)
    assert lay.params == tmp_path / "params.yaml" and lay.params_check == tmp_path / "results" / "params.json"
    assert lay.gguf("m", "Q4_K_M") == tmp_path / "models" / "gguf" / "m" / "Q4_K_M.gguf"
    assert lay.f32("m") == lay.gguf("m", "F32")
    assert lay.task_items("arc_easy").parent == lay.prepared / "tasks"
    assert lay.measured("pixel-8", "v") == lay.measured_dir / "pixel-8" / "v.json"
