"""``edgellm``, the command line: each subcommand on real inputs (the tiny model, the mirror's items, the
committed device tables), its --help, and one clear error line for bad input."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from edgellm.cli import main
from edgellm.cli.common import default_params
from edgellm.config import data_dir as params_data_dir
from edgellm.config import load_params
from edgellm.eval import lmeval
from edgellm.eval.agreement import MODES
from edgellm.io import sha256_file
from edgellm.eval.batched import BatchScorer
from edgellm.eval.scoring import run_tasks
from edgellm.eval.tasks import TASKS, select_items
from edgellm.llamacpp.runtime import Model
from edgellm.eval.contexts import scoring_context

ROOT = Path(__file__).resolve().parents[1]
EDGELLM = Path(sys.executable).with_name("edgellm")


@pytest.mark.parametrize("argv", [["--help"], ["eval", "--help"], ["bench", "--help"], ["project", "--help"],
                                  ["device", "--help"], ["device", "run", "--help"]])
def test_every_subcommand_has_help(argv):
    proc = subprocess.run([str(EDGELLM), *argv], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0 and "usage:" in proc.stdout, proc.stderr


def test_python_m_edgellm_cli_is_the_command():
    proc = subprocess.run([sys.executable, "-m", "edgellm.cli", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0 and proc.stdout.startswith("usage: edgellm "), proc.stderr
    proc = subprocess.run([sys.executable, "-m", "edgellm.cli", "bench", "missing.gguf"], capture_output=True,
                          text=True, cwd=ROOT)
    assert proc.returncode == 2 and proc.stderr == "edgellm bench: error: missing.gguf: model file not found\n"


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
    assert "argument -t/--threads: 'two': comma-separated integers expected" in capsys.readouterr().err


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


def md_rows(printed: str) -> list[list[str]]:
    """The cells of a markdown table's rows (its header first), as a reader of llama-bench's output splits them."""
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in printed.splitlines()
            if line.startswith("|") and not set(line) <= set("|-: ")]


def test_bench_measures_pp_tg_ttft_and_rss_in_llama_bench_s_table(tiny_gguf, tmp_path, capsys):
    """llama-bench's markdown columns; its size is the model's tensor bytes (llama_model_size), not the file's."""
    out = tmp_path / "bench.json"
    assert main(["bench", str(tiny_gguf["Q8_0"]), "-t", "1,2", "-p", "32", "-n", "8", "-r", "2",
                 "--ttft-prompt", "16", "--output-file", str(out)]) == 0
    printed = capsys.readouterr().out
    runs = json.loads(out.read_text())["runs"]
    assert [r["runs"][0]["threads"] for r in runs] == [1, 2]
    for r in runs:
        assert r["runs"][0]["pp32"]["avg_ts"] > 0 and r["runs"][0]["tg8"]["avg_ts"] > 0 and r["peak_rss_bytes"] > 0
    with Model(tiny_gguf["Q8_0"], n_ctx=64, n_threads=1) as m:
        size, n_params = m.size_bytes, m.n_params
    assert runs[0]["model_bytes"] == size != runs[0]["file_bytes"]
    table = md_rows(printed)
    assert table[0] == ["model", "size", "params", "threads", "test", "t/s"]
    assert [(r[3], r[4]) for r in table[1:]] == [("1", "pp32"), ("1", "tg8"), ("2", "pp32"), ("2", "tg8")]
    for row in table[1:]:
        assert row[:3] == ["Q8_0.gguf", f"{size / 2**20:.2f} MiB", f"{n_params / 1e6:.2f} M"]
        assert " ± " in row[5]
    assert printed.count("time to first token (16-token prompt)") == 2


