"""The params stage: a bad params.yaml stops `dvc repro` with one message and leaves every file as it was."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgellm.stages import params as params_stage

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and ".git" not in p.parts and ".dvc" not in p.parts}


def test_record_is_the_same_for_every_valid_params(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    params = (ROOT / "params.yaml").read_text()
    (tmp_path / "params.yaml").write_text(params)
    params_stage.run(tmp_path / "params.yaml", a)
    (tmp_path / "params.yaml").write_text(params.replace("seed: 20241114", "seed: 7"))
    params_stage.run(tmp_path / "params.yaml", b)
    assert a.read_bytes() == b.read_bytes()


def test_main_prints_one_message_and_writes_nothing(tmp_path, capsys):
    bad = tmp_path / "params.yaml"
    bad.write_text((ROOT / "params.yaml").read_text().replace("threads: 2 ", "threads: 0 "))
    record = tmp_path / "params.json"
    assert params_stage.main([str(bad), "--record", str(record)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}: invalid parameters" in err and "'threads'" in err and "(got 0)" in err
    assert len(err.strip().splitlines()) == 2
    assert not record.exists() and list(tmp_path.iterdir()) == [bad]


@pytest.mark.slow
@pytest.mark.parametrize("old,new,named", [("\n    Q4_K_M: main\n", "\n    Q4_K_X: main\n", "Q4_K_X"),
                                           ("\nmodels:\n", "\nmodles:\n", "modles")], ids=["value", "key"])
def test_dvc_repro_stops_at_a_bad_params_file_and_touches_nothing(tmp_path, old, new, named):
    """A typo'd value or key reaches no stage that removes outputs: dvc repro fails in the params stage, with the
    schema's message (not DVC's: dvc.yaml interpolates only results/pipeline.yaml), and every workspace file keeps
    its bytes (outputs, notebooks, records)."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True, check=True).stdout
    study = tmp_path / "study"
    for rel in filter(None, files.decode().split("\0")):
        src = ROOT / rel
        if src.is_file():
            (study / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, study / rel)
    env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}", "EDGELLM_ROOT": str(study)}
    subprocess.run(["git", "init", "-q"], cwd=study, check=True)
    params = study / "params.yaml"
    text = params.read_text()
    typo = text.replace(old, new, 1)
    assert typo != text, f"params.yaml no longer holds {old!r}: update the typo"
    params.write_text(typo)
    before = _snapshot(study)
    proc = subprocess.run([str(BIN / "dvc"), "repro"], cwd=study, capture_output=True, text=True, env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "params.yaml: invalid parameters" in out and named in out, out
    assert "Traceback" not in out, out
    assert "Running stage 'data'" not in out and "Running stage 'params'" in out, out
    assert _snapshot(study) == before
