"""The code stage: a stage's fingerprint changes exactly when a file that stage runs changes."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
import yaml

from edgellm.stages import code

ROOT = Path(__file__).resolve().parents[2]


def _copy(tmp: Path) -> Path:
    shutil.copytree(ROOT / "src" / "edgellm", tmp / "src" / "edgellm", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "notebooks", tmp / "notebooks")
    shutil.copy2(ROOT / "requirements.lock", tmp / "requirements.lock")
    shutil.copy2(ROOT / "Makefile", tmp / "Makefile")
    return tmp


def _texts(out: Path) -> dict[str, str]:
    return {p.stem: p.read_text() for p in sorted(out.glob("*.txt"))}


def test_editing_a_report_module_changes_only_the_fingerprints_of_the_stages_that_run_it(tmp_path):
    root = _copy(tmp_path)
    out = root / "results" / "code"
    files = code.run(root, out)
    before = _texts(out)
    assert set(before) == set(files) and "05_evaluate" in before and "edgellm.stages.params" in before
    assert all(len(line.split("  ")[0]) == 64 for t in before.values() for line in t.splitlines()
               if not line.startswith("toolchain  "))

    fig = root / "src" / "edgellm" / "report" / "figures.py"
    fig.write_text(fig.read_text() + "\n\ndef added():\n    return 1\n")
    code.run(root, out)
    after = _texts(out)
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {k for k, fs in files.items() if "src/edgellm/report/figures.py" in fs}
    assert "07_report" in changed and "05_evaluate" not in changed and "01b_compress" not in changed


def test_a_data_file_a_module_reads_is_fingerprinted_and_a_stale_fingerprint_is_removed(tmp_path):
    root = _copy(tmp_path)
    out = root / "results" / "code"
    (out).mkdir(parents=True)
    (out / "99_gone.txt").write_text("a stage that no longer exists\n")
    code.run(root, out)
    assert not (out / "99_gone.txt").exists()
    before = _texts(out)
    tasks = root / "src" / "edgellm" / "eval" / "tasks.yaml"
    tasks.write_text(tasks.read_text().replace("truthfulqa_gen:", "truthfulqa_gen_renamed:", 1))
    code.run(root, out)
    after = _texts(out)
    assert before["05_evaluate"] != after["05_evaluate"] and before["edgellm.stages.params"] != after["edgellm.stages.params"]
    assert before["06c_host"] == after["06c_host"]


def test_unchanged_code_rewrites_nothing(tmp_path):
    root = _copy(tmp_path)
    out = root / "results" / "code"
    code.run(root, out)
    mtimes = {p: p.stat().st_mtime_ns for p in out.glob("*.txt")}
    code.run(root, out)
    assert {p: p.stat().st_mtime_ns for p in out.glob("*.txt")} == mtimes


def test_docstrings_comments_and_layout_stale_nothing(tmp_path):
    """What a stage runs is the syntax tree: a new docstring, comment or blank line in paths.py (in every
    stage's closure) or a comment in a YAML data file leaves every fingerprint as it was."""
    root = _copy(tmp_path)
    out = root / "results" / "code"
    code.run(root, out)
    before = _texts(out)
    paths = root / "src" / "edgellm" / "paths.py"
    text = paths.read_text()
    edited = text.replace('"""Every path of the study', '"""A reworded docstring.\n\nEvery path of the study', 1)
    edited = edited.replace("class Layout:", "# a comment\n\n\nclass Layout:", 1)
    edited = edited.replace('        return self.root / "params.yaml"', '        """A new docstring."""\n        return self.root / "params.yaml"  # why', 1)
    assert edited != text
    paths.write_text(edited)
    tasks = root / "src" / "edgellm" / "eval" / "tasks.yaml"
    tasks.write_text("# a comment\n" + tasks.read_text())
    code.run(root, out)
    assert _texts(out) == before


def test_a_function_body_stales_exactly_the_stages_that_import_it(tmp_path):
    root = _copy(tmp_path)
    out = root / "results" / "code"
    files = code.run(root, out)
    before = _texts(out)
    mod = root / "src" / "edgellm" / "eval" / "perplexity.py"
    text = mod.read_text()
    mod.write_text(text.replace("def ", "def _unused_helper():\n    return 2\n\n\ndef ", 1))
    code.run(root, out)
    after = _texts(out)
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {k for k, fs in files.items() if "src/edgellm/eval/perplexity.py" in fs}
    assert {"05_evaluate", "04_kl_reference"} <= changed and "06d_fleet" not in changed


def test_the_toolchain_is_in_every_fingerprint(tmp_path):
    """A new pin of a package that computes numbers, or another llama.cpp build flag, stales every stage;
    a pin of a package that computes none (tqdm) stales nothing."""
    root = _copy(tmp_path)
    out = root / "results" / "code"
    code.run(root, out)
    before = _texts(out)
    assert all("toolchain  torch==" in t and "toolchain  llama-cpp-python==" in t for t in before.values())
    lock = root / "requirements.lock"
    pins = lock.read_text()
    lock.write_text("\n".join(line + "0" if line.startswith("tqdm==") else line for line in pins.splitlines()) + "\n")
    code.run(root, out)
    assert _texts(out) == before
    lock.write_text(pins.replace("torch==", "torch==9", 1))
    code.run(root, out)
    assert all(before[k] != t for k, t in _texts(out).items())
    lock.write_text(pins)
    make = root / "Makefile"
    make.write_text(make.read_text().replace("-mno-amx-tile", "-mno-amx-tile -mno-avx512f", 1))
    code.run(root, out)
    assert all(before[k] != t for k, t in _texts(out).items())


def test_the_committed_lock_records_the_current_fingerprints(tmp_path):
    """The lock is evidence: every stage's code dep in dvc.lock has the md5 of the fingerprint the current source
    gives. A semantic change to a stage's code cannot land without the rerun that re-records it."""
    names = _stage_names()
    out = tmp_path / "code"
    code.run(ROOT, out)
    lock = yaml.safe_load((ROOT / "dvc.lock").read_text())["stages"]
    recorded = {(stage, d["path"]): d["md5"] for stage, entry in lock.items() for d in entry.get("deps", [])
                if d["path"].startswith("results/code/")}
    assert recorded, "dvc.lock names no code fingerprint"
    stale = sorted(f"{stage}: {path}" for (stage, path), md5 in recorded.items()
                   if hashlib.md5((out / Path(path).name).read_bytes()).hexdigest() != md5)
    assert not stale, f"dvc.lock lags the source in {len(stale)} stages (rerun them with dvc repro): " + ", ".join(stale[:8])
    # and no entry of a stage dvc.yaml no longer declares
    orphans = sorted(s for s in lock if s not in names)
    assert not orphans, f"dvc.lock has entries of stages dvc.yaml does not declare: {orphans}"


def _stage_names() -> set[str]:
    Repo = pytest.importorskip("dvc.repo").Repo  # the fast tier's environment has no DVC

    with Repo(str(ROOT)) as repo:
        return {s.name for s in repo.index.stages}
