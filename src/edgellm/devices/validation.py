"""How wrong are the device projections? The roofline held against published measurements.

Every published point (:mod:`.published`, and real llama-bench files brought in
through ``results/measured/``) is projected twice, with that model's shape and
that device's roofs (bandwidth and peak FP32 of the backend it ran on):

- **host-carried**: the fleet's projection as it stands, with the two
  efficiencies (share of bandwidth reached by generation, share of peak FP32
  reached by prompt processing) measured on this host for the same GGUF type
  (:mod:`.roofline`);
- **device-calibrated**: the efficiencies of the same device and backend,
  taken as the median over its *other* models' published points (leave one
  model out), so each point is predicted from data that did not see it.

The error of a projection is ``log(projected / measured)``; its absolute value
per device and backend (median and worst) says how far the projections are
off, and the held-out errors give each device and backend its **band**: a
projected number ``x`` is reported as ``[x / e^w, x * e^w]`` where ``w`` is the
90th percentile of the held-out absolute log errors there (pooled over the
backend kind, CPU or GPU, where a device has fewer than :data:`MIN_POINTS`).
Accessibility then has three states (:func:`access_state`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from . import latency
from .fleet import Device
from .published import COMPARABLE, ModelArch, PublishedError, PublishedPower, PublishedSpeed, arch_for

#: points a device and backend need for their own band and their own verdict on the 25 % target
MIN_POINTS = 5
#: the quantile of held-out absolute log errors that sets a band's half-width
BAND_QUANTILE = 0.9
STATES = ("accessible", "borderline", "not accessible")


def points(speeds: Iterable[PublishedSpeed], archs: Mapping[str, ModelArch], devices: Mapping[str, Device],
           origin: str = "published") -> pd.DataFrame:
    """One row per measured number (a published row gives a pp point, a tg point, or both).

    ``work`` is what one token costs on the roof that bounds it: bytes read for tg (weights and the KV cache
    at the mean position), FLOP for pp (matrix products and attention at the mean position).
    """
    rows = []
    for i, s in enumerate(speeds):
        where = f"{origin} row {i + 1}: "
        arch = arch_for(s, archs, where)
        dev = devices.get(s.device)
        if dev is None:
            raise PublishedError(f"{where}device {s.device!r} has no profile; known: {sorted(devices)}")
        bw, gflops = dev.roofs(s.backend)
        shape = arch.shape(s.file_bytes, s.params_b)
        base = {"device": s.device, "backend": s.backend, "model": s.model, "quant": s.quant,
                "params_b": s.params_b, "file_gib": s.file_bytes / 2**30, "file_estimated": s.file_estimated,
                "threads": s.threads, "build": s.build, "metric_class": s.metric_class,
                "comparable": s.metric_class in COMPARABLE, "source_metric": s.metric, "source_url": s.source_url,
                "origin": origin, "bw_gbs": bw, "peak_gflops": gflops, "n_layer": arch.n_layer,
                "family": latency.family(s.quant), "size_class": latency.size_class(s.params_b),
                "tg_bytes": None, "tg_flops": None}
        if s.pp_ts is not None:
            n = s.n_prompt or 512
            rows.append({**base, "test": "pp", "n": n, "measured_ts": s.pp_ts, "work": shape.pp_flops(n)})
        if s.tg_ts is not None:
            n = s.n_gen or 128
            rows.append({**base, "test": "tg", "n": n, "measured_ts": s.tg_ts, "work": shape.tg_bytes(n / 2),
                         "tg_bytes": shape.tg_bytes(n / 2), "tg_flops": shape.flops(n / 2)})
    df = pd.DataFrame(rows)
    # the efficiency the device reached on this point: share of the backend's bandwidth (tg) or FLOPs (pp)
    roof = np.where(df.test == "tg", df.bw_gbs * 1e9, df.peak_gflops * 1e9)
    df["efficiency"] = df.measured_ts * df.work / roof
    return df


def host_carried(df: pd.DataFrame, host_eta: Mapping[str, tuple[float, float]]) -> pd.DataFrame:
    """The fleet's projection of every point: this host's efficiencies for the same type.

    ``host_eta``: GGUF type -> (eta_bw, eta_c) measured on this host. A type the study did not measure gets the
    median over the types it did (``host_type_matched`` False).
    """
    med_bw = float(np.median([e[0] for e in host_eta.values()]))
    med_c = float(np.median([e[1] for e in host_eta.values()]))
    out = df.copy()
    matched = out.quant.isin(list(host_eta))
    eta_bw = out.quant.map(lambda q: host_eta.get(q, (med_bw, med_c))[0])
    eta_c = out.quant.map(lambda q: host_eta.get(q, (med_bw, med_c))[1])
    f = eta_c * out.peak_gflops * 1e9
    pp = f / out.work
    # tg: the slower of the memory roof and the compute roof, as the fleet projects it
    t_mem = out.tg_bytes.astype(float) / (eta_bw * out.bw_gbs * 1e9)
    t_cmp = out.tg_flops.astype(float) / f
    tg = 1 / np.maximum(t_mem, t_cmp)
    out["host_type_matched"] = matched
    out["projected_host"] = np.where(out.test == "pp", pp, tg)
    out["log_err_host"] = np.log(out.projected_host / out.measured_ts)
    return out


def leave_one_model_out(df: pd.DataFrame) -> pd.DataFrame:
    """Each point predicted by the device model (:mod:`.latency`: a fixed cost per layer and the bandwidth roof
    for tg, the weight family's efficiency for pp) fitted on comparable points of *other* models: of its own
    device and backend (``heldout_from`` "device"), else, where the device has no other model, of the same
    backend on the other devices ("backend")."""
    return latency.held_out(df, "model")


def leave_one_device_out(df: pd.DataFrame) -> pd.DataFrame:
    """Each point predicted by the device model fitted on the same backend of the *other* devices only
    (``lodo_from``): the error a device without points of its own carries."""
    return latency.held_out(df, "device")


def kind(backend: str) -> str:
    """The backend kind bands and borrowed efficiencies are pooled over: ``cpu`` or ``gpu``."""
    return "cpu" if backend == "cpu" else "gpu"


def pooled_bands(df: pd.DataFrame) -> dict[tuple[str, str], float]:
    """(kind, test) -> the band's half-width (log) over every held-out comparable point of that backend kind."""
    cmp = df[df.comparable]
    out = {}
    for (k, test), g in cmp.assign(kind=cmp.backend.map(kind)).groupby(["kind", "test"]):
        e = g.log_err_heldout.abs().dropna()
        out[k, test] = float(np.quantile(e, BAND_QUANTILE)) if len(e) else math.nan
    return out


def lodo_bands(df: pd.DataFrame) -> dict[tuple[str, str], float]:
    """(backend, test) and (kind, test) -> the half-width (log) of the leave-one-device-out errors there: how
    wrong a device with no points of its own has been, which its band must cover."""
    cmp = df[df.comparable].assign(kind=df.backend.map(kind))
    out = {}
    for col in ("backend", "kind"):
        for (b, test), g in cmp.groupby([col, "test"]):
            e = g.log_err_lodo.abs().dropna()
            if len(e):
                out[b, test] = float(np.quantile(e, BAND_QUANTILE))
    return out


def nodata_band(pooled: Mapping, lodo: Mapping, backend: str, test: str) -> tuple[float, str]:
    """The band (log half-width) of a device and backend without enough points of its own: the pooled held-out
    band of its backend kind, widened to the leave-one-device-out error of its backend where that is larger."""
    w_pool = pooled.get((kind(backend), test), math.nan)
    w_lodo = lodo.get((backend, test), lodo.get((kind(backend), test), math.nan))
    if not math.isnan(w_lodo) and (math.isnan(w_pool) or w_lodo > w_pool):
        return w_lodo, f"no own data: leave-one-device-out {backend if (backend, test) in lodo else kind(backend)}"
    return w_pool, f"no own data: pooled {kind(backend)}"


def _factor(e: pd.Series, how: str = "median") -> float:
    e = e.abs().dropna()
    if not len(e):
        return math.nan
    return math.exp(float(np.median(e) if how == "median" else e.max()))


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per device, backend and test: the points, the errors of the host-carried projection and of the device
    model held out by model (LOMO) and by device (LODO), the calibrated efficiency and the band. Errors are
    absolute log errors, reported as factors (``e^|err|``: 1.25 = 25 % off)."""
    pooled, lodo = pooled_bands(df), lodo_bands(df)
    df = df[df.comparable]
    rows = []
    for (dev, backend, test), g in df.groupby(["device", "backend", "test"], sort=True):
        host = g.log_err_host.abs()
        # held out within the device (other models, same device and backend): what the band and the target use
        held = g[g.heldout_from == "device"].log_err_heldout.abs().dropna()
        own = len(held) >= MIN_POINTS
        width, source = ((float(np.quantile(held, BAND_QUANTILE)), "own") if own
                         else nodata_band(pooled, lodo, backend, test))
        rows.append({
            "device": dev, "backend": backend, "test": test, "n_points": len(g), "n_models": g.model.nunique(),
            "efficiency": float(np.median(g.efficiency)),
            "host_median_factor": math.exp(float(np.median(host))), "host_worst_factor": math.exp(float(host.max())),
            "host_median_signed": math.exp(float(np.median(g.log_err_host))),
            "n_heldout": len(held),
            "n_heldout_other_devices": int((g.heldout_from == "backend").sum()),
            # points of a device with no other model, predicted from the same backend on the other devices
            "crossdevice_median_factor": _factor(g[g.heldout_from == "backend"].log_err_heldout),
            "heldout_median_factor": _factor(held), "heldout_worst_factor": _factor(held, "worst"),
            "lodo_median_factor": _factor(g.log_err_lodo), "lodo_worst_factor": _factor(g.log_err_lodo, "worst"),
            "lodo_median_signed": (math.exp(float(np.median(g.log_err_lodo.dropna())))
                                   if g.log_err_lodo.notna().any() else math.nan),
            "band_factor": math.exp(width), "band_source": source,
            "meets_25pct": (bool(math.exp(float(np.median(held))) <= 1.25) if own else None),
        })
    return pd.DataFrame(rows)


def size_summary(df: pd.DataFrame, target: float = 1.25) -> pd.DataFrame:
    """Per device, backend, test and model-size class (:data:`.latency.SIZE_CLASSES`): the held-out errors by
    model and by device, and whether the median held-out error meets ``target`` where the class has at least
    :data:`MIN_POINTS` points held out within the device (None where it has fewer: no verdict)."""
    df = df[df.comparable]
    rows = []
    for (dev, backend, test, cls), g in df.groupby(["device", "backend", "test", "size_class"], sort=True):
        held = g[g.heldout_from == "device"].log_err_heldout
        n_held = int(held.notna().sum())
        rows.append({"device": dev, "backend": backend, "test": test, "size_class": cls, "n_points": len(g),
                     "n_heldout": n_held, "heldout_median_factor": _factor(held),
                     "heldout_median_signed": (math.exp(float(np.median(held.dropna()))) if n_held else math.nan),
                     "lodo_median_factor": _factor(g.log_err_lodo),
                     "meets_target": bool(_factor(held) <= target) if n_held >= MIN_POINTS else None})
    return pd.DataFrame(rows)


def band(x: float, factor: float) -> tuple[float, float]:
    """A projected number's band: ``[x / factor, x * factor]``."""
    return x / factor, x * factor


def access_state(fits: bool, tg_low: float, tg_high: float, min_tg_ts: float) -> str:
    """Accessible when the band's lower end is fast enough (and the model fits), borderline when the band
    straddles the threshold, not accessible when even its upper end is too slow or the model does not fit."""
    if not fits or tg_high < min_tg_ts:
        return "not accessible"
    return "accessible" if tg_low >= min_tg_ts else "borderline"


def power_bands(power: Iterable[PublishedPower], devices: Mapping[str, Device]) -> pd.DataFrame:
    """Per device, backend and meter scope: the published range of power under load, beside the profile's load
    power (an estimate where no source measured it), so energy per token can carry a sourced band."""
    rows = [p.model_dump() for p in power]
    df = pd.DataFrame(rows)
    out = (df.groupby(["device", "backend", "scope"], sort=True)
           .agg(watts_low=("watts_low", "min"), watts_high=("watts_high", "max"), n_sources=("source_url", "nunique"),
                n_rows=("watts_low", "size"))
           .reset_index())
    out["profile_load_w"] = out.device.map(lambda d: devices[d].power_w.load if d in devices else math.nan)
    return out
