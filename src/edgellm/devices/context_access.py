"""Accessibility at a stated context length and KV-cache type.

A verdict at one context says nothing about a 32k-token conversation on a
512 MB board. Here every deployed variant is judged on every fleet device at
each context length of :data:`.memory.CONTEXTS` (capped at the model's trained
context) and each KV-cache type llama.cpp offers (``f16``, ``q8_0``,
``q4_0``):

- memory: the mapped file, the KV cache of that many cells in that type, and
  the compute and output buffers llama.cpp allocates (:mod:`.memory`), against
  the device's budget (``devices.memory_share`` of its RAM);
- speed: the generation speed of the last token of that context, which reads
  the weights and the whole KV cache of the context (a sliding-window layer only
  its window), projected by the device model of the backend the device's
  verdict uses (:mod:`.verdicts`), with the same band.

The study's headline verdict stays at the ``f16`` cache: what a quantized cache
costs in quality is measured separately, and a smaller cache type is only used
where its quality cost is shown non-inferior.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from .fleet import Device
from .memory import KV_TYPES, Attention
from .validation import access_state
from .verdicts import ceilings, device_model, tg_speed


def attention(cal: Mapping) -> Attention:
    a = dict(cal["attention"])
    a.pop("layout", None)
    return Attention(**{**a, "swa": tuple(a["swa"])})


def context_rows(best: pd.DataFrame, calibration: Mapping[str, dict], devices: list[Device], points: pd.DataFrame,
                 memory_share: float, min_tg_ts: float) -> pd.DataFrame:
    """Per deployed variant, fleet device (on the backend of its verdict), context length and KV-cache type: the
    memory needed, whether it fits, the generation band at the end of that context, and the state."""
    ceiling = ceilings(points)
    by_name = {d.name: d for d in devices}
    # one device model per device and backend, fitted once for all variants
    models = {(d, b): device_model(points, d, b) for d, b in set(zip(best.device, best.backend))}
    rows = []
    for r in best.itertuples():
        dev, cal = by_name[r.device], calibration[r.variant]
        att = attention(cal)
        m = models[r.device, r.backend]
        budget = memory_share * dev.ram_bytes
        for n_ctx in att.contexts():
            for kv in KV_TYPES:
                kv_b, comp, out = att.kv_bytes(n_ctx, kv), att.compute_bytes(n_ctx), att.output_bytes()
                mem = cal["file_bytes"] + kv_b + comp + out
                tg_bytes = cal["bytes_per_token"] + att.kv_read_bytes(n_ctx, kv)
                tg = tg_speed(m, dev, r.backend, tg_bytes, cal["n_layer"], ceiling)
                lo, hi = tg / r.tg_band, tg * r.tg_band
                fits = mem <= budget
                rows.append({"variant": r.variant, "device": r.device, "backend": r.backend, "n_ctx": n_ctx,
                             "kv_type": kv, "mem_mb": mem / 1e6, "kv_mb": kv_b / 1e6, "compute_mb": comp / 1e6,
                             "mem_budget_mb": budget / 1e6, "fits": fits, "tg_ts": tg, "tg_low": lo, "tg_high": hi,
                             "own_data": bool(r.own_data), "state": access_state(fits, lo, hi, min_tg_ts),
                             "layout": cal["attention"]["layout"]})
    return pd.DataFrame(rows)


def context_shares(rows: pd.DataFrame) -> pd.DataFrame:
    """Per variant, context and KV type: the share of the fleet on which it is accessible, and borderline."""
    g = rows.groupby(["variant", "n_ctx", "kv_type"], sort=False)
    return pd.DataFrame({"accessible_share": g.state.apply(lambda s: float((s == "accessible").mean())),
                         "borderline_share": g.state.apply(lambda s: float((s == "borderline").mean())),
                         "devices": g.size()}).reset_index()
