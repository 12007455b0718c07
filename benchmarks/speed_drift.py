"""How far this host's speed drifts between the study's profile stages.

Each variant's profile stage measures it at a different time. This re-measures the given variants with
llama-bench now, one after another with the profile settings of ``params.yaml``, and prints, per variant,
the recorded and the current pp/tg and their ratio. If the host did not drift, every ratio would be 1
within the run-to-run s.d.; ratios that differ between variants mean that speed ratios between variants
in ``results/results.csv`` carry the drift of the times they were measured at.

    python benchmarks/speed_drift.py                          # the main variants
    python benchmarks/speed_drift.py smollm2-135m-Q4_0 smollm2-135m-Q4_K_M
"""

from __future__ import annotations

import argparse
import csv

from _common import LAYOUT, ROOT

from edgellm.config import load_params
from edgellm.llamacpp.tools import run_llama_bench


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("variants", nargs="*", help="variants of results/results.csv (default: the main tier)")
    a = ap.parse_args()
    params = load_params(ROOT / "params.yaml")
    prof = params.profile
    with open(ROOT / "results" / "results.csv", newline="") as f:
        rows = {r["variant"]: r for r in csv.DictReader(f)}
    names = a.variants or [v for v, r in rows.items() if r["tier"] in ("main", "reference")]
    unknown = [v for v in names if v not in rows]
    if unknown:
        raise SystemExit(f"not in results/results.csv: {unknown}")
    threads = prof.threads[-1]
    print(f"llama-bench pp{prof.n_prompt} / tg{prof.n_gen}, {prof.repetitions} repetitions, {threads} threads")
    print(f"{'variant':<36}{'pp recorded':>12}{'pp now':>14}{'ratio':>7}{'tg recorded':>13}{'tg now':>13}{'ratio':>7}")
    for v in names:
        r = rows[v]
        b = run_llama_bench(LAYOUT.gguf(r["model"], r["type"]), prof.n_prompt, prof.n_gen, prof.repetitions, threads)
        pp, tg = b[f"pp{prof.n_prompt}"], b[f"tg{prof.n_gen}"]
        print(f"{v:<36}{float(r['pp_ts']):>12.1f}{pp['avg_ts']:>9.1f}±{pp['stddev_ts']:<4.1f}"
              f"{pp['avg_ts'] / float(r['pp_ts']):>7.2f}{float(r['tg_ts']):>13.1f}{tg['avg_ts']:>8.1f}±"
              f"{tg['stddev_ts']:<4.1f}{tg['avg_ts'] / float(r['tg_ts']):>7.2f}", flush=True)


if __name__ == "__main__":
    main()
