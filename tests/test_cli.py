"""``edgellm``, the command line: each subcommand on real inputs (the tiny model, the mirror's items, the
committed device tables), its --help, and one clear error line for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import pytest

from edgellm.cli import main
from edgellm.config import load_params
from edgellm.eval.batched import BatchScorer
from edgellm.eval.scoring import run_tasks
from edgellm.eval.tasks import TASKS, select_items
from edgellm.llamacpp.runtime import Model
from edgellm.stages.evaluate import scoring_context

ROOT = Path(__file__).resolve().parents[1]
EDGELLM = Path(sys.executable).with_name("edgellm")


@pytest.mark.parametrize("argv", [["--help"], ["eval", "--help"], ["bench", "--help"], ["project", "--help"],
                                  ["device", "--help"], ["device", "run", "--help"]])
def test_every_subcommand_has_help(argv):
    proc = subprocess.run([str(EDGELLM), *argv], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0 and "usage:" in proc.stdout, proc.stderr


@pytest.mark.parametrize("argv, message", [
    (["eval", "missing.gguf", "--tasks", "arc_easy"], "missing.gguf: model file not found"),
    (["eval", "README.md", "--tasks", "arc_easy"], "README.md: not a GGUF file"),
    (["bench", "missing.gguf"], "missing.gguf: model file not found"),
    (["project", "missing.gguf", "--device", "raspberry-pi-5"], "missing.gguf: model file not found"),
    (["device", "run", "--device", "raspberry-pi-5", "--runner", "ssh"], "the ssh runner needs --host"),
])
def test_bad_input_fails_with_one_line_naming_it(argv, message):
    proc = subprocess.run([str(EDGELLM), *argv], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_unknown_task_and_device_are_named(tiny_gguf, capsys):
    assert main(["eval", str(tiny_gguf["Q8_0"]), "--tasks", "arc_easy,gsm9k"]) == 2
    assert "unknown task(s) ['gsm9k']; known:" in capsys.readouterr().err
    assert main(["project", str(tiny_gguf["Q8_0"]), "--device", "raspberry-pi-6"]) == 2
    assert "device 'raspberry-pi-6': no profile" in capsys.readouterr().err
    assert main(["bench", str(tiny_gguf["Q8_0"]), "--threads", "two"]) == 2
    assert "--threads 'two'" in capsys.readouterr().err


def test_eval_gives_the_study_scorer_s_items_and_an_lm_eval_table(tiny_gguf, tmp_path, capsys, data_dir):
    """The same items (the study's seeded subset) and the same log-likelihoods, bit for bit, as the evaluate
    stage's scorer with the study's context settings."""
    out = tmp_path / "eval.json"
    assert main(["eval", str(tiny_gguf["Q4_K_M"]), "--tasks", "arc_easy,lambada_openai", "--limit", "6",
                 "--threads", "2", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "|Tasks|n|Metric|Value|Stderr|Chance|" in printed and "|arc_easy|6|acc_norm|" in printed
    got = json.loads(out.read_text())
    params = load_params(ROOT / "params.yaml")
    items = {n: select_items(TASKS[n], data_dir, 6, params.seed) for n in ("arc_easy", "lambada_openai")}
    with Model(tiny_gguf["Q4_K_M"], **scoring_context(params), n_threads=2) as m:
        ref = run_tasks(BatchScorer(m, params.evaluate.n_batch), items, 8, progress=False)
    for name, (summary, res) in ref.items():
        assert got["items"][name] == json.loads(json.dumps([asdict(r) for r in res])), name
        assert got["tasks"][name]["acc"] == summary["acc"]
    assert got["execution"] == {"shard_items": None, "shards": 2, "compute": "cpu", "ray_address": None}


def test_bench_measures_pp_tg_ttft_and_rss(tiny_gguf, tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", str(tiny_gguf["Q8_0"]), "-t", "1,2", "-p", "32", "-n", "8", "-r", "2",
                 "--ttft-prompt", "16", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| pp32 |" in printed and "| tg8 |" in printed and "time to first token" in printed
    runs = json.loads(out.read_text())["runs"]
    assert [r["runs"][0]["threads"] for r in runs] == [1, 2]
    for r in runs:
        assert r["runs"][0]["pp32"]["avg_ts"] > 0 and r["runs"][0]["tg8"]["avg_ts"] > 0 and r["peak_rss_bytes"] > 0


def test_project_reproduces_the_verdicts_stage_for_a_study_file(tiny_gguf, capsys):
    """For the tiny model the speeds follow from its bytes per token; checked against the verdict table's
    arithmetic: the band and the state use the validation stage's committed numbers."""
    from edgellm.cli.project import projection

    rows = projection(tiny_gguf["Q4_K_M"], "raspberry-pi-5")
    assert list(rows.backend) == ["cpu"]
    r = rows.iloc[0]
    band = pd.read_csv(ROOT / "results" / "devices" / "validation.csv").query(
        "device == 'raspberry-pi-5' and backend == 'cpu' and test == 'tg'").band_factor.iloc[0]
    assert r.tg_band == pytest.approx(band) and r.tg_low == pytest.approx(r.tg_ts / band)
    assert r.state in ("accessible", "borderline", "not accessible") and r.fits
    assert main(["project", str(tiny_gguf["Q4_K_M"]), "--device", "jetson-orin-nano"]) == 0
    printed = capsys.readouterr().out
    assert "| cuda |" in printed and "| cpu |" in printed
