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
    if what == "type":
        _edit(root, lambda p: p["quantization"]["types"].update({"IQ4_XS": "frontier"}))
        new = {f"{k}@smollm2-135m-IQ4_XS" for k in ("quantize", "evaluate", "profile")}
    elif what == "recipe":
        _edit(root, lambda p: p["compress"]["recipes"].update({"depth-2-kd": {"prune": {"method": "depth", "layers": 2}}}))
        ck = "smollm2-135m-depth-2-kd"
        new = {f"compress@{ck}", f"convert@{ck}"} | {f"{k}@{ck}-Q4_K_M" for k in ("quantize", "evaluate", "profile")}
    else:
        _edit(root, lambda p: p["models"].update({"tiny": {"source": "local", "path": "/models/tiny"}}))
        new = {f"{k}@tiny" for k in ("models", "block_kl", "convert", "kl_reference", "agreement")}
        new |= {f"compress@tiny-{r}" for r in yaml.safe_load((ROOT / "params.yaml").read_text())["compress"]["recipes"]}
        new |= {s.replace("smollm2-135m", "tiny") for s in before if s.startswith(("quantize@", "evaluate@", "profile@",
                                                                                     "bundle@", "convert@smollm2-135m-"))}
    after = _stages(root)
    assert set(after) - set(before) == new and set(before) <= set(after)
    changed = {s for s in before if after[s] != before[s]}
    # the stages that gather every variant depend on the table; no per-variant stage of another variant changes
    assert changed <= {"report", "fleet", "validation", "judge"}, changed
