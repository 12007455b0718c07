"""The device speed model for small models (``edgellm.devices.latency``): a fixed cost per layer beside the
bandwidth roof, prompt efficiency per weight family, and predictions held out by model and by device."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from edgellm.devices import latency, validation
from edgellm.devices.fleet import available, load_fleet
from edgellm.devices.published import load_archs, load_speeds
from edgellm.paths import Layout, project_root

LAY = Layout(project_root())
DEVICES = {d.name: d for d in load_fleet(available())}
ARCHS = load_archs(LAY.published_models)
POINTS = validation.points(load_speeds(LAY.published_speeds), ARCHS, DEVICES)
HOST_ETA = {"Q4_0": (0.5, 0.6), "Q4_K_M": (0.45, 0.5), "Q8_0": (0.55, 0.55), "F16": (0.6, 0.7)}


def _held(df: pd.DataFrame = POINTS) -> pd.DataFrame:
    return validation.leave_one_device_out(validation.leave_one_model_out(validation.host_carried(df, HOST_ETA)))


def _synthetic(tau: float, eta: float, device: str = "jetson-orin-nano-super") -> pd.DataFrame:
    """The device's real tg points (real shapes and roofs) with speeds the model itself gives."""
    g = POINTS[(POINTS.device == device) & (POINTS.test == "tg") & POINTS.comparable].copy()
    g["measured_ts"] = 1 / (g.n_layer * tau + g.work / (eta * g.bw_gbs * 1e9))
    return g


def test_the_fit_recovers_a_fixed_cost_and_an_efficiency():
    g = _synthetic(tau=1.5e-4, eta=0.55)
    m = latency.fit_tg(g)
    assert m.tau_fitted and m.tau_s == pytest.approx(1.5e-4, rel=1e-6) and m.eta == pytest.approx(0.55, rel=1e-6)
    # no fixed cost in the data: none is fitted
    m0 = latency.fit_tg(_synthetic(tau=0.0, eta=0.4))
    assert m0.tau_s == pytest.approx(0.0, abs=1e-9) and m0.eta == pytest.approx(0.4, rel=1e-6)


def test_a_fixed_cost_is_what_makes_a_small_model_slower_than_its_bytes_say():
    """With a fixed cost, the share of the bandwidth a model reaches falls with its size, as published small-model
    runs show: a plain median efficiency over-predicts the smallest model."""
    g = _synthetic(tau=1.5e-4, eta=0.55)
    small = g.loc[g.params_b.idxmin()]
    plain = float(np.median(g.efficiency)) * small.bw_gbs * 1e9 / small.work
    fitted = latency.fit_tg(g).ts(small.work, int(small.n_layer), small.bw_gbs)
    assert fitted == pytest.approx(small.measured_ts, rel=1e-6) and plain > 1.3 * small.measured_ts


def test_too_few_points_borrow_the_fixed_cost():
    g = _synthetic(tau=1.5e-4, eta=0.55).head(2)
    assert not latency.fit_tg(g).tau_fitted
    m = latency.fit_tg(g, tau_s=1.5e-4)
    assert m.tau_s == 1.5e-4 and m.eta == pytest.approx(0.55, rel=1e-6)


def test_the_prompt_head_is_paid_once_per_prompt():
    """llama-bench's pp computes logits for the last token only: on an embedding-heavy model the head's share of
    the work is small per prompt token, not 63 %."""
    arch = ARCHS["gemma-3-270m"]
    shape = arch.shape(0.5 * 2**30)
    head = arch.vocab * arch.hidden
    assert shape.head_params == head
    assert shape.pp_flops(512) == pytest.approx(shape.flops(256) - 2 * head + 2 * head / 512)
    assert shape.pp_flops(512) < 0.5 * shape.flops(256)


def test_prompt_efficiency_is_per_weight_family_where_the_data_has_both():
    pi4 = POINTS[(POINTS.device == "raspberry-pi-4") & (POINTS.test == "pp") & POINTS.comparable]
    fl, q = pi4[pi4.quant.map(latency.family) == "float"], pi4[pi4.quant.map(latency.family) == "quantized"]
    assert len(fl) >= latency.MIN_FAMILY_POINTS and len(q) >= latency.MIN_FAMILY_POINTS
    assert latency.pp_efficiency(pi4, "float") == (pytest.approx(float(np.median(fl.efficiency))), "float")
    assert latency.pp_efficiency(pi4, "quantized")[0] == pytest.approx(float(np.median(q.efficiency)))
    # the data shows the families differ on the Cortex-A72: one efficiency for both would be off
    assert latency.pp_efficiency(pi4, "float")[0] < 0.8 * latency.pp_efficiency(pi4, "quantized")[0]
    one = pi4.head(1)
    assert latency.pp_efficiency(one, "float")[1] == "all types"


@pytest.mark.parametrize("leave,col", [("model", "projected_heldout"), ("device", "projected_lodo")])
def test_a_held_out_prediction_never_sees_what_it_leaves_out(leave, col):
    df = _held()
    pick = df[(df.test == "tg") & df.comparable & df[col].notna() & (df.device == "raspberry-pi-5")].iloc[0]
    mine = (df.model == pick.model) if leave == "model" else (df.device == pick.device)
    mine &= df.backend == pick.backend
    bent = POINTS.copy()
    bent.loc[mine, "measured_ts"] *= 10
    bent.loc[mine, "efficiency"] *= 10
    again = _held(bent)
    target = mine & (df.device == pick.device)
    assert again.loc[target, col].tolist() == pytest.approx(df.loc[target, col].tolist())


def test_leave_one_device_out_predicts_from_other_devices_only():
    df = _held()
    r = df[(df.device == "raspberry-pi-4") & (df.test == "tg") & df.comparable].iloc[0]
    pool = df[df.comparable & (df.backend == "cpu") & (df.test == "tg") & (df.device != "raspberry-pi-4")]
    m = latency.fit_tg(pool, latency.backend_tau(pool))
    assert r.lodo_from == "backend" and r.projected_lodo == pytest.approx(m.ts(r.work, int(r.n_layer), r.bw_gbs))


def test_a_device_without_its_own_points_carries_at_least_the_lodo_error_of_its_backend():
    df = _held()
    s = validation.summary(df)
    lodo = validation.lodo_bands(df)
    nodata = s[s.band_source.str.startswith("no own data")]
    assert len(nodata)
    for r in nodata.itertuples():
        w = lodo.get((r.backend, r.test), lodo.get((validation.kind(r.backend), r.test)))
        assert r.band_factor >= math.exp(w) - 1e-9


def test_errors_are_reported_per_size_class():
    sizes = validation.size_summary(_held())
    assert set(sizes.size_class) <= {name for name, _ in latency.SIZE_CLASSES}
    assert {"<=0.5B", "0.5-2B"} <= set(sizes.size_class)
    enough = sizes.n_heldout >= validation.MIN_POINTS
    assert sizes[~enough].meets_target.isna().all()
    assert (sizes[enough].meets_target == (sizes[enough].heldout_median_factor <= 1.25)).all()
    assert latency.size_class(0.135) == "<=0.5B" and latency.size_class(1.1) == "0.5-2B"
    assert latency.size_class(8) == ">2B"
