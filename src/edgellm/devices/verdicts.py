"""Accessibility verdicts that respect the projection's error: calibrated speeds with bands, per backend.

The fleet table (:mod:`.fleet_table`) carries this host's efficiencies to every
device. The validation (:mod:`.validation`) shows how far off that is and gives
each device and backend an efficiency calibrated on published measurements and
a band. Here every variant is projected again on every backend of every fleet
device with that calibration:

- the efficiency of the device and backend (median over its comparable
  published points) when it has some for the test, else the median of the same
  backend on the other devices (``pooled``), said in ``speed_source``;
- tg on the bandwidth roof, pp on the compute roof, both from the variant's own
  shape (bytes and FLOP per token, recorded by the fleet stage);
- the band of the device and backend (own, or pooled over the backend kind);
- measured numbers (this host, a runner's) keep a band of 1: they are not
  projections, and the ``measured`` column keeps them apart.

A verdict has three states (:func:`.validation.access_state`): accessible when
the band's lower end meets ``devices.min_tg_ts`` and the memory fits,
borderline when the band straddles it, not accessible otherwise. A device's
verdict for a variant is that of the best backend the study's bundle can run
(``usable``: the CPU, or an accelerator whose profile says ``bundle: true``).
Energy per token carries the speed band and, where a source measured the
device's power under llama.cpp load (``data/published/power.csv``), that
power's range; otherwise the profile's load power, labelled estimated.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from .fleet import HOST, Device
from .validation import STATES, access_state, kind, pooled_bands

#: preference among meters for a device's power under load: the whole device first
SCOPES = ("wall", "rail", "package", "pmic")


def efficiencies(points: pd.DataFrame) -> dict[tuple[str, str, str], tuple[float, str, int]]:
    """(device, backend, test) -> (efficiency, where it comes from, points), for every pair with comparable points;
    (``*``, backend, test) -> the same backend pooled over all devices."""
    cmp = points[points.comparable]
    out = {}
    for (dev, backend, test), g in cmp.groupby(["device", "backend", "test"]):
        out[dev, backend, test] = (float(np.median(g.efficiency)), f"this device's {backend}", len(g))
    for (backend, test), g in cmp.groupby(["backend", "test"]):
        out["*", backend, test] = (float(np.median(g.efficiency)), f"{backend} of all devices", len(g))
    for (k, test), g in cmp.assign(kind=cmp.backend.map(kind)).groupby(["kind", "test"]):
        out["*", k, test] = (float(np.median(g.efficiency)), f"every {k} backend", len(g))
    return out


def ceilings(points: pd.DataFrame) -> dict[tuple[str, str], float]:
    """(kind, test) -> the most a published run of that backend kind reached: effective GB/s for tg, GFLOPS for pp.

    A device without published points of its own borrows an efficiency from the others; this ceiling keeps the
    borrowed number from implying a run faster than any published one (e.g. a six-core CPU on a 68 GB/s bus).
    """
    cmp = points[points.comparable]
    reached = cmp.efficiency * np.where(cmp.test == "tg", cmp.bw_gbs, cmp.peak_gflops)
    return {(k, test): float(v) for (k, test), v in reached.groupby([cmp.backend.map(kind), cmp.test]).max().items()}


def bands(points: pd.DataFrame, summary: pd.DataFrame) -> dict[tuple[str, str, str], float]:
    """(device, backend, test) -> band factor from the validation; (``*``, kind, test) -> pooled over the kind."""
    out = {(r.device, r.backend, r.test): float(r.band_factor) for r in summary.itertuples()}
    out.update({("*", k, test): math.exp(w) for (k, test), w in pooled_bands(points).items() if not math.isnan(w)})
    return out


def _lookup(table: Mapping, dev: str, backend: str, test: str):
    return table.get((dev, backend, test)) or table.get(("*", backend, test)) or table.get(("*", kind(backend), test))


def power_for(power: pd.DataFrame, dev: Device, backend: str) -> tuple[float, float, str]:
    """(low W, high W, source) of a device under load: published where measured, else the profile's estimate."""
    rows = power[(power.device == dev.name) & (power.backend == backend)]
    for scope in SCOPES:
        r = rows[rows.scope == scope]
        if len(r):
            return (float(r.watts_low.min()), float(r.watts_high.max()),
                    f"published ({scope}, {int(r.n_sources.sum())} source(s))")
    return dev.power_w.load, dev.power_w.load, "estimated (profile load power)"


