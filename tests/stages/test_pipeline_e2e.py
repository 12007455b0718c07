"""`dvc repro` of a smoke study (two variants, a few items) in a temporary copy of the repository."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from edgellm.config.schema import WHERE_NOT_WHAT

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


#: the smoke study's frontier tier: the generalization candidates of the default main tier
FRONTIER_TASKS = ("arc_easy", "piqa", "lambada_openai", "sciq")
#: the second base model of the smoke study: a tiny random Gemma 3 (12 blocks, two of them global)
GEMMA = "tiny-gemma3"
GEMMA_VARIANTS = {f"{GEMMA}-F16", f"{GEMMA}-depth-kd-Q4_0"}


def _add_tiny_gemma(repo: Path, tmp: Path) -> None:
    """Build the tiny Gemma 3 checkpoint (a SentencePiece tokenizer trained on WikiText-2 beside it) and make it
    a base model of the smoke study: its reference type only, and the distilled depth recipe."""
    from tests.compress.tiny import save_tiny_gemma3
    from tests.conftest import _data_dir, _train_tokenizer

    from edgellm.eval.data import wikitext_document

    tok = tmp / "gemma-tokenizer"
    tok.mkdir()
    _train_tokenizer(wikitext_document(_data_dir())[:60_000], tok)
    save_tiny_gemma3(tmp / GEMMA, tok, layers=12, window=16)
    p = yaml.safe_load((repo / "params.yaml").read_text())
    p["models"][GEMMA] = {"source": "local", "path": str(tmp / GEMMA), "license": "Apache-2.0", "types": ["F16"]}
    (repo / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))


def _copy_repo(dst: Path) -> None:
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split("\0")
    for rel in filter(None, files):
        src = ROOT / rel
        if not src.is_file() or rel.startswith(("results/", "figures/", "paper/tables/", "paper/generated/",
                                                "metrics/", "plots/")) \
                or rel in ("dvc.lock", "paper/main.pdf"):
            continue
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst / rel)
    # results the pipeline reads but no stage makes: the devices' measurements (a runner's, or real llama-bench
    # files imported), and the variant table dvc.yaml reads (the params stage keeps it in step with params.yaml)
    shutil.copytree(ROOT / "results" / "measured", dst / "results" / "measured")
    shutil.copy2(ROOT / "results" / "pipeline.yaml", dst / "results" / "pipeline.yaml")
    os.symlink((ROOT / ".llama.cpp").resolve(), dst / ".llama.cpp")
    os.symlink((ROOT / ".llama.cpp-aarch64").resolve(), dst / ".llama.cpp-aarch64")
    os.symlink((ROOT / ".llama.cpp-aarch64-armv8a").resolve(), dst / ".llama.cpp-aarch64-armv8a")


def _smoke_params(path: Path, types: dict[str, str], distill_tokens: int = 256) -> None:
    p = yaml.safe_load(path.read_text())
    # the default study's first model (and the tiny Gemma 3 where the test added it): no other base model
    p["models"] = {m: spec for i, (m, spec) in enumerate(p["models"].items()) if i == 0 or m == GEMMA}
    # the copy reads its own data/mirror: nothing beside the repository (no ../shared) is needed
    assert p["data"]["local_dir"] == "data/mirror" and not (path.parent.parent / "shared").exists()
    p["quantization"]["types"] = types
    p["evaluate"]["perplexity"] = {"n_ctx": 128, "max_chunks": 4, "n_batch": 512}
    p["evaluate"]["n_ctx"] = 4096
    p["evaluate"]["tasks"] = {t: 3 for t in p["evaluate"]["tasks"]}
    # main: everything the reference runs but the screen's at-chance tasks; frontier: 2 of 3 items of every
    # candidate the main tier scores (on 3 items the screen keeps LAMBADA, whose chance is 0, whenever the tiny
    # sample has one right answer: which it does depends on the host's kernels)
    p["evaluate"]["tiers"] = {"main": {t: None for t in p["evaluate"]["tiers"]["main"]},
                              "frontier": {t: 2 for t in FRONTIER_TASKS}}
    p["evaluate"]["generation"] = {"max_new_tokens": 16}
    # lm-eval itself on 2 items of a choice task, a loglikelihood task, TruthfulQA MC2 and the generative task
    p["agreement"] = {"items": 2, "tasks": ["arc_easy", "lambada_openai", "truthfulqa_mc2", "truthfulqa_gen"],
                      "modes": ["exact"]}
    p["report"]["bootstrap"] = 500
    p["devices"].update(emulation_check={**p["devices"]["emulation_check"], "n_ctx": 32, "control_n_ctx": 16},
                        repetitions=2)
    p["profile"] = {"threads": [2], "n_prompt": 32, "n_gen": 8, "repetitions": 2, "ttft_prompt": 16}
    # blocks ranked by the KL of dropping each: scored once by the block_kl stage, read by both depth recipes
    depth = {"method": "depth", "layers": 8, "importance": "kl"}
    # the tiny Gemma 3 (when the study has it) gets the distilled depth recipe only: its sliding and global
    # blocks go through pruning, the converter (which writes the pattern the pruned config holds) and runtime
    only_smollm = {"models": ["smollm2-135m"]} if GEMMA in p["models"] else {}
    p["compress"] = {"types": ["Q4_0"], "calibration": {"tokens": 512, "seq_len": 128},
                     "recipes": {"depth": {"prune": depth, "tier": "main", **only_smollm},
                                 "depth-kd": {"prune": depth, "distill": {"tokens": distill_tokens, "seq_len": 64,
                                                                          "batch_size": 2, "checkpoint_every": 1,
                                                                          "heldout_rows": 2}, "tier": "main"},
                                 # every row a multiple of 256: K-quants apply to every matrix
                                 "width": {"prune": {"method": "width", "hidden_size": 512, "num_heads": 4,
                                                     "num_kv_heads": 2, "intermediate_size": 1024,
                                                     "align": 256}, **only_smollm}},
                     # the K-aligned checkpoint also at Q2_K (frontier tier)
                     "ladder": {"recipes": ["width"], "types": ["Q2_K"]}}
    path.write_text(yaml.safe_dump(p, sort_keys=False))


def _stale(repo: Path) -> tuple[set[str], str]:
    """The stages `dvc status` finds stale, and its output for the assertion message."""
    out = _dvc(repo, "status", "--json")
    return set(json.JSONDecoder().raw_decode(out[out.index("{"):])[0]), out


def _dvc(repo: Path, *args: str, ok: bool = True) -> str:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    env.pop("EDGELLM_ROOT", None)
    proc = subprocess.run([str(BIN / "dvc"), *args], cwd=repo, check=False, capture_output=True, text=True, env=env)
    if ok:
        assert proc.returncode == 0, f"dvc {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout + proc.stderr


def _refresh(repo: Path) -> None:
    """What `make repro` does before `dvc repro`: bring results/pipeline.yaml in step with params.yaml."""
    subprocess.run([sys.executable, "-m", "edgellm.stages.params", "params.yaml", "--pipeline",
                    "results/pipeline.yaml"], cwd=repo, capture_output=True, check=False)


def _standing_for(table: dict, key: str) -> set[str]:
    """The params.yaml keys an entry of results/pipeline.yaml stands for: a model's source fields (not its types),
    a compressed checkpoint's recipe's prune and distill (not its tier or models); other entries name none. A whole
    table (``pipeline.variants``) stands for what each of its entries does."""
    _, kind, *rest = key.split(".", 2)
    if not rest:
        return set().union(*(_standing_for(table, f"{key}.{name}") for name in table["pipeline"][kind]))
    name = rest[0]
    entry = table["pipeline"][kind][name]
    if kind == "models":
        return {f"models.{name}.{field}" for field in entry["source"]}
    if kind == "compressed":
        return {f"compress.recipes.{entry['recipe']}.{part}" for part in ("prune", "distill")}
    return set()


def _declared_params(repo: Path) -> dict[str, tuple[str, set[str]]]:
    """Per stage: its command and the params.yaml keys dvc.yaml makes it depend on (resolved by DVC itself),
    directly or through the entries of results/pipeline.yaml that carry their values."""
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    table = yaml.safe_load((repo / "results" / "pipeline.yaml").read_text())
    out = {}
    with Repo(str(repo)) as r:
        for st in r.index.stages:
            deps = [d for d in st.deps if isinstance(d, ParamsDependency)]
            keys = {k for d in deps if Path(d.def_path).name == "params.yaml" for k in d.params}
            keys |= {k for d in deps if Path(d.def_path).name == "pipeline.yaml" for p in d.params
                     for k in _standing_for(table, p)}
            out[st.name] = (st.cmd, keys)
    return out


def _reads_file(repo: Path, cmd: str) -> Path | None:
    """The file where the stage run by ``cmd`` recorded the parameters it read (None: a stage that records none)."""
    words = cmd.split()
    if "edgellm.stages.notebook" in words:
        i = words.index("edgellm.stages.notebook")
        name = "-".join([words[i + 1], *(w.split("=", 1)[1] for w in words[i + 2:])])
    elif "edgellm.stages.block_kl" in words:
        name = f"block_kl-{words[words.index('edgellm.stages.block_kl') + 1]}"
    else:
        return None
    return repo / "models" / "work" / "params-reads" / f"{name}.txt"


def _under(key: str, prefix: str) -> bool:
    return key == prefix or key.startswith(prefix + ".")


#: What the smoke study writes at its peak, measured on 2026-12-07: 3.7 GB in its copy of the repository (the models,
#: hard-linked with the DVC cache) and a 0.55 GB float32 file of the bundle stage's check in the temporary directory
SMOKE_DISK = 5 * 2**30


@pytest.mark.slow
def test_smoke_study_end_to_end(tmp_path):
    import tempfile

    for where in {tmp_path, Path(tempfile.gettempdir())}:
        free = shutil.disk_usage(where).free
        assert free >= SMOKE_DISK, (f"the smoke study needs ~{SMOKE_DISK / 2**30:.0f} GiB free; {where} has "
                                    f"{free / 2**30:.1f} GiB (llama.cpp's tools fail mid-write on a full disk)")
    repo = tmp_path / "repo"
    _copy_repo(repo)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    _add_tiny_gemma(repo, tmp_path)
    _smoke_params(repo / "params.yaml", {"F16": "main", "Q4_0": "main", "Q2_K-imat": "frontier"})

    # params.yaml now has other variants than results/pipeline.yaml: the params stage rewrites it and says so
    out = _dvc(repo, "repro", ok=False)
    assert "results/pipeline.yaml lagged params.yaml" in out and "run `dvc repro` again" in out, out
    assert "Running stage 'data'" not in out, out
    _dvc(repo, "repro")

    # every stage read exactly the parameters dvc.yaml makes it depend on: each key it read is under a declared
    # key, and each declared key was read (the runner records reads; edgellm.config.base)
    checked, wrong = 0, []
    for stage, (cmd, declared) in _declared_params(repo).items():
        reads_path = _reads_file(repo, cmd)
        if reads_path is None:
            continue
        reads = set(reads_path.read_text().split()) - set(WHERE_NOT_WHAT)
        # a read of a whole entry (a model's spec, a recipe) is declared by the fields of it that the variant table
        # carries (the scoping: a model's types or a recipe's tier rerun nothing upstream of what uses them)
        undeclared = sorted(r for r in reads if not any(_under(r, d) or _under(d, r) for d in declared))
        unread = sorted(d for d in declared if not any(_under(r, d) or _under(d, r) for r in reads))
        if undeclared or unread:
            wrong.append(f"{stage}: reads {undeclared} undeclared; declares {unread} unread")
        checked += 1
    assert not wrong, "\n".join(wrong)
    assert checked > 30

    # the first stage validated the parameters; its record does not depend on their values
    assert json.loads((repo / "results" / "params.json").read_text())["valid"] is True
    df_lines = (repo / "results" / "results.csv").read_text().splitlines()
    assert len(df_lines) == 8 + len(GEMMA_VARIANTS) and df_lines[0].startswith("variant,")
    summary = json.loads((repo / "metrics" / "summary.json").read_text())
    compressed = {"smollm2-135m-depth-Q4_0", "smollm2-135m-depth-kd-Q4_0", "smollm2-135m-width-Q4_0",
                  "smollm2-135m-width-Q2_K"}
    base = {"smollm2-135m-F16", "smollm2-135m-Q4_0", "smollm2-135m-Q2_K-imat"}
    assert set(summary) == base | {"distillation_recovery"} | compressed | GEMMA_VARIANTS
    # the tier is a column; a frontier variant scores its tier's seeded subset, paired with the reference's items
    with open(repo / "results" / "results.csv", newline="") as f:
        table = {r["variant"]: r for r in csv.DictReader(f)}
    assert {v: table[v]["tier"] for v in ("smollm2-135m-F16", "smollm2-135m-Q4_0", "smollm2-135m-Q2_K-imat",
                                          "smollm2-135m-width-Q2_K")} == {
        "smollm2-135m-F16": "reference", "smollm2-135m-Q4_0": "main", "smollm2-135m-Q2_K-imat": "frontier",
        "smollm2-135m-width-Q2_K": "frontier"}
    ev = json.loads((repo / "results" / "eval" / "smollm2-135m-Q2_K-imat.json").read_text())
    assert ev["tier_tasks"] == {t: 2 for t in FRONTIER_TASKS} and set(ev["tasks"]) == set(FRONTIER_TASKS)
    ref_items = json.loads((repo / "results" / "items" / "smollm2-135m-F16.json").read_text())
    sub_items = json.loads((repo / "results" / "items" / "smollm2-135m-Q2_K-imat.json").read_text())
    assert {r["index"] for r in sub_items["piqa"]} < {r["index"] for r in ref_items["piqa"]}
    assert json.loads((repo / "results" / "gguf" / "smollm2-135m-Q2_K-imat.json").read_text())["imatrix"] is True
    assert json.loads((repo / "results" / "gguf" / "smollm2-135m-Q4_0.json").read_text())["imatrix"] is False
    f16, q4 = summary["smollm2-135m-F16"], summary["smollm2-135m-Q4_0"]
    assert f16["kld"] == 0 and q4["kld"] > 0 and q4["file_mb"] < f16["file_mb"] and q4["bpw"] < f16["bpw"]
    assert 1 < f16["ppl"] < 1000 and q4["tg_ts"] > 0
    # the projection held against the published measurements, with this smoke study's host efficiencies
    with open(repo / "results" / "devices" / "validation_points.csv", newline="") as f:
        points = list(csv.DictReader(f))
    assert {p["origin"] for p in points} == {"published table", "llama-bench JSON (results/measured)"}
    assert all(float(p["projected_host"]) > 0 for p in points)
    with open(repo / "results" / "devices" / "device_verdicts.csv", newline="") as f:
        verdict = list(csv.DictReader(f))
    assert len(verdict) == (7 + len(GEMMA_VARIANTS)) * 5 and {v["state"] for v in verdict} <= {"accessible", "borderline", "not accessible"}
    for name in ("quant_ladder", "speed_vs_bpw", "hallucination_main"):  # once per base model
        for m in ("smollm2-135m", GEMMA):
            assert (repo / "figures" / m / f"{name}.png").stat().st_size > 10_000, (m, name)
            assert (repo / "figures" / m / f"{name}.pdf").is_file()
            assert json.loads((repo / "figures" / m / f"{name}.json").read_text())["min_font_pt"] >= 6
    # the pruned models are genuinely smaller than the base at the same type (their speed is the
    # benchmarks' business: a timed assertion fails on a loaded machine)
    for v in ("smollm2-135m-depth-Q4_0", "smollm2-135m-width-Q4_0"):
        assert summary[v]["param_reduction"] > 0.2, v
        assert summary[v]["file_mb"] < 0.85 * q4["file_mb"], v
        assert summary[v]["tg_ts"] > 0, v
        assert summary[v]["kld"] > q4["kld"], v
    # both depth recipes dropped the 8 cheapest blocks of the one block_kl record
    block_kl = json.loads((repo / "results" / "block_kl" / "smollm2-135m.json").read_text())
    assert len(block_kl["scores"]) == 30 and min(block_kl["scores"]) > 0
    cheapest8 = sorted(sorted(range(30), key=lambda i: block_kl["scores"][i])[:8])
    for r in ("depth", "depth-kd"):
        prune = json.loads((repo / "results" / "models" / f"smollm2-135m-{r}.json").read_text())["prune"]
        assert prune["scores"] == block_kl["scores"] and prune["removed"] == cheapest8, r
    rec = summary["distillation_recovery"]["smollm2-135m-depth-kd-Q4_0"]
    assert rec["heldout_kl_before"] > rec["heldout_kl_after"] > 0 and rec["kl_recovered_share"] > 0
    assert (repo / "plots" / "distill" / "smollm2-135m-depth-kd.csv").read_text().startswith("step,tokens,")
    width = json.loads((repo / "results" / "gguf" / "smollm2-135m-width-Q4_0.json").read_text())
    assert width["kquant_eligible_share"] > record_share(repo, "smollm2-135m-Q4_0")
    for name in ("pareto_size", "distillation_recovery"):
        assert (repo / "figures" / "smollm2-135m" / f"{name}.png").stat().st_size > 10_000
    assert "lineage" in (repo / "results" / "results.csv").read_text().splitlines()[0]
    for name in ("quality", "resources", "tensor_types", "compression"):
        assert "\\begin{tabular}" in (repo / "paper" / "tables" / f"{name}.tex").read_text()
    # generated answers, judged; every headline metric with an interval and a paired test
    judged = json.loads((repo / "results" / "hallucination.json").read_text())
    # frontier-tier variants generate nothing
    assert set(judged["variants"]) == set(summary) - {"distillation_recovery", "smollm2-135m-Q2_K-imat",
                                                      "smollm2-135m-width-Q4_0", "smollm2-135m-width-Q2_K"}
    gen = judged["variants"]["smollm2-135m-Q4_0"]["truthfulqa_gen"]
    assert gen["n"] == 3 and {"completion", "answer", "halluc_rougeL", "halluc_embed"} <= set(gen["items"][0])
    for v, m in summary.items():
        if v in judged["variants"]:
            # the tiny random Gemma 3 is above chance on no task at 3 items: it has no generalization accuracy
            assert m["gen_acc"] is None if v in GEMMA_VARIANTS else \
                m["gen_acc_ci_low"] <= m["gen_acc"] <= m["gen_acc_ci_high"], v
            assert 0 <= m["halluc_gen_embed"] <= 1 and 0 <= m["halluc_gen_rougeL"] <= 1, v
    comp = (repo / "results" / "comparisons.csv").read_text().splitlines()
    assert comp[0].startswith("variant,reference,metric,")
    assert any(line.startswith("smollm2-135m-Q4_0,smollm2-135m-F16,gen_acc,") for line in comp)
    assert any(line.startswith("smollm2-135m-depth-Q4_0,smollm2-135m-Q4_0,halluc_gen_embed,") for line in comp)
    assert (repo / "figures" / "smollm2-135m" / "quality_significance.png").stat().st_size > 10_000
    assert "\\dagger" in (repo / "paper" / "tables" / "hallucination.tex").read_text()
    executed = sorted(p.name for p in (repo / "results" / "notebooks").glob("*.ipynb"))
    assert "05_evaluate-smollm2-135m-Q4_0.ipynb" in executed and "07_report.ipynb" in executed
    assert "05b_judge.ipynb" in executed and "05c_agreement-smollm2-135m.ipynb" in executed
    # committed as notebooks: no run times, the report's figures linked, not embedded
    report_nb = (repo / "results" / "notebooks" / "07_report.ipynb").read_text()
    assert "](../../figures/" in report_nb and "papermill" not in report_nb and "image/png" not in report_nb
    nb = json.loads((repo / "results" / "notebooks" / "05_evaluate-smollm2-135m-Q4_0.ipynb").read_text())
    assert nb["metadata"]["parameters"] == {"variant": "smollm2-135m-Q4_0"} and nb["cells"][0]["id"] == "cell-0"
    # lm-eval itself agrees with the project on the F32 file, in the F32 context
    ag = json.loads((repo / "results" / "agreement" / "smollm2-135m.json").read_text())
    tasks = ag["runs"]["exact"]["tasks"]
    assert set(tasks) == {"arc_easy", "lambada_openai", "truthfulqa_mc2", "truthfulqa_gen"}
    assert all(tasks[t]["same_prediction"] == 1.0 for t in ("arc_easy", "lambada_openai", "truthfulqa_mc2")), tasks
    assert tasks["truthfulqa_gen"]["n"] == 2 and ag["max_new_tokens"] == 16
    record = json.loads((repo / "results" / "gguf" / "smollm2-135m-Q4_0.json").read_text())
    assert "Q4_0" in record["tensor_types"] and record["tensors"]
    # the tiny Gemma 3: depth pruning says which global blocks survive, the file carries the kept blocks' pattern
    # (llama.cpp's default rule would misplace them), and lm-eval agrees with the project on it as on SmolLM2
    import gguf

    prune = json.loads((repo / "results" / "models" / f"{GEMMA}-depth-kd.json").read_text())["prune"]
    assert len(prune["kept_layer_types"]) == 4 and set(prune["kept_global_layers"]) <= {5, 11}
    field = gguf.GGUFReader(repo / "models" / "gguf" / f"{GEMMA}-depth-kd" / "F32.gguf").fields[
        "gemma3.attention.sliding_window_pattern"]
    assert list(field.contents()) == [t == "sliding_attention" for t in prune["kept_layer_types"]]
    tasks = json.loads((repo / "results" / "agreement" / f"{GEMMA}.json").read_text())["runs"]["exact"]["tasks"]
    assert all(tasks[t]["same_prediction"] == 1.0 for t in ("arc_easy", "lambada_openai", "truthfulqa_mc2")), tasks

    # devices: bundles with manifests, the aarch64 build checked under qemu, measured and projected speeds
    for v in ("smollm2-135m-Q4_0", "smollm2-135m-depth-Q4_0"):
        b = json.loads((repo / "results" / "bundles" / f"{v}.json").read_text())
        assert {"this-host", "raspberry-pi-5", "jetson-orin-nano", "pixel-8"} <= set(b["bundles"]), v
        assert "iphone-15-pro" not in b["bundles"]
        if "depth" in v:  # a compressed checkpoint: its type's kernels are checked on the base model's file
            assert b["emulation_check"] is None and "base model's file" in b["skipped"], b
            continue
        c = b["emulation_check"]
        assert c["ppl_host"] > 1 and c["ppl_aarch64"] > 1 and c["control_f32"]["ok"] and c["ok"], c
        assert c["same_ppl"] or c["kld"] <= c["kld_tolerance"], c
        man = json.loads((repo / "bundles" / v / "raspberry-pi-5" / "manifest.json").read_text())
        assert man["isa"] == "aarch64" and man["build"] == "aarch64" and len(man["files"]) == 5
        # the Pi Zero 2 W (Cortex-A53) ships the plain Armv8-A build, checked with qemu emulating that CPU
        assert b["bundles"]["raspberry-pi-zero-2w"]["build"] == "aarch64-armv8a"
        z = b["emulation_check_armv8a"]
        assert z["qemu_cpu"] == "cortex-a53" and z["ok"] and z["control_f32"]["ok"], z
    with open(repo / "results" / "fleet.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == (7 + len(GEMMA_VARIANTS)) * 6  # variants x (this host + 5 fleet devices)
    # a frontier variant is not deployed: no bundle stage, no record
    assert not (repo / "results" / "bundles" / "smollm2-135m-width-Q4_0.json").exists()
    for r in rows:
        measured = r["device"] == "this-host"
        assert r["measured"] == str(measured) and r["speed_source"].startswith("measured" if measured else "projected")
        assert r["energy_source"].startswith("estimated")
    acc = (repo / "results" / "accessibility.csv").read_text().splitlines()
    assert acc[0].startswith("variant,fleet_share") and len(acc) == 8 + len(GEMMA_VARIANTS)
    for name in ("energy_per_token",):
        assert (repo / "figures" / f"{name}.png").stat().st_size > 10_000
    for name in ("devices", "accessibility", "bundles"):
        assert "\\begin{tabular}" in (repo / "paper" / "tables" / f"{name}.tex").read_text()
    # the paper: built from the pipeline's files, every macro and reference defined
    from edgellm.report.paper import check_log

    info = check_log(repo / "paper" / "main.log")
    assert 8 <= info["pages"] <= 30, info
    pdf = (repo / "paper" / "main.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and len(pdf) > 100_000
    numbers = (repo / "paper" / "generated" / "numbers.tex").read_text()
    assert "\\newcommand{\\refVariant}{smollm2-135m-F16}" in numbers
    art = (repo / "results" / "artifacts.csv").read_text()
    assert "gguf,models/gguf/smollm2-135m/Q4_0.gguf," in art and "checkpoint,models/hf/smollm2-135m-depth/" in art
    assert "bundle,bundles/smollm2-135m-Q4_0/raspberry-pi-5/SHA256SUMS," in art

    # nothing changed: nothing runs; a forced rerun of a notebook stage writes the same bytes
    out = _dvc(repo, "repro")
    assert "Running stage" not in out, out
    fleet_nb = repo / "results" / "notebooks" / "06d_fleet.ipynb"
    before = fleet_nb.read_bytes()
    _dvc(repo, "repro", "--force", "--single-item", "fleet")
    assert fleet_nb.read_bytes() == before

    # one type changed: only that variant's stages and the report are stale (and `params`, which validates
    # every edit of params.yaml first; its record's bytes stay the same, so it makes no other stage stale)
    _smoke_params(repo / "params.yaml", {"F16": "main", "Q8_0": "main", "Q2_K-imat": "frontier"})
    _refresh(repo)
    stale, out = _stale(repo)
    # (and the stages that gather every variant: they depend on the variant table)
    gather = {"report", "fleet", "validation", "judge"}
    # (a main-tier type of a base model also gets its KV-cache measurement)
    assert stale == {"params", "quantize@smollm2-135m-Q8_0", "evaluate@smollm2-135m-Q8_0",
                     "profile@smollm2-135m-Q8_0", "bundle@smollm2-135m-Q8_0", "kv_cache@smollm2-135m-Q8_0"} | gather, out

    # one variant's tier changed: its stages (every record names its tier; a frontier variant has no bundle) and
    # the stages that gather every variant, nothing else
    _smoke_params(repo / "params.yaml", {"F16": "main", "Q4_0": "frontier", "Q2_K-imat": "frontier"})
    _refresh(repo)
    stale, out = _stale(repo)
    assert stale == {"params", "quantize@smollm2-135m-Q4_0", "evaluate@smollm2-135m-Q4_0",
                     "profile@smollm2-135m-Q4_0"} | gather, out

    # the frontier tier's tasks changed: only the frontier evaluations (and the report)
    _smoke_params(repo / "params.yaml", {"F16": "main", "Q4_0": "main", "Q2_K-imat": "frontier"})
    _refresh(repo)
    p = yaml.safe_load((repo / "params.yaml").read_text())
    p["evaluate"]["tiers"]["frontier"]["piqa"] = 1
    (repo / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    stale, out = _stale(repo)
    assert stale == {"params", "evaluate@smollm2-135m-Q2_K-imat", "evaluate@smollm2-135m-width-Q4_0",
                     "evaluate@smollm2-135m-width-Q2_K"}, out

    # one accessibility parameter changed: the fleet table, the banded verdicts, the report (and the paper) only
    _smoke_params(repo / "params.yaml", {"F16": "main", "Q4_0": "main", "Q2_K-imat": "frontier"})
    p = yaml.safe_load((repo / "params.yaml").read_text())
    min_tg_ts, p["devices"]["min_tg_ts"] = p["devices"]["min_tg_ts"], 25.0
    (repo / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    stale, out = _stale(repo)
    assert stale == {"params", "fleet", "verdicts", "report"}, out
    p["devices"]["min_tg_ts"] = min_tg_ts
    (repo / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))

    # one distillation budget changed: only that checkpoint (and, through its files, its variants), the stages
    # that read the recipe's tier (its variant's evaluate and bundle) and the report are stale; the other recipes
    # sharing the same pruning are not
    _smoke_params(repo / "params.yaml", {"F16": "main", "Q4_0": "main", "Q2_K-imat": "frontier"}, distill_tokens=384)
    _refresh(repo)
    stale, out = _stale(repo)
    assert stale == {"params", "compress@smollm2-135m-depth-kd", f"compress@{GEMMA}-depth-kd", "report"}, out

    # code: an edit of src/ makes the code stage stale; once it has rewritten the fingerprints, a comment or a
    # docstring stales nothing, a new function in one stage's module only that stage (the report's: report, and
    # through its outputs the paper), and in a library module exactly the stages that import it
    _smoke_params(repo / "params.yaml", {"F16": "main", "Q4_0": "main", "Q2_K-imat": "frontier"})
    _refresh(repo)
    assert _stale(repo)[0] == set()
    evaluations = {f"evaluate@smollm2-135m-{v}" for v in ("F16", "Q4_0", "Q2_K-imat", "width-Q2_K", "depth-Q4_0",
                                                           "depth-kd-Q4_0", "width-Q4_0")}
    reworded = lambda text: text.replace('"""', '"""A reworded docstring.\n\n', 1) + "\n# a comment\n"
    added = lambda text: text + "\n\ndef _added():\n    return 1\n"
    for module, edit, expected in (
            ("paths.py", reworded, set()),
            ("stages/report.py", added, {"report"}),
            ("eval/scoring.py", added, evaluations | {f"evaluate@{v}" for v in GEMMA_VARIANTS}
             | {"agreement@smollm2-135m", f"agreement@{GEMMA}"})):
        path = repo / "src" / "edgellm" / module
        original = path.read_text()
        path.write_text(edit(original))
        assert _stale(repo)[0] == {"code"}
        _dvc(repo, "repro", "--single-item", "code")
        stale, out = _stale(repo)
        assert stale == expected, (module, out)
        path.write_text(original)
        _dvc(repo, "repro", "--single-item", "code")

    # the execution backend: DVC stays the bookkeeper (switching to Ray makes only `params`, which validates every
    # edit, stale), and a smoke variant's evaluation through Ray (a local instance the stage starts) gives the
    # same items, bit for bit (tests/eval/test_shards.py runs shards on a two-node cluster started with `ray start`)
    p = yaml.safe_load((repo / "params.yaml").read_text())
    p["execution"]["backend"] = "ray"
    (repo / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    assert _stale(repo)[0] == {"params"}
    items = repo / "results" / "items" / "smollm2-135m-Q4_0.json"
    before = items.read_bytes()
    _dvc(repo, "repro", "--force", "--single-item", "evaluate@smollm2-135m-Q4_0")
    assert items.read_bytes() == before
    assert "shards on 1 Ray workers" in (repo / "results" / "notebooks" / "05_evaluate-smollm2-135m-Q4_0.ipynb").read_text()


def record_share(repo: Path, variant: str) -> float:
    return json.loads((repo / "results" / "gguf" / f"{variant}.json").read_text())["kquant_eligible_share"]
