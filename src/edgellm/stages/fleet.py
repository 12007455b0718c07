"""Stage ``fleet``: every variant on every device (measured here or by a runner, else projected),
accessibility and energy per token."""

from __future__ import annotations

from pathlib import Path

from ..devices.fleet import Device
from ..devices.fleet_table import build_fleet
from ..io import read_json
from .common import context, study_variants


def run(params_path: str | Path | None = None) -> dict:
    params, lay = context(params_path)
    raw = read_json(lay.host_record)
    raw.pop("versions", None)
    return build_fleet(params, lay, Device.model_validate(raw), study_variants(lay))
