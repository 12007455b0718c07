"""`dvc repro` of a smoke study (two variants, a few items) in a temporary copy of the repository."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _copy_repo(dst: Path) -> None:
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split("\0")
    for rel in filter(None, files):
        src = ROOT / rel
        if not src.is_file() or rel.startswith(("results/", "figures/", "paper/tables/", "metrics/", "plots/")) \
                or rel == "dvc.lock":
            continue
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst / rel)
    (dst / "results" / "notebooks").mkdir(parents=True, exist_ok=True)
    os.symlink((ROOT / ".llama.cpp").resolve(), dst / ".llama.cpp")


def _smoke_params(path: Path, types: list[str]) -> None:
    p = yaml.safe_load(path.read_text())
    p["data"]["local_dir"] = str((ROOT / p["data"]["local_dir"]).resolve())
    p["quantization"]["types"] = types
    p["evaluate"]["perplexity"] = {"n_ctx": 128, "max_chunks": 4, "n_batch": 512}
    p["evaluate"]["n_ctx"] = 2048
    p["evaluate"]["tasks"] = {t: 3 for t in p["evaluate"]["tasks"]}
    p["profile"] = {"threads": [2], "n_prompt": 32, "n_gen": 8, "repetitions": 2, "ttft_prompt": 16}
    path.write_text(yaml.safe_dump(p, sort_keys=False))


def _dvc(repo: Path, *args: str) -> str:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    env.pop("EDGELLM_ROOT", None)
    proc = subprocess.run([str(BIN / "dvc"), *args], cwd=repo, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, f"dvc {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout + proc.stderr


@pytest.mark.slow
def test_smoke_study_end_to_end(tmp_path):
    repo = tmp_path / "repo"
    _copy_repo(repo)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    _smoke_params(repo / "params.yaml", ["F16", "Q4_0"])

    _dvc(repo, "repro")

    df_lines = (repo / "results" / "results.csv").read_text().splitlines()
    assert len(df_lines) == 3 and df_lines[0].startswith("variant,")
    summary = json.loads((repo / "metrics" / "summary.json").read_text())
    assert set(summary) == {"smollm2-135m-F16", "smollm2-135m-Q4_0"}
    f16, q4 = summary["smollm2-135m-F16"], summary["smollm2-135m-Q4_0"]
    assert f16["kld"] == 0 and q4["kld"] > 0 and q4["file_mb"] < f16["file_mb"] and q4["bpw"] < f16["bpw"]
    assert 1 < f16["ppl"] < 1000 and q4["tg_ts"] > 0
    for name in ("accuracy_vs_size", "perplexity_vs_bpw", "kl_vs_bpw", "speed_vs_bpw", "hallucination_vs_bpw"):
        assert (repo / "figures" / f"{name}.png").stat().st_size > 10_000
        assert (repo / "figures" / f"{name}.pdf").is_file()
    for name in ("quality", "resources", "tensor_types"):
        assert "\\begin{tabular}" in (repo / "paper" / "tables" / f"{name}.tex").read_text()
    executed = sorted(p.name for p in (repo / "results" / "notebooks").glob("*.ipynb"))
    assert "05_evaluate-smollm2-135m-Q4_0.ipynb" in executed and "07_report.ipynb" in executed
    record = json.loads((repo / "results" / "gguf" / "smollm2-135m-Q4_0.json").read_text())
    assert "Q4_0" in record["tensor_types"] and record["tensors"]

    # nothing changed: nothing runs
    out = _dvc(repo, "repro")
    assert "Running stage" not in out, out

    # one type changed: only that variant's stages and the report are stale
    _smoke_params(repo / "params.yaml", ["F16", "Q8_0"])
    out = _dvc(repo, "status", "--json")
    stale = set(json.JSONDecoder().raw_decode(out[out.index("{"):])[0])
    assert stale == {"quantize@smollm2-135m-Q8_0", "evaluate@smollm2-135m-Q8_0", "profile@smollm2-135m-Q8_0",
                   "report"}, out
