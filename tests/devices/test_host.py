"""This machine as a device (``edgellm.devices.host``): its profile, read from /proc and measured."""

from __future__ import annotations

import os

from edgellm.devices.host import host_isa, rapl_domains
from edgellm.devices.host_profile import host_device


def test_host_profile_is_read_from_the_machine():
    host = host_device(2, {"idle": 2, "load": 10, "peak": 15}, bandwidth_gbs=None)
    assert host.cpu.cores == min(2, os.cpu_count()) and host.runner == "local" and host.measured_here
    assert host.cpu.isa == host_isa()
    assert 1 < host.memory_bandwidth_gbs < 1000 and host.ram_gb > 1
    assert host.sources["memory_bandwidth_gbs"].startswith("measured:")
    assert host.sources["power_w.load"].startswith("assumed:")




def test_rapl_domains_are_readable_packages_only(tmp_path, monkeypatch):
    for name in ("intel-rapl:0", "intel-rapl:1", "intel-rapl:0:0"):  # two packages, one core sub-domain
        (tmp_path / name).mkdir()
        (tmp_path / name / "energy_uj").write_text("1\n")
    (tmp_path / "intel-rapl:2").mkdir()  # no readable counter (root-only since Linux 5.10)
    assert [p.name for p in rapl_domains(tmp_path)] == ["intel-rapl:0", "intel-rapl:1"]
    monkeypatch.setenv("EDGELLM_POWERCAP", str(tmp_path))
    assert rapl_domains() == rapl_domains(tmp_path)