def test_bench_prints_llama_bench_s_json_and_csv(tiny_gguf, capsys):
    argv = ["bench", str(tiny_gguf["Q4_K_M"]), "-t", "1", "-p", "16", "-n", "4", "-r", "2", "--ttft-prompt", "8"]
    assert main([*argv, "-o", "json"]) == 0
    recs = json.loads(capsys.readouterr().out)  # nothing but the records on stdout
    with Model(tiny_gguf["Q4_K_M"], n_ctx=64, n_threads=1) as m:
        size, n_params = m.size_bytes, m.n_params
    assert [(r["test"], r["n_prompt"], r["n_gen"], r["n_threads"]) for r in recs] == [("pp16", 16, 0, 1),
                                                                                       ("tg4", 0, 4, 1)]
    for r in recs:
        assert r["model_size"] == size and r["model_n_params"] == n_params
        assert r["file_size"] == tiny_gguf["Q4_K_M"].stat().st_size != size
        assert r["avg_ts"] == pytest.approx(np.mean(r["samples_ts"])) and len(r["samples_ts"]) == 2
        assert r["ttft_avg_s"] > 0 and r["peak_rss_bytes"] > 0
    assert main([*argv, "-o", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["test"] for r in rows] == ["pp16", "tg4"] and "samples_ts" not in rows[0]
    assert all(int(r["model_size"]) == size and float(r["avg_ts"]) > 0 for r in rows)


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
    assert main(["project", str(tiny_gguf["Q4_K_M"]), "--device", "jetson-orin-nano", "-o", "json"]) == 0
    recs = json.loads(capsys.readouterr().out)
    ref = projection(tiny_gguf["Q4_K_M"], "jetson-orin-nano")
    assert [r["backend"] for r in recs] == list(ref.backend) and [r["state"] for r in recs] == list(ref.state)
    assert [r["tg_ts"] for r in recs] == pytest.approx(list(ref.tg_ts))
    assert main(["project", str(tiny_gguf["Q4_K_M"]), "--device", "jetson-orin-nano", "-o", "csv"]) == 0
    got = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert list(got.columns) == list(ref.columns) and list(got.backend) == list(ref.backend)


# --------------------------------------------------------------------------- bad model files and options
def test_a_truncated_gguf_fails_with_one_line_naming_it(tiny_gguf, tmp_path, capsys):
    """A file cut in its tensor data (or in its header, or by one byte) passes the magic check; the CLI holds
    its size against its header's tensor infos before any work, so bench prints one line, not the profiling
    process's traceback."""
    whole = tiny_gguf["Q8_0"].read_bytes()
    cuts = {"data": len(whole) // 2, "header": 200, "last-byte": len(whole) - 1}
    for name, n in cuts.items():
        (tmp_path / f"{name}.gguf").write_bytes(whole[:n])
    proc = subprocess.run([str(EDGELLM), "bench", str(tmp_path / "data.gguf"), "-p", "8", "-n", "4", "-r", "1"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and proc.stdout == "", proc.stdout
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr == (f"edgellm bench: error: {tmp_path / 'data.gguf'}: truncated GGUF file: {cuts['data']} "
                           f"bytes, its tensor data needs {len(whole)}\n")
    messages = {name: f"truncated GGUF file: {n} bytes, its tensor data needs {len(whole)}" for name, n in cuts.items()}
    messages["header"] = "truncated or corrupt GGUF file (200 bytes): its header cannot be read"
    for name, message in messages.items():
        for argv in (["bench"], ["eval", "--tasks", "arc_easy"], ["project", "--device", "raspberry-pi-5"]):
            assert main([argv[0], str(tmp_path / f"{name}.gguf"), *argv[1:]]) == 2
            err = capsys.readouterr().err
            assert err == f"edgellm {argv[0]}: error: {tmp_path / name}.gguf: {message}\n", (name, argv, err)
    assert main(["project", str(tiny_gguf["Q8_0"]), "--device", "raspberry-pi-5"]) == 0  # the whole file passes


EVAL = ["eval", "m.gguf", "--tasks", "arc_easy"]
DEVICE_RUN = ["device", "run", "--device", "raspberry-pi-5", "--runner", "ssh", "--host", "pi@pi5"]
#: every numeric option of every subcommand, with a value it must refuse and its minimum (eval's --seed takes any)
NUMERIC = [
    (EVAL, "--limit", "0", 1), (EVAL, "--limit", "-3", 1), (EVAL, "--threads", "-1", 1), (EVAL, "--threads", "0", 1),
    (EVAL, "--shard-items", "0", 1), (EVAL, "--n-gpu-layers", "-1", 0),
    (["bench", "m.gguf"], "-t", "-1", 1), (["bench", "m.gguf"], "-t", "0", 1),
    (["bench", "m.gguf"], "-p", "0", 1), (["bench", "m.gguf"], "-n", "-8", 1), (["bench", "m.gguf"], "-r", "0", 1),
    (["bench", "m.gguf"], "--ttft-prompt", "0", 1),
    (["project", "m.gguf", "--device", "raspberry-pi-5"], "--n-ctx", "0", 1),
    (DEVICE_RUN, "--threads", "-1", 1), (DEVICE_RUN, "--port", "0", 1),
]


@pytest.mark.parametrize("argv, option, value, minimum", NUMERIC)
def test_numeric_options_reject_meaningless_values_naming_option_and_value(argv, option, value, minimum, capsys):
    """argparse refuses them (exit status 2) before anything runs or is recorded."""
    assert main([*argv, option, value]) == 2
    captured = capsys.readouterr()
    names = {"-t": "-t/--threads", "-p": "-p/--n-prompt", "-n": "-n/--n-gen", "-r": "-r/--repetitions",
             "--threads": "-t/--threads" if argv[0] == "bench" else "--threads"}
    line = f"argument {names.get(option, option)}: {value} must be at least {minimum}"
    assert captured.err.splitlines()[-1].endswith(line), captured.err
    assert captured.out == "" and "Traceback" not in captured.err


def test_bench_thread_lists_are_checked_item_by_item(capsys):
    assert main(["bench", "m.gguf", "-t", "1,0,4"]) == 2
    last = capsys.readouterr().err.splitlines()[-1]
    assert last == "edgellm bench: error: argument -t/--threads: 0 must be at least 1"


# --------------------------------------------------------------------------- eval's files and options
def test_eval_writes_a_file_only_when_asked_and_never_over_one(tiny_gguf, tmp_path, monkeypatch, capsys):
    """Without -o only the table is printed (nothing lands in the working folder); an existing -o file is kept
    unless --overwrite; a missing folder is named, not created. The refusals come before any scoring."""
    monkeypatch.chdir(tmp_path)
    model = str(tiny_gguf["Q4_K_M"])
    base = ["eval", model, "--tasks", "arc_easy", "--limit", "2", "--threads", "2"]
    assert main(base) == 0
    assert "|arc_easy|2|acc|" in capsys.readouterr().out and list(tmp_path.iterdir()) == []
    out = tmp_path / "eval.json"
    out.write_text("the first run's results\n")
    assert main([*base, "-o", str(out)]) == 2
    assert capsys.readouterr().err == f"edgellm eval: error: -o {out}: exists; give --overwrite to replace it\n"
    assert out.read_text() == "the first run's results\n"
    assert main([*base, "-o", str(out), "--overwrite"]) == 0
    assert json.loads(out.read_text())["tasks"]["arc_easy"]["n"] == 2
    capsys.readouterr()
    missing = tmp_path / "no" / "such" / "eval.json"
    assert main([*base, "-o", str(missing)]) == 2
    assert capsys.readouterr().err == (f"edgellm eval: error: -o {missing}: folder {missing.parent} does not "
                                       "exist\n")
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize("extra, message", [
    (["--log-samples"], "--log-samples writes its file beside the JSON file: give -o/--output too"),
    (["--reference-context", "--ray-address", "auto"], "--reference-context scores in this process"),
])
def test_eval_refuses_options_that_cannot_work_together(tiny_gguf, extra, message, capsys):
    assert main(["eval", str(tiny_gguf["Q4_K_M"]), "--tasks", "arc_easy", *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"edgellm eval: error: {message}") and err.count("\n") == 1, err


def test_eval_tasks_list_names_every_task_with_its_kind_and_chance(capsys):
    assert main(["eval", "--tasks", "list"]) == 0
    rows = {r[0]: r for r in md_rows(capsys.readouterr().out)[1:]}
    assert sorted(rows) == sorted(TASKS)
    assert rows["boolq"][1:4] == ["multiple_choice", "acc", "0.5000"]
    assert rows["lambada_openai"][1] == "loglikelihood" and rows["truthfulqa_gen"][1] == "generate_until"
    assert rows["winogrande"][1] == "multiple_choice (multiple input)" and rows["mmlu_5shot"][4] == "5"
    assert main(["eval", "--tasks", "arc_easy"]) == 2
    assert "no model file" in capsys.readouterr().err


def test_eval_reference_context_gives_lm_eval_s_predictions_with_a_header_and_samples(
        tiny_gguf, tiny_hf, tmp_path, capsys, data_dir):
    """--reference-context (F32 KV cache, no flash attention) on the F32 file: the same predictions as
    lm-evaluation-harness on the checkpoint of the same weights, and the same log-likelihoods, bit for bit, as
    the agreement stage's ``exact`` mode. The header names the file, its sha256 and the context; the samples
    file has one line per item with the prompt and choices the task definitions give."""
    path, out = tiny_gguf["F32"], tmp_path / "eval.json"
    names = ("arc_easy", "lambada_openai", "truthfulqa_gen")
    assert main(["eval", str(path), "--tasks", ",".join(names), "--limit", "4", "--threads", "2", "--seed", "5",
                 "--reference-context", "--log-samples", "-o", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    got = json.loads(out.read_text())
    params = load_params(ROOT / "params.yaml")
    context = scoring_context(params)
    assert got["header"] == {
        "model": str(path), "sha256": sha256_file(path), "seed": 5, "limit": 4, "threads": 2,
        "context": {"n_ctx": context["n_ctx"], "n_batch": context["n_batch"], "n_ubatch": context["n_ubatch"],
                    "n_seq_max": context["n_seq_max"], "type_k": "f32", "type_v": "f32", "flash_attn": "off",
                    "reference_context": True}}
    assert printed[0] == (f"F32.gguf (sha256 {sha256_file(path)}), seed: 5, limit: 4, n_ctx: {context['n_ctx']}, "
                          f"n_batch: {context['n_batch']}, kv cache: f32, flash attention: off, threads: 2")
    assert printed[1] == "|Tasks|n|Metric|Value|Stderr|Chance|"

    items = {n: select_items(TASKS[n], data_dir, 4, 5) for n in names}
    with Model(path, **scoring_context(params), n_threads=2, **MODES["exact"]) as m:
        exact = run_tasks(BatchScorer(m, params.evaluate.n_batch), items, params.evaluate.generation.max_new_tokens,
                          params.evaluate.generation.parallel, progress=False)
    for name, (_, res) in exact.items():
        assert got["items"][name] == json.loads(json.dumps([asdict(r) for r in res])), name

    samples = [json.loads(line) for line in (tmp_path / "eval.samples.jsonl").read_text().splitlines()]
    assert [(s["task"], s["index"]) for s in samples] == [(n, i) for n in names for i in items[n].indices]
    by_item = {(s["task"], s["index"]): s for s in samples}
    for name in names:
        task = TASKS[name]
        for i, doc, shots, r in zip(items[name].indices, items[name].docs, items[name].shots, got["items"][name]):
            s = by_item[(name, i)]
            assert s["doc_hash"] == hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
            if task.generative:
                assert s["prompt"] == task.context(doc) and s["completion"] == r["completion"]
                continue
            assert s["prompt"] == task.context(doc, shots)
            assert s["arguments"] == [list(p) for p in task.pairs(doc, shots)]
            assert s["lls"] == r["lls"] and s["gold"] == r["gold"] and s["acc"] == r["acc"]
    for s in samples:
        if s["task"] == "arc_easy":
            doc = items["arc_easy"].docs[items["arc_easy"].indices.index(s["index"])]
            assert s["choices"] == doc["choices"]["text"] and s["pred"] == int(np.argmax(s["lls"]))
        if s["task"] == "lambada_openai":
            assert s["pred"] is None and len(s["choices"]) == 1 and s["arguments"][0][1] == s["choices"][0]

    ref = lmeval.run(tiny_hf, {n: items[n].as_tuple() for n in ("arc_easy", "lambada_openai")},
                     tmp_path / "lm_eval", batch_size=4)
    for name in ("arc_easy", "lambada_openai"):
        for i in items[name].indices:
            s = by_item[(name, i)]
            assert int(np.argmax(s["lls"])) == int(np.argmax(ref[name][i].lls)), (name, i)
            assert s["acc"] == pytest.approx(float(ref[name][i].metrics["acc"])), (name, i)
            np.testing.assert_allclose(s["lls"], ref[name][i].lls, atol=1e-3, rtol=2e-5)


# --------------------------------------------------------------------------- outside a project checkout
def test_outside_a_checkout_the_package_defaults_apply(tiny_gguf, tmp_path, data_dir, monkeypatch):
    """No params.yaml around the working folder: eval and bench run with the schema's defaults (data from
    EDGELLM_DATA_DIR, else the hub); project, which needs the study's device tables, says so in one line."""
    monkeypatch.delenv("EDGELLM_DATA_DIR", raising=False)
    defaults = default_params()
    assert defaults.data.local_dir is None and params_data_dir(defaults) is None  # the hub
    env = {k: v for k, v in os.environ.items() if k != "EDGELLM_ROOT"} | {"EDGELLM_DATA_DIR": str(data_dir)}
    work = tmp_path / "elsewhere"
    work.mkdir()

    def edgellm(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(EDGELLM), *argv], capture_output=True, text=True, cwd=work, env=env)

    proc = edgellm("eval", str(tiny_gguf["Q4_K_M"]), "--tasks", "arc_easy", "--limit", "3", "-o", "eval.json")
    assert proc.returncode == 0, proc.stderr
    got = json.loads((work / "eval.json").read_text())
    assert (got["header"]["seed"], got["header"]["threads"]) == (defaults.seed, defaults.threads)
    assert got["header"]["context"]["n_ctx"] == defaults.evaluate.n_ctx
    assert got["execution"]["shard_items"] == defaults.execution.shard_items
    assert [r["index"] for r in got["items"]["arc_easy"]] == select_items(TASKS["arc_easy"], data_dir, 3,
                                                                             defaults.seed).indices
    proc = edgellm("bench", str(tiny_gguf["Q4_K_M"]), "-p", "8", "-n", "4", "-r", "1", "--ttft-prompt", "4",
                   "-o", "json")
    assert proc.returncode == 0, proc.stderr
    assert [r["n_threads"] for r in json.loads(proc.stdout)][::2] == defaults.profile.threads
    proc = edgellm("project", str(tiny_gguf["Q4_K_M"]), "--device", "raspberry-pi-5")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "run it inside the project checkout, or set EDGELLM_ROOT" in proc.stderr
