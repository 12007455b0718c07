"""Fixtures of the device tests: a bundle of the tiny model for this host."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgellm.devices import bundle
from edgellm.devices.host_profile import host_device
from edgellm.paths import project_root

PROV = {"params": {"test": True}, "versions": {}}


@pytest.fixture(scope="package")
def host_bundle(tmp_path_factory, tiny_gguf) -> Path:
    host = host_device(1, {"idle": 2, "load": 10, "peak": 15}, bandwidth_gbs=10.0)
    out = tmp_path_factory.mktemp("bundles") / "tiny-Q4_K_M" / "this-host"
    bundle.make_bundle(out, host, "tiny-Q4_K_M", tiny_gguf["Q4_K_M"], n_prompt=32, n_gen=8, reps=2,
                       provenance=PROV, root=project_root())
    return out
