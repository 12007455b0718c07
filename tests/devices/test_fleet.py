"""Device profiles (``edgellm.devices.fleet``): the shipped fleet, and bad profiles named by file and key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from edgellm.config import load_params
from edgellm.devices import fleet
from edgellm.paths import PROFILES_DIR, project_root


def test_every_shipped_profile_is_valid_and_sourced():
    names = fleet.available()
    assert {"raspberry-pi-5", "jetson-orin-nano", "pixel-8", "iphone-15-pro"} <= set(names)
    in_fleet = set(load_params(project_root() / "params.yaml").devices.fleet)
    for d in fleet.load_fleet(names):
        assert set(fleet.NUMBERS) <= set(d.sources), d.name
        assert d.cpu.isa == "aarch64", d.name
        links = {k: s.startswith(("https://", "http://")) for k, s in d.sources.items()}
        if d.name in in_fleet:
            assert all(links.values()), d.name
            assert d.class_ in ("phone", "single-board-computer", "edge-gpu-board"), d.name
        else:
            # devices that only validate the projection against published speeds: every roof is linked; a power
            # figure no page gives may be an assumption, which says why (they are not in the fleet's energy)
            assert all(ok or k.startswith("power_w.") for k, ok in links.items()), d.name
            assert all(ok or d.sources[k].startswith("assumed: ") for k, ok in links.items()), d.name
        for b in d.backends:
            assert all(s.startswith("https://") for s in b.sources.values()), (d.name, b.name)
    assert fleet.load_fleet(["iphone-15-pro"])[0].bundle_build is None  # no CLI binaries on iOS
    # Cortex-A53: no dot product, so the plain Armv8-A build
    assert fleet.load_fleet(["raspberry-pi-zero-2w"])[0].bundle_build == "aarch64-armv8a"
    assert fleet.load_fleet(["raspberry-pi-5"])[0].bundle_build == "aarch64"


def _profile(tmp_path, **change) -> Path:
    raw = yaml.safe_load((PROFILES_DIR / "raspberry-pi-5.yaml").read_text())
    for key, value in change.items():
        node = raw
        *path, last = key.split("__")
        for p in path:
            node = node[p]
        if value is None:
            del node[last]
        else:
            node[last] = value
    p = tmp_path / "raspberry-pi-5.yaml"
    p.write_text(yaml.safe_dump(raw))
    return p


@pytest.mark.parametrize("change, message", [
    ({"sources__memory_bandwidth_gbs": None}, "no source for ['memory_bandwidth_gbs']"),
    ({"cpu__peak_gflops_fp32": 500.0}, "cpu.peak_gflops_fp32 is 500.0 but the clusters give 153.6"),
    ({"cpu__cores": 8}, "cpu.cores is 8 but the clusters hold 4"),
    ({"ram": 8}, "'ram': unknown key"),
    ({"power_w__idle": 30.0}, "idle <= load <= peak"),
    ({"sources__ram_gb": "the box"}, "sources must be links"),
])
def test_bad_profile_names_file_and_key(tmp_path, change, message):
    path = _profile(tmp_path, **change)
    with pytest.raises(fleet.FleetError) as e:
        fleet.load_device(path)
    assert str(path) in str(e.value) and message in str(e.value)


def test_unknown_device_in_params_is_named(tmp_path):
    from edgellm.config import ParamsError, load_params

    raw = yaml.safe_load((project_root() / "params.yaml").read_text())
    raw["devices"] = {"fleet": ["raspberry-pi-5", "commodore-64"]}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ParamsError, match=r"devices.fleet.*no device profile for \['commodore-64'\]"):
        load_params(tmp_path / "params.yaml")
