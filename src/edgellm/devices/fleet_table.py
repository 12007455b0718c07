"""The fleet table: every variant on this host (measured) and on every fleet device (measured or projected).

One row per (variant, device) in ``results/fleet.csv``; every speed, memory
and energy number carries its provenance in ``speed_source`` and
``energy_source``. A device's row is *measured* when a runner brought back its
``llama-bench`` results (``results/measured/<device>/<variant>.json``), else
*projected* by the roofline of :mod:`edgellm.devices.roofline`; the projection is kept
beside the measurement (``tg_ts_projected``) so its error can be read off.
"""

from __future__ import annotations

import dataclasses

import pandas as pd

from ..config import Params, Variant
from ..io import read_json, write_csv
from ..paths import Layout
from ..records import FleetSummary, GgufRecord, ProfileRecord
from . import energy, memory, roofline
from .fleet import HOST, Device, load_fleet
from .published import load_archs


def build_fleet(params: Params, lay: Layout, host: Device, variants: list[Variant]) -> dict:
    """Every one of ``variants`` (the study's variant table) on this host and the fleet."""
    dp, pr = params.devices, params.profile
    devices = load_fleet(dp.fleet)
    rows = []
    calibration = {}
    archs = load_archs(lay.published_models)
    for v in variants:
        gg = GgufRecord.load(lay.gguf_record(v.name))
        att, layout = memory.attention_of(gg.tensors, read_json(lay.model_record(v.checkpoint)),
                                          read_json(lay.model_record(v.base)), archs)
        prof = ProfileRecord.load(lay.profile_record(v.name))
        run = prof.at_threads(params.threads)
        pp, tg = run.pp.avg_ts, run.tg.avg_ts
        shape = roofline.shape_of(gg.tensors)
        cal = roofline.calibrate(shape, host, pp, tg, pr.n_prompt, pr.n_gen, prof.peak_rss_model_bytes,
                                 gg.file_bytes)
        calibration[v.name] = {**cal.__dict__, "bytes_per_token": shape.bytes_per_token,
                               "flops_per_token": shape.pp_flops(pr.n_prompt), "kv_bytes_per_pos": shape.kv_bytes(1),
                               "n_layer": shape.n_layer, "kv_dim": shape.kv_dim, "file_bytes": gg.file_bytes,
                               "attention": {**dataclasses.asdict(att), "layout": layout}}
        mem = roofline.memory_required(shape, cal, gg.file_bytes, dp.n_ctx)
        base = {"variant": v.name, "checkpoint": v.checkpoint, "type": v.qtype, "file_mb": gg.file_mb,
                "mem_required_mb": mem / 1e6}
        for d in [host, *devices]:
            proj = roofline.project(shape, cal, d)
            row = {**base, "device": d.name, "device_display": d.display, "device_class": d.class_,
                   "pp_ts_projected": proj["pp_ts"], "tg_ts_projected": proj["tg_ts"], "tg_bound": proj["tg_bound"]}
            meas = None
            if d.name == HOST:
                meas = {"pp_ts": pp, "tg_ts": tg, "energy_tg": run.tg.energy,
                        "source": "measured (profile stage, this host)"}
            elif lay.measured(d.name, v.name).is_file():
                m = read_json(lay.measured(d.name, v.name))
                meas = {"pp_ts": m["pp_ts"], "tg_ts": m["tg_ts"], "energy_tg": m.get("energy_tg"),
                        "source": f"measured ({m.get('runner', 'runner')} runner, {m.get('threads')} threads)"}
            if meas:
                row.update(pp_ts=meas["pp_ts"], tg_ts=meas["tg_ts"], measured=True, speed_source=meas["source"])
            else:
                row.update(pp_ts=proj["pp_ts"], tg_ts=proj["tg_ts"], measured=False,
                           speed_source="projected (roofline calibrated on this host)")
            row.update(roofline.accessible(mem, d, row["tg_ts"], dp.memory_share, dp.min_tg_ts))
            row["mem_budget_mb"] = row.pop("mem_budget_bytes") / 1e6
            e = (meas or {}).get("energy_tg") or energy.estimated(d.power_w.load, row["tg_ts"])
            row.update(j_per_token=e["j_per_token"], power_w=e["power_w"], energy_source=e["energy_source"])
            row["mj_per_token"] = 1000 * row["j_per_token"]
            rows.append(row)
    df = pd.DataFrame(rows)
    share = roofline.fleet_share(rows, dp.fleet)
    acc = pd.DataFrame([{"variant": v, "fleet_share": s,
                         "devices": " ".join(df[(df.variant == v) & df.accessible & (df.device != HOST)].device)}
                        for v, s in share.items()])
    write_csv(df, lay.fleet_table)
    write_csv(acc, lay.accessibility_table)
    summary = FleetSummary(host=host.model_dump(mode="json", by_alias=True), calibration=calibration,
                           fleet=dp.fleet, memory_share=dp.memory_share, min_tg_ts=dp.min_tg_ts, n_ctx=dp.n_ctx,
                           fleet_share=share)
    summary.write(lay.fleet_summary)
    return {"rows": df, "accessibility": acc, **summary.dump()}
