"""Model sources (``edgellm.models``): a local path, a hub id through a hub-layout cache, and bad paths."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from edgellm.config import LocalModel
from edgellm.models import ModelSourceError, save_base


def test_local_checkpoint_becomes_base(tiny_hf, tmp_path):
    prov = save_base(LocalModel(source="local", path=str(tiny_hf), license="test"), tmp_path / "base", tmp_path / "p.json")
    assert (tmp_path / "base" / "model.safetensors").is_file()
    assert prov["n_params"] > 0 and prov["config"]["hidden_size"] == 256
    assert json.loads((tmp_path / "p.json").read_text())["files"]["model.safetensors"]["sha256"]


def test_hub_id_resolves_from_a_hub_layout_cache(tiny_hf, tmp_path):
    """The hub code path, offline: a cache laid out as huggingface_hub lays it out.

    Runs in a child process because huggingface_hub reads HF_HUB_CACHE/HF_HUB_OFFLINE at import.
    """
    snap = tmp_path / "hub" / "models--edgellm--tiny" / "snapshots" / ("0" * 40)
    shutil.copytree(tiny_hf, snap)
    (tmp_path / "hub" / "models--edgellm--tiny" / "refs").mkdir()
    (tmp_path / "hub" / "models--edgellm--tiny" / "refs" / "main").write_text("0" * 40)
    env = dict(os.environ, HF_HUB_CACHE=str(tmp_path / "hub"), HF_HUB_OFFLINE="1")
    code = (
        "import json, sys; from pathlib import Path; from edgellm.config import HubModel; "
        "from edgellm.models import save_base; d = Path(sys.argv[1]); "
        "print(json.dumps(save_base(HubModel(source='hub', id='edgellm/tiny'), d / 'base', d / 'p.json')))"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env, check=False, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    prov = json.loads(proc.stdout.strip().splitlines()[-1])
    assert prov["id"] == "edgellm/tiny" and prov["source"] == "hub" and prov["n_params"] > 0
    assert (tmp_path / "base" / "model.safetensors").is_file()


def test_missing_model_path_is_named(tmp_path):
    with pytest.raises(ModelSourceError, match=str(tmp_path / "nope")):
        save_base(LocalModel(source="local", path=str(tmp_path / "nope")), tmp_path / "b", tmp_path / "p.json")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelSourceError, match="no config.json"):
        save_base(LocalModel(source="local", path=str(tmp_path / "empty")), tmp_path / "b", tmp_path / "p.json")
    assert not (tmp_path / "b").exists()
