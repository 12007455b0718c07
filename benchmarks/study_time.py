"""How long the study took, per stage, from the notebook runner's log of the last `dvc repro`.

The runner (``edgellm.stages.notebook``) appends every notebook stage's start and duration to
``models/work/stage-times.jsonl`` (the committed notebooks carry no run times); the last entry per notebook
counts. Summed per stage,
they are the time inside the stages; the span from the first start to the last end is the wall time of
the run, DVC's own work between stages included (when the stages ran in one `dvc repro`). Run after
`dvc repro` from scratch to measure the study against its 120-minute budget (docs/pipeline.md):

    python benchmarks/study_time.py            # a table per stage and base model, then the totals
"""

from __future__ import annotations

import json
import re
import sys
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import yaml
from _common import LAYOUT

#: notebook file stem prefix -> DVC stage (matrix/foreach stages share a notebook)
STAGE = re.compile(r"^(\d+[a-z]?)_([a-z_]+)")
#: script stages (no notebook) -> their records, which say how long they took
SCRIPT_STAGES = {"block_kl": "results/block_kl/*.json"}
#: seconds: a longer gap between two notebooks is a pause between two `dvc repro` runs
GAP_MAX = 60


def base_model(name: str, models: list[str]) -> str:
    """The base model a stage ran for, from its notebook's name (``06_profile-<variant>``); ``all`` for the
    stages that run once for the study (data, judge, report)."""
    tail = Path(name).stem.partition("-")[2]
    return next((m for m in sorted(models, key=len, reverse=True) if tail == m or tail.startswith(m + "-")), "all")


def runs() -> list[dict]:
    log = LAYOUT.stage_times
    last = {}
    for line in log.read_text().splitlines() if log.is_file() else []:
        row = json.loads(line)
        last[row["notebook"]] = row
    out = []
    for name, row in sorted(last.items()):
        m = STAGE.match(Path(name).stem)
        start = datetime.fromisoformat(row["start"])
        out.append({"notebook": name, "stage": m.group(2) if m else Path(name).stem, "start": start,
                    "end": start + timedelta(seconds=row["seconds"]), "seconds": float(row["seconds"])})
    return out


def script_runs() -> list[dict]:
    """Stages run as scripts, without a notebook: the seconds their records give (no start or end: a committed
    record's file time is when it was checked out, so they count inside the stages, not in the wall span)."""
    return [{"notebook": f"{stage}-{path.name}", "stage": stage, "seconds": float(json.loads(path.read_text())["seconds"])}
            for stage, pattern in SCRIPT_STAGES.items() for path in sorted(LAYOUT.root.glob(pattern))]


def main() -> None:
    rs = runs()
    if not rs:
        sys.exit(f"no stage times in {LAYOUT.stage_times}: run `dvc repro` first")
    scripts = script_runs()
    models = list(yaml.safe_load((LAYOUT.root / "params.yaml").read_text())["models"])
    bases = [*models, "all"]
    per = defaultdict(lambda: defaultdict(lambda: [0, 0.0]))
    for r in rs + scripts:
        cell = per[r["stage"]][base_model(r["notebook"], models)]
        cell[0] += 1
        cell[1] += r["seconds"]
    first_start = {r["stage"]: r["start"] for r in sorted(rs, key=lambda r: r["start"], reverse=True)}
    print(f"{'stage':<22}" + "".join(f"{b[:16]:>22}" for b in bases) + f"{'minutes':>10}")
    totals = defaultdict(float)
    for stage, cells in sorted(per.items(), key=lambda kv: (kv[0] not in first_start, first_start.get(kv[0], 0))):
        row = ""
        for b in bases:
            n, sec = cells.get(b, (0, 0.0))
            totals[b] += sec
            row += f"{f'{n} runs {sec / 60:.1f}' if n else '':>22}"
        print(f"{stage:<22}{row}{sum(c[1] for c in cells.values()) / 60:>10.1f}")
    print(f"{'per base model':<22}" + "".join(f"{totals[b] / 60:>22.1f}" for b in bases))
    inside = sum(r["seconds"] for r in rs + scripts)
    first, last = min(r["start"] for r in rs), max(r["end"] for r in rs)
    print(f"{'inside the stages':<27}{inside / 60:>10.1f}")
    print(f"{'wall, first start to last end':<27}{(last - first).total_seconds() / 60:>10.1f}  "
          f"({first:%Y-%m-%d %H:%M} to {last:%H:%M} UTC; DVC's work between stages included)")
    # what a stage costs outside its notebook (papermill's start, the HTML copy, DVC hashing its outputs and
    # writing dvc.lock): the gap between one notebook's end and the next one's start, where stages ran back
    # to back in one `dvc repro` (gaps over GAP_MAX s are pauses between runs, not overhead)
    ordered = sorted(rs, key=lambda r: r["start"])
    gaps = [(b["start"] - a["end"]).total_seconds() for a, b in zip(ordered, ordered[1:])]
    gaps = sorted(g for g in gaps if 0 <= g <= GAP_MAX)
    if gaps:
        median = gaps[len(gaps) // 2]
        print(f"{'between stages (median gap)':<27}{median:>10.1f} s  ({len(gaps)} back-to-back pairs)")
        n = len(rs) + len(scripts)
        print(f"{'estimate from scratch':<27}{(inside + n * median) / 60:>10.1f}  "
              f"(inside + {n} stages x the median gap; the code and params stages are not counted)")


if __name__ == "__main__":
    main()
