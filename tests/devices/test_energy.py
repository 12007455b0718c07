"""Energy per token (``edgellm.devices.energy``): power logs of every sensor, and RAPL counters."""

from __future__ import annotations

import numpy as np
import pytest

from edgellm.devices import energy


def test_energy_from_power_logs(tmp_path):
    t = np.arange(0, 11) * 0.1 * 1e9                         # 1 s in 0.1 s steps, unix ns
    ina = tmp_path / "ina.power"                             # 5,000 mV x 2,000 mA = 10 W
    ina.write_text("".join(f"{int(x)} 5000 2000\n" for x in t))
    m = energy.measured(energy.read_samples(ina), "ina3221", tokens_per_s=20.0)
    assert m["power_w"] == pytest.approx(10.0) and m["j_per_token"] == pytest.approx(0.5)
    assert m["energy_source"] == "measured (ina3221)"
    bat = tmp_path / "bat.power"                             # 4 V x -1.5 A (discharging) = 6 W
    bat.write_text("".join(f"{int(x)} 4000000 -1500000\n" for x in t))
    assert energy.mean_power(energy.read_samples(bat), "android-battery")[0] == pytest.approx(6.0)
    # RAPL: a cumulative counter that wraps around at max_energy_range_uj; 7 W throughout
    rng = 10_000_000
    e = (np.arange(0, 11) * 700_000 + rng - 3_000_000) % rng
    rapl = tmp_path / "rapl.power"
    rapl.write_text("".join(f"{int(x)} {int(v)} {rng}\n" for x, v in zip(t, e)))
    assert energy.mean_power(energy.read_samples(rapl), "rapl")[0] == pytest.approx(7.0)
    est = energy.estimated(9.8, 49.0)
    assert est["j_per_token"] == pytest.approx(0.2) and est["energy_source"].startswith("estimated")
    bad = tmp_path / "bad.power"
    bad.write_text("123 abc 4\n")
    with pytest.raises(energy.EnergyError, match="bad.power:1"):
        energy.read_samples(bad)


def test_rapl_counter_wraps_around(tmp_path, monkeypatch):
    for i, (e, r) in enumerate([(900, 1000), (50, 10_000)]):
        d = tmp_path / f"intel-rapl:{i}"
        d.mkdir()
        (d / "energy_uj").write_text(f"{e}\n")
        (d / "max_energy_range_uj").write_text(f"{r}\n")
    (tmp_path / "intel-rapl:0:0").mkdir()  # a sub-domain (core): inside its package, never counted twice
    monkeypatch.setenv("EDGELLM_POWERCAP", str(tmp_path))
    rapl = energy.RaplCounter.open()
    assert [d.name for d in rapl.domains] == ["intel-rapl:0", "intel-rapl:1"]
    start = rapl.read()
    (tmp_path / "intel-rapl:0" / "energy_uj").write_text("100\n")   # wrapped: 900 -> 1000 = 0 -> 100
    (tmp_path / "intel-rapl:1" / "energy_uj").write_text("2050\n")
    assert rapl.joules_since(start) == pytest.approx((200 + 2000) / 1e6)
    monkeypatch.setenv("EDGELLM_POWERCAP", str(tmp_path / "none"))
    assert energy.RaplCounter.open() is None
