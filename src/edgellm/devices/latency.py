"""A device speed model that holds for small models: a fixed cost per layer beside the bandwidth roof.

A median efficiency (share of the bandwidth a device's generation reaches) is
a good model for the 0.5-8 B models most published points ran, and a poor one
for a 135 M model: there every token also pays per-operation costs (kernel
launches on a GPU, thread synchronisation on a CPU) that do not shrink with
the weights, so the efficiency falls with the model's size. Generation is
modelled as

    seconds per token = n_layer * tau + bytes per token / (eta * bandwidth)

per device and backend (the classic latency-bandwidth model): ``tau`` is the
fixed cost of one layer's operations, ``eta`` the share of the bandwidth the
weight stream reaches. Both are fitted by non-negative least squares on the
relative error of the device's published points; with too few points, or
points of one size only, ``tau`` is borrowed from the backend's other devices
(the median of their fits) and only ``eta`` is fitted.

Prompt processing is compute-bound and batched, so it keeps one efficiency
(share of peak FLOPS), but per weight family: float files (F16, BF16, F32) and
quantized ones run different kernels, and on the Cortex-A72 F16's prompt
efficiency is far from the quantized types' (issue 30: 1.6x off with one
efficiency for both).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import nnls

FLOAT_TYPES = frozenset({"F32", "F16", "BF16"})
#: model-size classes the errors are reported in (billions of parameters, upper bounds)
SIZE_CLASSES = (("<=0.5B", 0.5), ("0.5-2B", 2.0), (">2B", math.inf))
#: points (of at least two models) a device and backend need to fit its own fixed cost
MIN_FIT_POINTS = 3
#: points of one weight family a device and backend need for that family's own prompt efficiency
MIN_FAMILY_POINTS = 2


def family(quant: str) -> str:
    """``float`` for F16/BF16/F32 files, ``quantized`` for every other GGUF type."""
    return "float" if quant.upper() in FLOAT_TYPES else "quantized"


def size_class(params_b: float) -> str:
    return next(name for name, top in SIZE_CLASSES if params_b <= top)


@dataclass(frozen=True)
class TgModel:
    """Generation on one device and backend: ``n_layer * tau + bytes / (eta * bw)`` seconds per token."""

    tau_s: float      # fixed seconds per layer per token
    eta: float        # share of the bandwidth the weight stream reaches
    n_points: int
    tau_fitted: bool  # False: tau borrowed from the backend's other devices

    def ts(self, tg_bytes: float, n_layer: int, bw_gbs: float, bw_cap_gbs: float | None = None) -> float:
        bw = self.eta * bw_gbs * 1e9
        if bw_cap_gbs is not None:
            bw = min(bw, bw_cap_gbs * 1e9)
        return 1.0 / (n_layer * self.tau_s + tg_bytes / bw)


def _seconds(g: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(measured seconds per token, seconds at the full bandwidth, layers) of tg points."""
    y = 1.0 / g.measured_ts.to_numpy(float)
    x = g.work.to_numpy(float) / (g.bw_gbs.to_numpy(float) * 1e9)
    return y, x, g.n_layer.to_numpy(float)


def fit_tg(g: pd.DataFrame, tau_s: float | None = None) -> TgModel | None:
    """The generation model of a set of tg points (one device and backend, or several: their bandwidths differ).

    With ``tau_s`` given, only ``eta`` is fitted (the median that makes each point exact, after the fixed cost).
    Without it, both are fitted where the points allow (:data:`MIN_FIT_POINTS`, two models or more); otherwise
    ``tau`` is 0 and the model is the plain bandwidth roof.
    """
    if g.empty:
        return None
    y, x, layers = _seconds(g)
    if tau_s is None and len(g) >= MIN_FIT_POINTS and g.model.nunique() >= 2:
        # non-negative least squares on relative errors: (L tau + x k) / y ~ 1
        coef, _ = nnls(np.column_stack([layers / y, x / y]), np.ones(len(y)))
        if coef[1] > 0:
            return TgModel(tau_s=float(coef[0]), eta=float(1 / coef[1]), n_points=len(g), tau_fitted=True)
    tau = tau_s or 0.0
    rest = y - layers * tau
    ok = rest > 0
    if not ok.any():   # the borrowed fixed cost alone exceeds every measured time: drop it
        tau, rest, ok = 0.0, y, np.ones(len(y), bool)
    return TgModel(tau_s=tau, eta=float(np.median(x[ok] / rest[ok])), n_points=len(g), tau_fitted=False)


def pp_efficiency(g: pd.DataFrame, fam: str) -> tuple[float, str] | None:
    """Prompt efficiency of ``fam`` files among pp points: that family's median where it has enough points,
    else the median over every family (said in the second element)."""
    if g.empty:
        return None
    own = g[g.quant.map(family) == fam]
    if len(own) >= MIN_FAMILY_POINTS:
        return float(np.median(own.efficiency)), fam
    return float(np.median(g.efficiency)), "all types"


def backend_tau(tg: pd.DataFrame, exclude_device: str | None = None) -> float:
    """The fixed cost a device without enough points of its own borrows: the median over the backend's other
    devices whose points fit one (0 where none does)."""
    taus = []
    for dev, g in tg.groupby("device"):
        if dev == exclude_device:
            continue
        m = fit_tg(g)
        if m is not None and m.tau_fitted:
            taus.append(m.tau_s)
    return float(np.median(taus)) if taus else 0.0


def predict(r, tg_model: TgModel | None, pp_eff: tuple[float, str] | None) -> float:
    """A point's projected tokens/s under a device model (NaN where there is none)."""
    if r.test == "tg":
        return tg_model.ts(r.work, int(r.n_layer), r.bw_gbs) if tg_model else math.nan
    return pp_eff[0] * r.peak_gflops * 1e9 / r.work if pp_eff else math.nan


def held_out(df: pd.DataFrame, leave: str) -> pd.DataFrame:
    """Every point predicted by a device model fitted without it.

    ``leave="model"``: from the same device and backend's points of *other models* (``heldout_from`` "device"),
    or, where the device has no other model, from the same backend on the other devices ("backend").
    ``leave="device"``: from the same backend on the *other devices* only: how wrong a device without data of
    its own can be. Only comparable points (llama-bench-like metrics) calibrate.
    """
    cal = df[df.comparable]
    pred, origin = [], []
    for _, r in df.iterrows():
        same = cal[(cal.backend == r.backend) & (cal.test == r.test)]
        mine = same[(same.device == r.device) & (same.model != r.model)] if leave == "model" else same.iloc[0:0]
        if len(mine):
            src, pool = "device", mine
            tau = None if r.test == "tg" else 0.0
            if r.test == "tg" and not (len(mine) >= MIN_FIT_POINTS and mine.model.nunique() >= 2):
                tau = backend_tau(same[same.model != r.model], exclude_device=r.device)
        else:
            pool = same[same.device != r.device]
            if leave == "model":
                pool = pool[pool.model != r.model]
            src = "backend" if len(pool) else "none"
            tau = backend_tau(pool) if r.test == "tg" else 0.0
        if src == "none":
            pred.append(math.nan)
        elif r.test == "tg":
            pred.append(predict(r, fit_tg(pool, tau), None))
        else:
            pred.append(predict(r, None, pp_efficiency(pool, family(r.quant))))
        origin.append(src)
    suffix = "heldout" if leave == "model" else "lodo"
    out = df.copy()
    out[f"projected_{suffix}"] = pred
    out[f"{suffix}_from"] = origin
    out[f"log_err_{suffix}"] = np.log(out[f"projected_{suffix}"] / out.measured_ts)
    return out
