"""Stage ``validation``: the device projection held against published llama.cpp measurements on real devices
(:mod:`edgellm.devices.validation`), and the real llama-bench files imported under ``results/measured/``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..devices import validation
from ..devices.fleet import available, load_fleet
from ..devices.published import from_measured, load_archs, load_power, load_speeds
from ..devices.runners import PUBLISHED_ORIGIN
from ..io import read_json, write_csv
from ..records import FleetSummary
from .common import context, study_variants


def measured_imports(measured_dir: Path) -> list[dict]:
    """The records a published llama-bench file became (``--import``), in a fixed order."""
    recs = [read_json(p) for p in sorted(measured_dir.glob("*/*.json"))]
    return [r for r in recs if r.get("origin") == PUBLISHED_ORIGIN]


def run(params_path: str | Path | None = None) -> dict:
    params, lay = context(params_path)
    archs = load_archs(lay.published_models)
    devices = {d.name: d for d in load_fleet(available())}
    # the fleet's efficiencies: this host's, per GGUF type, measured on the reference base model's ladder
    variants = study_variants(lay)
    base = variants[0].base
    cal = FleetSummary.load(lay.fleet_summary).calibration
    host_eta = {v.qtype: (cal[v.name]["eta_bw"], cal[v.name]["eta_c"]) for v in variants
                if v.recipe is None and v.base == base and v.name in cal and "-imat" not in v.qtype}
    table = validation.points(load_speeds(lay.published_speeds), archs, devices, "published table")
    imported = [from_measured(r) for r in measured_imports(lay.measured_dir)]
    if imported:
        table = pd.concat([table, validation.points(imported, archs, devices, "llama-bench JSON (results/measured)")],
                          ignore_index=True)
    table = validation.leave_one_device_out(validation.leave_one_model_out(validation.host_carried(table, host_eta)))
    summary = validation.summary(table)
    write_csv(validation.size_summary(table, params.report.projection_factor), lay.validation_table.with_name(
        "validation_sizes.csv"))
    power = validation.power_bands(load_power(lay.published_power), devices)
    write_csv(table, lay.validation_points)
    write_csv(summary, lay.validation_table)
    write_csv(power, lay.power_bands)
    return {"points": table, "summary": summary, "power": power, "host_eta": host_eta}