def verdict_rows(fleet: pd.DataFrame, calibration: Mapping[str, dict], devices: list[Device], points: pd.DataFrame,
                 summary: pd.DataFrame, power: pd.DataFrame, min_tg_ts: float) -> pd.DataFrame:
    """Every variant on every backend of every fleet device: speed with its band, memory, state, energy."""
    eff, band, ceiling = efficiencies(points), bands(points, summary), ceilings(points)
    rows = []
    for dev in devices:
        for fr in fleet[fleet.device == dev.name].itertuples():
            cal = calibration[fr.variant]
            tg_bytes = cal["bytes_per_token"] + cal["kv_bytes_per_pos"] * cal["n_gen"] / 2
            for backend in dev.backend_names:
                usable = backend == "cpu" or any(b.name == backend and b.bundle for b in dev.backends)
                bw, gflops = dev.roofs(backend)
                row = {"variant": fr.variant, "device": dev.name, "backend": backend, "usable": usable,
                       "fits": bool(fr.fits), "mem_required_mb": fr.mem_required_mb, "mem_budget_mb": fr.mem_budget_mb}
                if backend == "cpu" and bool(fr.measured):
                    row.update(tg_ts=fr.tg_ts, pp_ts=fr.pp_ts, tg_band=1.0, pp_band=1.0, measured=True,
                               speed_source=fr.speed_source)
                else:
                    e_tg, o_tg, n_tg = _lookup(eff, dev.name, backend, "tg")
                    e_pp, o_pp, n_pp = _lookup(eff, dev.name, backend, "pp")
                    k = kind(backend)
                    bw_eff, f_eff = e_tg * bw, e_pp * gflops
                    if not o_tg.startswith("this device"):
                        bw_eff = min(bw_eff, ceiling[k, "tg"])
                        o_tg += f", at most {ceiling[k, 'tg']:.1f} GB/s (the most a published {k} run reached)"
                    if not o_pp.startswith("this device"):
                        f_eff = min(f_eff, ceiling[k, "pp"])
                    row.update(tg_ts=bw_eff * 1e9 / tg_bytes, pp_ts=f_eff * 1e9 / cal["flops_per_token"],
                               effective_gbs=bw_eff,
                               tg_band=_lookup(band, dev.name, backend, "tg"),
                               pp_band=_lookup(band, dev.name, backend, "pp"), measured=False,
                               speed_source=f"projected (tg calibrated on {n_tg} published points: {o_tg}; "
                                            f"pp on {n_pp}: {o_pp})")
                row["tg_low"], row["tg_high"] = row["tg_ts"] / row["tg_band"], row["tg_ts"] * row["tg_band"]
                row["state"] = access_state(row["fits"], row["tg_low"], row["tg_high"], min_tg_ts)
                w_lo, w_hi, src = power_for(power, dev, backend)
                row.update(power_w_low=w_lo, power_w_high=w_hi, power_source=src,
                           mj_per_token_low=1000 * w_lo / row["tg_high"], mj_per_token_high=1000 * w_hi / row["tg_low"])
                rows.append(row)
    return pd.DataFrame(rows)


def device_verdicts(rows: pd.DataFrame) -> pd.DataFrame:
    """Per variant and fleet device: the verdict of the best backend the bundle can run, and which one."""
    order = {s: i for i, s in enumerate(STATES)}
    usable = rows[rows.usable & (rows.device != HOST)].copy()
    usable["rank"] = usable.state.map(order)
    best = usable.sort_values(["variant", "device", "rank", "tg_ts"], ascending=[True, True, True, False])
    return best.groupby(["variant", "device"], sort=True).head(1).drop(columns="rank").reset_index(drop=True)


def fleet_shares(best: pd.DataFrame) -> pd.DataFrame:
    """Per variant: the share of the fleet on which it is accessible at the band's lower end, and borderline."""
    g = best.groupby("variant")
    return pd.DataFrame({"accessible_share": g.state.apply(lambda s: float((s == "accessible").mean())),
                         "borderline_share": g.state.apply(lambda s: float((s == "borderline").mean())),
                         "devices": g.size()}).reset_index()
