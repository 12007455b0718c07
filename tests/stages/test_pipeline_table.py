"""dvc.yaml over results/pipeline.yaml: adding a model, a type or a recipe is an edit of params.yaml alone, and
adds exactly its own stages without changing any other stage's definition (so nothing else reruns)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from edgellm.stages import params as params_stage

ROOT = Path(__file__).resolve().parents[2]


def _study(tmp: Path) -> Path:
    for name in ("params.yaml", "dvc.yaml"):
        shutil.copy2(ROOT / name, tmp / name)
    (tmp / "results").mkdir()
    shutil.copy2(ROOT / "results" / "pipeline.yaml", tmp / "results" / "pipeline.yaml")
    (tmp / ".dvc").mkdir()
    (tmp / ".dvc" / "config").write_text("[core]\n    no_scm = true\n")
    return tmp


def _stages(root: Path) -> dict[str, dict]:
    """Every stage as DVC resolves it: name -> its definition (command, deps, params, outs)."""
    Repo = pytest.importorskip("dvc.repo").Repo
    with Repo(str(root)) as repo:
        return {s.name: s.dumpd() for s in repo.index.stages}


def _edit(root: Path, edit) -> None:
    p = yaml.safe_load((root / "params.yaml").read_text())
    edit(p)
    (root / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    assert params_stage.refresh_pipeline(root / "params.yaml", root / "results" / "pipeline.yaml")


def test_the_committed_table_is_current():
    assert params_stage.refresh_pipeline(ROOT / "params.yaml", ROOT / "results" / "pipeline.yaml") == [], \
        "results/pipeline.yaml lags params.yaml: run `python -m edgellm.stages.params params.yaml --pipeline results/pipeline.yaml`"


@pytest.mark.parametrize("what", ["type", "recipe", "model"])
def test_an_edit_of_params_alone_adds_exactly_its_stages(tmp_path, what):
    root = _study(tmp_path)
    before = _stages(root)
    p = yaml.safe_load((ROOT / "params.yaml").read_text())
    bases, recipes = list(p["models"]), p["compress"]["recipes"]
    if what == "type":
        _edit(root, lambda p: p["quantization"]["types"].update({"IQ4_XS": "frontier"}))
        new = {f"{k}@{m}-IQ4_XS" for k in ("quantize", "evaluate", "profile") for m in bases
               if "types" not in p["models"][m]}
    elif what == "recipe":
        _edit(root, lambda p: p["compress"]["recipes"].update({"depth-2-kd": {"prune": {"method": "depth", "layers": 2}}}))
        new = set()
        for m in bases:
            ck = f"{m}-depth-2-kd"
            new |= {f"compress@{ck}", f"convert@{ck}"} | {f"{k}@{ck}-{t}" for k in ("quantize", "evaluate", "profile")
                                                         for t in p["compress"]["types"]}
    else:
        _edit(root, lambda p: p["models"].update({"tiny": {"source": "local", "path": "/models/tiny"}}))
        new = {f"{k}@tiny" for k in ("models", "block_kl", "convert", "kl_reference", "agreement")}
        unscoped = [r for r, spec in recipes.items() if "models" not in spec]
        new |= {f"{k}@tiny-{r}" for r in unscoped for k in ("compress", "convert")}
        variants = [f"tiny-{t}" for t in p["quantization"]["types"]] + [f"tiny-{r}-{t}" for r in unscoped
                                                                          for t in p["compress"]["types"]]
        new |= {f"{k}@{v}" for v in variants for k in ("quantize", "evaluate", "profile")}
        main = [p["evaluate"]["kl_base"]] + [t for t, tier in p["quantization"]["types"].items() if tier == "main"]
        new |= {f"kv_cache@tiny-{t}" for t in main}   # the KV-cache measurement: the base's deployed types
        new |= {f"bundle@tiny-{t}" for t in main} | {f"bundle@tiny-{r}-{t}" for r in unscoped
                                                      if recipes[r].get("tier") == "main" for t in p["compress"]["types"]}
    after = _stages(root)
    assert set(after) - set(before) == new and set(before) <= set(after)
    changed = {s for s in before if after[s] != before[s]}
    # the stages that gather every variant depend on the table; no per-variant stage of another variant changes
    assert changed <= {"report", "fleet", "validation", "judge"}, changed


def _param_values(root: Path) -> dict[str, list]:
    """Every stage's params dependencies as DVC reads them now: name -> their values (what `dvc status` compares)."""
    Repo = pytest.importorskip("dvc.repo").Repo
    ParamsDependency = pytest.importorskip("dvc.dependency.param").ParamsDependency
    with Repo(str(root)) as repo:
        return {s.name: [d.read_params() for d in s.deps if isinstance(d, ParamsDependency)] for s in repo.index.stages}


def test_scoping_recipes_and_types_to_a_new_model_reruns_no_other_stage(tmp_path):
    """A second model with its own types and its own recipe, and every other recipe scoped to the first model:
    the first model's stages keep their definitions and every parameter value they depend on (so none reruns)."""
    root = _study(tmp_path)
    before, values = _stages(root), _param_values(root)

    def edit(p):
        bases = list(p["models"])
        for spec in p["compress"]["recipes"].values():
            spec.setdefault("models", bases)   # the recipes every base got stay theirs
        p["compress"]["recipes"]["tiny-depth-1"] = {"prune": {"method": "depth", "layers": 1}, "models": ["tiny"]}
        p["models"]["tiny"] = {"source": "local", "path": "/models/tiny", "types": ["F16", "Q4_K_M"]}
        for m in bases:                          # the same types, now spelt out
            p["models"][m].setdefault("types", list(p["quantization"]["types"]))

    _edit(root, edit)
    after, new_values = _stages(root), _param_values(root)
    assert all(s.startswith(("report", "fleet", "validation", "judge")) or (after[s], new_values[s]) == (before[s], values[s])
               for s in before if "tiny" not in s)
    assert {s for s in after if "tiny" in s} >= {"models@tiny", "compress@tiny-tiny-depth-1", "evaluate@tiny-Q4_K_M"}
    assert not any(s.startswith("compress@tiny-") and not s.endswith("tiny-depth-1") for s in after)
