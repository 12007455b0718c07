"""Stage ``verdicts``: the fleet's variants projected with the published calibration, with bands, per backend,
and three-state accessibility (:mod:`edgellm.devices.verdicts`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..devices import context_access, verdicts
from ..devices.fleet import load_fleet
from ..io import write_csv
from ..records import FleetSummary
from .common import context


def run(params_path: str | Path | None = None) -> dict:
    params, lay = context(params_path)
    dp = params.devices
    fleet = pd.read_csv(lay.fleet_table)
    calibration = FleetSummary.load(lay.fleet_summary).calibration
    rows = verdicts.verdict_rows(fleet, calibration, load_fleet(dp.fleet), pd.read_csv(lay.validation_points),
                                 pd.read_csv(lay.validation_table), pd.read_csv(lay.power_bands), dp.min_tg_ts)
    best = verdicts.device_verdicts(rows)
    shares = verdicts.fleet_shares(best)
    ctx = context_access.context_rows(best, calibration, load_fleet(dp.fleet), pd.read_csv(lay.validation_points),
                                      dp.memory_share, dp.min_tg_ts)
    ctx_shares = context_access.context_shares(ctx)
    write_csv(rows, lay.verdicts)
    write_csv(best, lay.device_verdicts)
    write_csv(shares, lay.verdict_shares)
    write_csv(ctx, lay.verdicts.with_name("context_verdicts.csv"))
    write_csv(ctx_shares, lay.verdicts.with_name("context_shares.csv"))
    return {"rows": rows, "best": best, "shares": shares, "min_tg_ts": dp.min_tg_ts, "context": ctx,
            "context_shares": ctx_shares}
