"""The projection held against published measurements (``edgellm.devices.validation``, stage ``validation``)."""

from __future__ import annotations

import math
import os
import shutil

import pandas as pd
import pytest

from edgellm.devices import latency, roofline, validation
from edgellm.devices.fleet import available, load_fleet
from edgellm.devices.published import load_archs, load_speeds
from edgellm.paths import Layout, project_root

LAY = Layout(project_root())
DEVICES = {d.name: d for d in load_fleet(available())}
ARCHS = load_archs(LAY.published_models)
SPEEDS = load_speeds(LAY.published_speeds)
HOST_ETA = {"Q4_0": (0.5, 0.6), "Q4_K_M": (0.45, 0.5), "Q8_0": (0.55, 0.55), "F16": (0.6, 0.7)}


def _table() -> pd.DataFrame:
    return validation.leave_one_device_out(validation.leave_one_model_out(
        validation.host_carried(validation.points(SPEEDS, ARCHS, DEVICES), HOST_ETA)))


def test_host_carried_projection_is_the_fleets_roofline():
    """A published point projected here gets what the fleet's roofline gives the same shape and efficiencies."""
    row = next(s for s in SPEEDS if s.quant == "Q4_0" and s.pp_ts and s.tg_ts)
    df = validation.host_carried(validation.points([row], ARCHS, DEVICES), HOST_ETA)
    shape = ARCHS[row.model].shape(row.file_bytes, row.params_b)
    cal = roofline.Efficiency(*HOST_ETA["Q4_0"], overhead_bytes=0, n_prompt=row.n_prompt, n_gen=row.n_gen)
    want = roofline.project(shape, cal, DEVICES[row.device], row.backend)
    got = df.set_index("test").projected_host
    assert got["pp"] == pytest.approx(want["pp_ts"]) and got["tg"] == pytest.approx(want["tg_ts"])


def test_a_type_the_host_did_not_measure_gets_the_median_and_says_so():
    df = validation.host_carried(validation.points(SPEEDS, ARCHS, DEVICES), HOST_ETA)
    assert (df.host_type_matched == df.quant.isin(list(HOST_ETA))).all()
    assert not df.host_type_matched.all() and df.projected_host.notna().all()


def test_a_held_out_prediction_is_the_device_model_fitted_on_its_other_models():
    """(That it never sees its own model or device: ``test_latency.py``.)"""
    df = _table()
    for _, r in df[(df.heldout_from == "device") & (df.device == "raspberry-pi-5")].iterrows():
        pool = df[df.comparable & (df.device == r.device) & (df.backend == r.backend) & (df.test == r.test)
                  & (df.model != r.model)]
        if r.test == "tg":
            want = latency.fit_tg(pool).ts(r.work, int(r.n_layer), r.bw_gbs)
        else:
            want = latency.pp_efficiency(pool, latency.family(r.quant))[0] * r.peak_gflops * 1e9 / r.work
        assert r.projected_heldout == pytest.approx(want)


def test_a_device_with_one_model_is_held_out_against_the_backend_elsewhere():
    df = _table()
    single = df.groupby(["device", "backend", "test"]).model.transform("nunique") == 1
    assert single.any()
    assert set(df[single & df.comparable].heldout_from) <= {"backend", "none"}


def test_other_metrics_are_shown_but_never_calibrate():
    df = _table()
    other = df[~df.comparable]
    assert len(other) and other.projected_host.notna().all()
    summary = validation.summary(df)
    n = df[df.comparable].groupby(["device", "backend", "test"]).size()
    assert summary.set_index(["device", "backend", "test"]).n_points.to_dict() == n.to_dict()


def test_summary_bands_and_the_25_percent_target():
    s = validation.summary(_table())
    assert (s.band_factor >= 1).all() and (s.host_worst_factor >= s.host_median_factor).all()
    own = s.n_heldout >= validation.MIN_POINTS
    assert (s[own].band_source == "own").all() and s[~own].meets_25pct.isna().all()
    assert (s[own].meets_25pct == (s[own].heldout_median_factor <= 1.25)).all()


@pytest.mark.parametrize("fits,low,high,state", [
    (True, 6.0, 9.0, "accessible"),
    (True, 5.0, 9.0, "accessible"),
    (True, 3.0, 9.0, "borderline"),
    (True, 2.0, 4.9, "not accessible"),
    (False, 20.0, 40.0, "not accessible"),
])
def test_three_accessibility_states(fits, low, high, state):
    assert validation.access_state(fits, low, high, min_tg_ts=5.0) == state


def test_band_is_symmetric_in_log():
    lo, hi = validation.band(10.0, 1.5)
    assert math.log(10 / lo) == pytest.approx(math.log(hi / 10))


def test_stage_reproduces_the_committed_tables(tmp_path, monkeypatch):
    """The stage on the committed inputs writes the committed tables (a second run changes nothing)."""
    from edgellm.stages import validation as stage

    root = tmp_path / "study"
    for rel in ("params.yaml", "dvc.yaml", "results/fleet.json", "results/pipeline.yaml"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(LAY.root / rel, root / rel)
    for rel in ("data/published", "results/measured"):
        shutil.copytree(LAY.root / rel, root / rel)
    monkeypatch.setitem(os.environ, "EDGELLM_ROOT", str(root))
    stage.run(root / "params.yaml")
    new = Layout(root)
    assert new.validation_table.read_text() == LAY.validation_table.read_text()
    assert new.validation_points.read_text() == LAY.validation_points.read_text()
    sizes = LAY.validation_table.with_name("validation_sizes.csv")
    assert new.validation_table.with_name("validation_sizes.csv").read_text() == sizes.read_text()
