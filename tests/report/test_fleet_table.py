"""The fleet table from the committed records: every variant on this host (measured) and on every fleet device."""

from __future__ import annotations

import pandas as pd

from edgellm.devices.fleet import HOST, Device, load_fleet
from edgellm.devices.fleet_table import build_fleet
from edgellm.records import FleetSummary


def test_build_fleet(study):
    params, lay = study
    host = Device.model_validate(FleetSummary.load(lay.fleet_summary).host)
    out = build_fleet(params, lay, host, params.all_variants())
    rows = pd.read_csv(lay.fleet_table)
    variants = [v.name for v in params.all_variants()]
    fleet = load_fleet(params.devices.fleet)
    assert len(rows) == len(variants) * (1 + len(fleet))
    assert set(rows.device) == {HOST, *(d.name for d in fleet)}
    here = rows[rows.device == HOST]
    assert here.measured.all() and (here.tg_ts > 0).all()
    others = rows[rows.device != HOST]
    assert not others.measured.any()  # results/measured holds no device measurements
    assert (others.tg_ts == others.tg_ts_projected).all()
    acc = pd.read_csv(lay.accessibility_table)
    assert list(acc.variant) == variants and acc.fleet_share.between(0, 1).all()
    assert FleetSummary.load(lay.fleet_summary).dump()["fleet_share"] == out["fleet_share"]
