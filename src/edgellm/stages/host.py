"""Stage ``host``: this host as a device profile, its bandwidth measured once so that the fleet stage reruns
identically."""

from __future__ import annotations

from pathlib import Path

from ..devices.host_profile import host_device
from ..io import write_json
from ..provenance import versions
from .common import context


def run(params_path: str | Path | None = None) -> dict:
    params, lay = context(params_path)
    host = host_device(params.threads, params.devices.host_power_w.model_dump())
    record = {**host.model_dump(mode="json", by_alias=True), "versions": versions()}
    write_json(lay.host_record, record)
    return record
