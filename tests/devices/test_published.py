"""Published measurements (``edgellm.devices.published``) and the real llama-bench files imported through the
runners' results path (``edgellm.devices.runners.import_llama_bench``)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgellm.devices.fleet import available, load_fleet
from edgellm.devices.published import (COMPARABLE, PublishedError, from_measured, load_archs, load_speeds)
from edgellm.devices.runners import PUBLISHED_ORIGIN, RunnerError, ftype_of, import_llama_bench
from edgellm.paths import Layout, project_root

LAY = Layout(project_root())
REAL = sorted((LAY.published_dir / "llama-bench").glob("*.json"))


def test_published_table_is_valid_sourced_and_wide_enough():
    rows = load_speeds(LAY.published_speeds)
    archs = load_archs(LAY.published_models)
    devices = {d.name: d for d in load_fleet(available())}
    comparable = [r for r in rows if r.metric_class in COMPARABLE]
    assert len(rows) >= 40 and len({r.device for r in comparable}) >= 5
    for r in rows:
        assert r.model in archs, r.model
        assert r.device in devices, r.device
        assert r.backend in devices[r.device].backend_names, (r.device, r.backend)
        assert r.source_url and r.quote
    kinds = {r.device.split("-")[0] for r in comparable}
    assert {"raspberry", "jetson", "apple", "oneplus"} <= kinds
    assert {r.backend for r in rows if r.device == "jetson-orin-nano"} >= {"cpu", "cuda"}


def _write(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, list(rows[0]))
        w.writeheader()
        w.writerows(rows)


@pytest.mark.parametrize("column,value,message", [
    ("tg_ts", "fast", "'tg_ts'"),
    ("backend", "npu", "'backend'"),
    ("source_url", "see the forum", "'source_url'"),
    ("metric_class", "guess", "'metric_class'"),
])
def test_a_bad_cell_names_file_line_and_column(tmp_path, column, value, message):
    with LAY.published_speeds.open(newline="") as f:
        rows = list(csv.DictReader(f))
    rows[3][column] = value
    bad = tmp_path / "speeds.csv"
    _write(bad, rows)
    with pytest.raises(PublishedError) as e:
        load_speeds(bad)
    assert f"{bad}:5" in str(e.value) and message in str(e.value)


def test_a_row_without_a_speed_is_refused(tmp_path):
    with LAY.published_speeds.open(newline="") as f:
        rows = list(csv.DictReader(f))
    rows[0].update(pp_ts="", tg_ts="")
    bad = tmp_path / "speeds.csv"
    _write(bad, rows[:2])
    with pytest.raises(PublishedError, match="needs pp_ts or tg_ts"):
        load_speeds(bad)


def test_unknown_model_shape_is_named(tmp_path):
    bad = tmp_path / "models.yaml"
    bad.write_text("Tiny:\n  params_b: 0.1\n  n_layer: 2\n  hidden: 64\n  n_head: 4\n  n_kv_head: 4\n"
                   "  vocab: 100\n  tied: maybe\n  source: https://example.org\n")
    with pytest.raises(PublishedError, match=r"model 'Tiny'.*\n.*'tied'"):
        load_archs(bad)


@pytest.mark.parametrize("path", REAL, ids=[p.name[:40] for p in REAL])
def test_a_real_llama_bench_file_becomes_a_measured_record(path):
    runs = json.loads(path.read_text())
    pp = next(r for r in runs if r["n_prompt"] and not r["n_gen"])
    tg = next(r for r in runs if r["n_gen"] and not r["n_prompt"])
    assert any(r["n_prompt"] and r["n_gen"] for r in runs)     # the -pg test is in the file, and left out
    (rec,) = import_llama_bench(path, "raspberry-pi-4", "Some-Model", "https://example.org/file.json")
    assert rec["origin"] == PUBLISHED_ORIGIN and rec["device"] == "raspberry-pi-4"
    assert (rec["pp_ts"], rec["tg_ts"], rec["threads"]) == (pp["avg_ts"], tg["avg_ts"], tg["n_threads"])
    assert rec["quant"] == ftype_of(tg["model_type"]) and rec["variant"] == f"Some-Model-{rec['quant']}"
    point = from_measured(rec)
    assert point.backend == "cpu" and point.file_bytes == tg["model_size"]
    assert point.params_b == pytest.approx(tg["model_n_params"] / 1e9)


def test_the_committed_measured_records_are_the_real_files_imported():
    """results/measured holds exactly what importing the real files with their recorded model and source gives."""
    recs = [json.loads(p.read_text()) for p in sorted(LAY.measured_dir.glob("*/*.json"))]
    recs = [r for r in recs if r.get("origin") == PUBLISHED_ORIGIN]
    assert len(recs) == len(REAL) >= 1
    for rec in recs:
        again = import_llama_bench(LAY.published_dir / "llama-bench" / rec["file"], rec["device"], rec["model"],
                                   rec["source_url"])
        assert again == [rec]


def test_ftype_names():
    assert ftype_of("llama 1B Q4_0") == "Q4_0"
    assert ftype_of("qwen3 0.6B Q4_K - Medium") == "Q4_K_M"
    with pytest.raises(RunnerError, match="model_type"):
        ftype_of("Q4_0")


def test_a_file_that_is_not_llama_bench_output_is_refused(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text(json.dumps([{"avg_ts": 3}]))
    with pytest.raises(RunnerError, match="llama-bench's JSON output"):
        import_llama_bench(bad, "raspberry-pi-4", "M", "https://example.org")


def test_import_command_writes_under_results_measured(tmp_path):
    root = tmp_path / "study"
    root.mkdir()
    for f in ("params.yaml", "dvc.yaml"):
        (root / f).write_text((project_root() / f).read_text())
    env = {**os.environ, "EDGELLM_ROOT": str(root)}
    out = subprocess.run([sys.executable, "-m", "edgellm.devices.runners", "--device", "raspberry-pi-4",
                          "--import", str(REAL[0]), "--model", "Llama-3.2-1B", "--source", "https://example.org/f"],
                         env=env, capture_output=True, text=True, check=True).stdout
    (written,) = list((root / "results" / "measured" / "raspberry-pi-4").glob("*.json"))
    assert written.name in out and json.loads(written.read_text())["model"] == "Llama-3.2-1B"
    bad = subprocess.run([sys.executable, "-m", "edgellm.devices.runners", "--device", "raspberry-pi-4",
                          "--import", str(REAL[0])], env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "--import needs --model and --source" in bad.stderr
