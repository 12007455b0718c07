"""Calibrated, banded accessibility verdicts (``edgellm.devices.verdicts``, stage ``verdicts``)."""

from __future__ import annotations

import math
import os
import shutil

import pandas as pd
import pytest

from edgellm.config import load_params
from edgellm.devices import latency, verdicts
from edgellm.devices.fleet import load_fleet
from edgellm.devices.validation import STATES, kind, lodo_bands
from edgellm.paths import Layout, project_root
from edgellm.records import FleetSummary

LAY = Layout(project_root())
PARAMS = load_params(LAY.params)
DEVICES = load_fleet(PARAMS.devices.fleet)
FLEET = pd.read_csv(LAY.fleet_table)
CAL = FleetSummary.load(LAY.fleet_summary).calibration
POINTS = pd.read_csv(LAY.validation_points)
SUMMARY = pd.read_csv(LAY.validation_table)
POWER = pd.read_csv(LAY.power_bands)
MIN_TG = PARAMS.devices.min_tg_ts


def _rows(fleet: pd.DataFrame = FLEET) -> pd.DataFrame:
    return verdicts.verdict_rows(fleet, CAL, DEVICES, POINTS, SUMMARY, POWER, MIN_TG)


def test_every_variant_has_a_banded_verdict_on_every_backend():
    rows = _rows()
    want = {(v, d.name, b) for v in FLEET.variant.unique() for d in DEVICES for b in d.backend_names}
    assert set(zip(rows.variant, rows.device, rows.backend)) == want
    assert set(rows.state) <= set(STATES)
    assert (rows.tg_band >= 1).all() and (rows.tg_low <= rows.tg_ts).all() and (rows.tg_ts <= rows.tg_high).all()
    assert (rows.mj_per_token_low <= rows.mj_per_token_high).all()


def test_a_device_with_published_points_uses_its_own_efficiency():
    rows = _rows()
    own = POINTS[POINTS.comparable & (POINTS.device == "raspberry-pi-5") & (POINTS.backend == "cpu")
                 & (POINTS.test == "tg")]
    r = rows[(rows.device == "raspberry-pi-5") & (rows.backend == "cpu")].iloc[0]
    cal = CAL[r.variant]
    tg_bytes = cal["bytes_per_token"] + cal["kv_bytes_per_pos"] * cal["n_gen"] / 2
    assert r.tg_ts == pytest.approx(latency.fit_tg(own).ts(tg_bytes, cal["n_layer"], 17.1))
    assert "this device's cpu" in r.speed_source and r.own_data


def test_a_device_without_points_says_so_and_carries_the_lodo_band():
    rows = _rows()
    nodata = rows[~rows.own_data & ~rows.measured]
    assert len(nodata) and nodata.speed_source.str.contains("no own data").all()
    lodo = lodo_bands(POINTS)
    for r in nodata.drop_duplicates(["device", "backend"]).itertuples():
        w = lodo.get((r.backend, "tg"), lodo.get((kind(r.backend), "tg")))
        assert r.tg_band >= math.exp(w) - 1e-9
    # the devices the study has no published point of its own for: the phones' CPUs, the Jetson's CPU
    assert {"iphone-15-pro", "pixel-8", "jetson-orin-nano"} <= set(nodata[nodata.backend == "cpu"].device)


def test_a_borrowed_efficiency_never_beats_the_fastest_published_run():
    rows = _rows()
    cmp = POINTS[POINTS.comparable & (POINTS.backend == "cpu") & (POINTS.test == "tg")]
    fastest = (cmp.efficiency * cmp.bw_gbs).max()
    borrowed = rows[(rows.backend == "cpu") & ~rows.speed_source.str.contains("this device's cpu")]
    assert len(borrowed) and (borrowed.effective_gbs <= fastest + 1e-9).all()
    assert "jetson-orin-nano" in set(borrowed.device)      # six A78AE cores on 68 GB/s: no published CPU run


def test_a_measured_number_is_kept_with_no_band():
    fleet = FLEET.copy()
    i = fleet.index[(fleet.device == "raspberry-pi-5")][0]
    fleet.loc[i, ["measured", "tg_ts", "pp_ts", "speed_source"]] = [True, 3.0, 7.0, "measured (ssh runner, 4 threads)"]
    rows = _rows(fleet)
    r = rows[(rows.variant == fleet.loc[i, "variant"]) & (rows.device == "raspberry-pi-5") & (rows.backend == "cpu")]
    assert r.iloc[0][["tg_ts", "tg_band", "measured"]].tolist() == [3.0, 1.0, True]
    assert r.iloc[0].state == ("accessible" if 3.0 >= MIN_TG else "not accessible")


def test_the_verdict_is_the_best_backend_the_bundle_runs():
    rows = _rows()
    best = verdicts.device_verdicts(rows)
    assert (best.usable).all() and set(best.backend) == {"cpu"}          # no bundle runs a GPU yet
    assert len(best) == FLEET.variant.nunique() * len(DEVICES)
    jet = rows[(rows.device == "jetson-orin-nano")].copy()
    jet.loc[jet.backend == "cuda", "usable"] = True                      # a CUDA bundle would be chosen where faster
    b = verdicts.device_verdicts(jet).set_index("variant")
    faster = jet[jet.backend == "cuda"].set_index("variant").tg_ts > jet[jet.backend == "cpu"].set_index("variant").tg_ts
    same_state = (jet[jet.backend == "cuda"].set_index("variant").state
                  == jet[jet.backend == "cpu"].set_index("variant").state)
    assert (b.loc[faster & same_state, "backend"] == "cuda").all()


def test_published_power_is_used_where_a_source_measured_it():
    rows = _rows()
    pi = rows[rows.device == "raspberry-pi-5"]
    assert pi.power_source.str.startswith("published (wall").all()
    wall = POWER[(POWER.device == "raspberry-pi-5") & (POWER.scope == "wall")].iloc[0]
    assert (pi.power_w_low == wall.watts_low).all() and (pi.power_w_high == wall.watts_high).all()
    assert pi.mj_per_token_low.tolist() == pytest.approx((1000 * wall.watts_low / pi.tg_high).tolist())
    zero = rows[rows.device == "raspberry-pi-zero-2w"]
    assert zero.power_source.str.startswith("estimated").all()


def test_shares_count_the_lower_end():
    best = verdicts.device_verdicts(_rows())
    shares = verdicts.fleet_shares(best).set_index("variant")
    for v, g in best.groupby("variant"):
        assert shares.loc[v, "accessible_share"] == pytest.approx((g.state == "accessible").mean())


def test_stage_reproduces_the_committed_tables(tmp_path, monkeypatch):
    from edgellm.stages import verdicts as stage

    root = tmp_path / "study"
    for rel in ("params.yaml", "dvc.yaml", "results/fleet.json", "results/fleet.csv",
                "results/devices/validation_points.csv", "results/devices/validation.csv",
                "results/devices/power_bands.csv"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(LAY.root / rel, root / rel)
    monkeypatch.setitem(os.environ, "EDGELLM_ROOT", str(root))
    stage.run(root / "params.yaml")
    new = Layout(root)
    for path in ("verdicts", "device_verdicts", "verdict_shares"):
        assert getattr(new, path).read_text() == getattr(LAY, path).read_text(), path
