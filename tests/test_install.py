"""``pip install .`` (not editable) gives a package whose stages run: profiles, templates and tasks are package data."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import json, sys
import edgellm
from edgellm.eval.tasks import TASKS
from edgellm.devices.fleet import load_fleet
from edgellm.devices.bundle import render_run_sh
from edgellm.stages import host, params
params.main(["params.yaml", "--record", "results/params.json"])
record = host.run()
fleet = load_fleet(["raspberry-pi-5", "pixel-8"])
print(json.dumps({"file": edgellm.__file__, "tasks": sorted(TASKS), "host": record["name"],
                  "run_sh": render_run_sh(fleet[0], "v", 8, 8, 1).startswith("#!")}))
"""


def test_a_wheel_install_runs_stages_outside_the_repository(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(ROOT),
                    "-w", str(wheels)], check=True, capture_output=True)
    site = tmp_path / "site"
    (wheel,) = wheels.glob("edgellm-*.whl")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                   check=True, capture_output=True)
    study = tmp_path / "study"  # a study folder that is not the repository
    study.mkdir()
    shutil.copy(ROOT / "params.yaml", study / "params.yaml")
    shutil.copy(ROOT / "dvc.yaml", study / "dvc.yaml")
    env = {**os.environ, "PYTHONPATH": str(site), "EDGELLM_ROOT": str(study)}
    proc = subprocess.run([sys.executable, "-c", PROBE], cwd=study, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert Path(out["file"]).resolve().is_relative_to(site.resolve())  # the installed copy, not the source tree
    assert "arc_easy" in out["tasks"] and out["host"] == "this-host" and out["run_sh"]
    assert (study / "results" / "params.json").is_file() and (study / "results" / "devices" / "this-host.json").is_file()
