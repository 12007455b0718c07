"""The code stage: a stage's fingerprint changes exactly when a file that stage runs changes."""

from __future__ import annotations

import shutil
from pathlib import Path

from edgellm.stages import code

ROOT = Path(__file__).resolve().parents[2]


def _copy(tmp: Path) -> Path:
    shutil.copytree(ROOT / "src" / "edgellm", tmp / "src" / "edgellm", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "notebooks", tmp / "notebooks")
    return tmp


def _texts(out: Path) -> dict[str, str]:
    return {p.stem: p.read_text() for p in sorted(out.glob("*.txt"))}


def test_editing_a_report_module_changes_only_the_fingerprints_of_the_stages_that_run_it(tmp_path):
    root = _copy(tmp_path)
    out = root / "results" / "code"
    files = code.run(root, out)
    before = _texts(out)
    assert set(before) == set(files) and "05_evaluate" in before and "edgellm.stages.params" in before
    assert all(len(line.split("  ")[0]) == 64 for t in before.values() for line in t.splitlines())

    fig = root / "src" / "edgellm" / "report" / "figures.py"
    fig.write_text(fig.read_text() + "\n# an edit\n")
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
    tasks.write_text(tasks.read_text() + "\n# an edit\n")
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
