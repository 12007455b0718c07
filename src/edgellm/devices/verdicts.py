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
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import latency
from .fleet import HOST, Device
from .validation import STATES, access_state, kind, lodo_bands, nodata_band, pooled_bands

#: preference among meters for a device's power under load: the whole device first
SCOPES = ("wall", "rail", "package", "pmic")


def ceilings(points: pd.DataFrame) -> dict[tuple[str, str], float]:
    """(kind, test) -> the most a published run of that backend kind reached: effective GB/s for tg, GFLOPS for pp.

    A device without published points of its own borrows a model from the others; this ceiling keeps the
    borrowed number from implying a run faster than any published one (e.g. a six-core CPU on a 68 GB/s bus).
    """
    cmp = points[points.comparable]
    reached = cmp.efficiency * np.where(cmp.test == "tg", cmp.bw_gbs, cmp.peak_gflops)
    return {(k, test): float(v) for (k, test), v in reached.groupby([cmp.backend.map(kind), cmp.test]).max().items()}


@dataclass(frozen=True)
class DeviceModel:
    """How one device and backend is projected: the generation model, the prompt efficiencies by weight family,
    and whether they come from the device's own points."""

    tg: latency.TgModel | None
    pp: pd.DataFrame          # the pp points the prompt efficiency is taken from
    own: bool
    source: str


def device_model(points: pd.DataFrame, dev: str, backend: str) -> DeviceModel:
    """The device's own published points where it has them; else the same backend on every other device (or,
    without any, the backend kind): "no own data"."""
    cmp = points[points.comparable]
    pool = cmp[cmp.backend == backend]
    if pool.empty:
        pool = cmp[cmp.backend.map(kind) == kind(backend)]
    own = cmp[(cmp.device == dev) & (cmp.backend == backend)]
    if len(own[own.test == "tg"]):
        tg_own = own[own.test == "tg"]
        fits = len(tg_own) >= latency.MIN_FIT_POINTS and tg_own.model.nunique() >= 2
        tau = None if fits else latency.backend_tau(pool[pool.test == "tg"], exclude_device=dev)
        tg = latency.fit_tg(tg_own, tau)
        pp = own[own.test == "pp"] if len(own[own.test == "pp"]) else pool[pool.test == "pp"]
        how = "fixed cost fitted" if tg.tau_s and tg.tau_fitted else "fixed cost of the backend's other devices"
        return DeviceModel(tg, pp, True, f"this device's {backend}: {len(tg_own)} tg points, {how}")
    tg_pool = pool[pool.test == "tg"]
    tg = latency.fit_tg(tg_pool, latency.backend_tau(tg_pool)) if len(tg_pool) else None
    return DeviceModel(tg, pool[pool.test == "pp"], False,
                       f"no own data: {backend} of {tg_pool.device.nunique()} other devices ({len(tg_pool)} tg points)")


def tg_speed(m: DeviceModel, dev: Device, backend: str, tg_bytes: float, n_layer: int,
             ceiling: Mapping[tuple[str, str], float]) -> float:
    """Projected generation tokens/s of ``tg_bytes`` per token on a device and backend (a borrowed model is capped
    at the most a published run of its backend kind reached)."""
    bw = dev.roofs(backend)[0]
    return m.tg.ts(tg_bytes, n_layer, bw, None if m.own else ceiling[kind(backend), "tg"])


def band_for(summary: pd.DataFrame, widths: tuple[Mapping, Mapping], dev: str, backend: str, test: str,
             own: bool) -> float:
    """The band factor of a projection: the device's own held-out band, or at least the leave-one-device-out
    error of its backend when it has no data of its own (:func:`.validation.nodata_band`; ``widths``: the
    pooled and LODO bands of the points, computed once)."""
    row = summary[(summary.device == dev) & (summary.backend == backend) & (summary.test == test)]
    if own and len(row):
        return float(row.band_factor.iloc[0])
    return math.exp(nodata_band(*widths, backend, test)[0])


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
    ceiling = ceilings(points)
    widths = pooled_bands(points), lodo_bands(points)
    rows = []
    for dev in devices:
        models = {b: device_model(points, dev.name, b) for b in dev.backend_names}
        for fr in fleet[fleet.device == dev.name].itertuples():
            cal = calibration[fr.variant]
            tg_bytes = cal["bytes_per_token"] + cal["kv_bytes_per_pos"] * cal["n_gen"] / 2
            for backend in dev.backend_names:
                usable = backend == "cpu" or any(b.name == backend and b.bundle for b in dev.backends)
                gflops = dev.roofs(backend)[1]
                row = {"variant": fr.variant, "device": dev.name, "backend": backend, "usable": usable,
                       "fits": bool(fr.fits), "mem_required_mb": fr.mem_required_mb, "mem_budget_mb": fr.mem_budget_mb}
                if backend == "cpu" and bool(fr.measured):
                    row.update(tg_ts=fr.tg_ts, pp_ts=fr.pp_ts, tg_band=1.0, pp_band=1.0, measured=True, own_data=True,
                               speed_source=fr.speed_source)
                else:
                    m = models[backend]
                    tg_ts = tg_speed(m, dev, backend, tg_bytes, cal["n_layer"], ceiling)
                    e_pp, fam = latency.pp_efficiency(m.pp, latency.family(fr.type))
                    f_eff = e_pp * gflops if m.own else min(e_pp * gflops, ceiling[kind(backend), "pp"])
                    cap = "" if m.own else f", at most {ceiling[kind(backend), 'tg']:.1f} GB/s"
                    row.update(tg_ts=tg_ts, pp_ts=f_eff * 1e9 / cal["flops_per_token"],
                               effective_gbs=tg_bytes * tg_ts / 1e9,
                               tg_band=band_for(summary, widths, dev.name, backend, "tg", m.own),
                               pp_band=band_for(summary, widths, dev.name, backend, "pp", m.own
                                                and bool(len(m.pp[m.pp.device == dev.name]))),
                               measured=False, own_data=m.own,
                               speed_source=(f"projected ({m.source}; tau {m.tg.tau_s * 1e6:.0f} us/layer, eta "
                                             f"{m.tg.eta:.2f}{cap}; pp efficiency of {fam} on {len(m.pp)} points)"))
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
