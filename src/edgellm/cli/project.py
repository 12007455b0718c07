"""Project a GGUF file's speed on a fleet device: the study's published-data calibration (efficiencies of
llama.cpp runs on that device, else its class, capped at the fastest published run) applied to this file's
bytes and FLOP per token, with the error band its validation measured, the memory it needs, and the
accessibility verdict (accessible, borderline or not) per backend.

Reads the committed results/devices/ tables (the validation and verdicts stages' inputs); the runtime overhead
beyond weights and KV cache is the largest the study measured on its host (results/fleet.json); so it runs
inside the project checkout (or with ``EDGELLM_ROOT`` naming it).

``-o md|json|csv``, as llama-bench's option: the markdown table (default), or every column of the verdict
rows as JSON records or CSV.
"""

from __future__ import annotations

import argparse
import json

import pandas as pd

from ..devices import roofline, verdicts
from ..devices.fleet import available, load_fleet
from ..llamacpp.gguf import inspect_gguf
from ..paths import Layout
from ..records import FleetSummary
from .common import model_file, positive_int, study_params, study_root

HELP = "the calibrated projection of a GGUF file on a device, with its error band and verdict"


def add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="the GGUF file")
    p.add_argument("--device", required=True, help=f"a fleet profile (known: {', '.join(available())})")
    p.add_argument("--n-ctx", type=positive_int,
                   help="context for the memory estimate (default: params.yaml's devices.n_ctx)")
    p.add_argument("-o", "--output", choices=("md", "json", "csv"), default="md",
                   help="output format, as llama-bench's -o (default: %(default)s)")


def projection(path, device: str, n_ctx: int | None = None) -> pd.DataFrame:
    """One row per backend of ``device``: tg/pp tokens/s with band, memory, state, energy per token."""
    root = study_root()
    if root is None:
        raise FileNotFoundError("the projection reads the study's results/devices/ tables: run it inside the project "
                                "checkout, or set EDGELLM_ROOT to it")
    params, lay = study_params(root), Layout(root)
    dp, pr = params.devices, params.profile
    dev = load_fleet([device])[0]
    for need in (lay.validation_points, lay.validation_table, lay.power_bands, lay.fleet_summary):
        if not need.is_file():
            raise FileNotFoundError(f"{need}: missing; the validation and fleet stages write it (`dvc repro`)")
    info = inspect_gguf(path)
    shape = roofline.shape_of(info["tensors"])
    overhead = max(c["overhead_bytes"] for c in FleetSummary.load(lay.fleet_summary).calibration.values())
    n_ctx = n_ctx or dp.n_ctx
    mem = info["file_bytes"] + shape.kv_bytes(n_ctx) + overhead
    name = path.name
    cal = {name: {"bytes_per_token": shape.bytes_per_token, "kv_bytes_per_pos": shape.kv_bytes(1),
                  "flops_per_token": shape.pp_flops(pr.n_prompt), "n_gen": pr.n_gen, "n_prompt": pr.n_prompt,
                  "n_layer": shape.n_layer}}
    budget = dp.memory_share * dev.ram_bytes
    # the type that holds most weights decides the prompt efficiency's family (float or quantized)
    main_type = next(iter(info["tensor_types"]))
    fleet = pd.DataFrame([{"variant": name, "type": main_type, "device": dev.name, "fits": mem <= budget,
                           "measured": False,
                           "mem_required_mb": mem / 1e6, "mem_budget_mb": budget / 1e6}])
    return verdicts.verdict_rows(fleet, cal, [dev], pd.read_csv(lay.validation_points),
                                 pd.read_csv(lay.validation_table), pd.read_csv(lay.power_bands), dp.min_tg_ts)


def markdown(rows: pd.DataFrame, path, device: str, min_tg: float) -> None:
    """The memory line, the table a reader scans (one row per backend) and where each speed comes from."""
    print(f"{path.name} on {device}: needs {rows.mem_required_mb.iloc[0]:.0f} MB of a "
          f"{rows.mem_budget_mb.iloc[0]:.0f} MB budget; accessible means tg >= {min_tg:g} tokens/s at the band's "
          "lower end")
    print("| backend | bundle runs it | tg tokens/s (band) | pp tokens/s | state | mJ/token |")
    print("| --- | --- | ---: | ---: | --- | ---: |")
    for r in rows.itertuples():
        print(f"| {r.backend} | {'yes' if r.usable else 'no'} | {r.tg_ts:.1f} ({r.tg_low:.1f}-{r.tg_high:.1f}) | "
              f"{r.pp_ts:.0f} | {r.state} | {r.mj_per_token_low:.0f}-{r.mj_per_token_high:.0f} |")
    print("sources: " + "; ".join(f"{r.backend}: {r.speed_source}" for r in rows.itertuples()))


def run(a: argparse.Namespace) -> int:
    path = model_file(a.model)
    rows = projection(path, a.device, a.n_ctx)
    if a.output == "json":
        print(json.dumps(json.loads(rows.to_json(orient="records")), indent=2))
    elif a.output == "csv":
        print(rows.to_csv(index=False).rstrip("\n"))
    else:
        markdown(rows, path, a.device, study_params().devices.min_tg_ts)
    return 0
