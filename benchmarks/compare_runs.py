"""One variant in an earlier committed run against the working tree's run, on the same items.

Why: a recipe change (which depth block to drop, a distillation setting) is judged by what it does to the
committed results, and the paper quotes such comparisons; this prints them from the two runs' committed
``results/results.csv`` and per-item files, with the study's paired test (``edgellm.eval.stats.compare``:
McNemar, stratified by task when tasks differ in size) on the generalization tasks both runs scored.

    python benchmarks/compare_runs.py 1311b1d smollm2-135m-depth-1-kd-Q4_K_M
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess

import pandas as pd
from _common import LAYOUT, ROOT

from edgellm.config import load_params
from edgellm.eval import stats
from edgellm.report.results import INDEX, item_scores, paired

COLUMNS = ("ppl", "kld", "gen_acc")


def at_rev(rev: str, path: str) -> str:
    return subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, check=True, capture_output=True,
                          text=True).stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("rev", help="the earlier run's commit")
    ap.add_argument("variant")
    a = ap.parse_args()
    params = load_params(ROOT / "params.yaml")
    rel_items = LAYOUT.items(a.variant).relative_to(ROOT).as_posix()
    old_df = pd.read_csv(io.StringIO(at_rev(a.rev, "results/results.csv")))
    new_df = pd.read_csv(ROOT / "results" / "results.csv")
    old_row, new_row = (d.loc[d["variant"] == a.variant].iloc[0] for d in (old_df, new_df))
    tasks = sorted(set(str(new_row["gen_tasks"]).split()) & set(str(old_row["gen_tasks"]).split()))
    # the report's own per-item scores and pairing by dataset index (the earlier run must hold the current items)
    old = item_scores(json.loads(at_rev(a.rev, rel_items)), a.variant, tasks, {})
    new = item_scores(json.loads(LAYOUT.items(a.variant).read_text()), a.variant, tasks, {})
    var = new["gen_acc"]
    ref = paired(old["gen_acc"], var, old[INDEX], new[INDEX])
    for t in tasks:
        print(f"{t:16s} n={len(var[t]):4d}  acc {ref[t].mean():.3f} -> {var[t].mean():.3f}")
    for c in COLUMNS:
        print(f"{c:16s} {old_row[c]:.3f} ({a.rev}) -> {new_row[c]:.3f} (working tree)")
    rep = params.report
    r = stats.compare(ref, var, True, rep.bootstrap, rep.confidence, rep.alpha,
                      stats.rng_for(params.seed, a.variant, a.rev, "gen_acc"), rep.power)
    print(f"mean of task means {r['delta']:+.3f} [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}] on "
          f"{sum(len(v) for v in var.values())} items: {r['only_ref']} lost, {r['only_variant']} gained; "
          f"{r['test']} p = {r['p']:.4f}, MDE {r['mde']:.3f}")


if __name__ == "__main__":
    main()
