"""Stage ``params``: validate ``params.yaml`` before any other stage runs, and derive the pipeline's tables.

``python -m edgellm.stages.params params.yaml --record results/params.json --pipeline results/pipeline.yaml``.
Every other stage depends on the record, so ``dvc repro`` runs this first: a bad value stops it with the
schema's one message before DVC removes any stage's outputs. The record's bytes do not depend on the values
(a valid change of a parameter reruns only the stages that use it), and it is written atomically.

``results/pipeline.yaml`` holds the variant and checkpoint tables ``dvc.yaml`` iterates over
(:func:`edgellm.config.pipeline_table.pipeline_table`). DVC reads it before any stage runs, so when ``params.yaml`` adds or removes a
variant the table here lags: this stage rewrites it and fails with one line that says to run ``dvc repro``
again (``make repro`` refreshes it first, so it runs through).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from ..config import ParamsError, load_params
from ..config.pipeline_table import pipeline_table
from ..io import write_json, write_text

#: what the record says: the same for every valid params.yaml
RECORD = {"schema": "edgellm.config.Params", "valid": True}
HEADER = "# Derived from params.yaml by `python -m edgellm.stages.params` (edgellm.config.pipeline_table): do not edit.\n"


class PipelineStale(RuntimeError):
    """``results/pipeline.yaml`` lagged ``params.yaml`` (it has been rewritten)."""


def pipeline_text(params_path: str | Path) -> str:
    """The pipeline tables of a valid ``params.yaml``, as ``results/pipeline.yaml`` holds them."""
    return HEADER + yaml.safe_dump(pipeline_table(load_params(params_path)), sort_keys=False, width=120)


def refresh_pipeline(params_path: str | Path, pipeline: str | Path) -> list[str]:
    """Rewrite ``pipeline`` where it lags ``params_path``; the variants it adds or drops (empty: it was current)."""
    text, pipeline = pipeline_text(params_path), Path(pipeline)
    old = pipeline.read_text() if pipeline.is_file() else ""
    if old == text:
        return []
    before = (yaml.safe_load(old) or {}).get("pipeline", {}).get("variants", {}) if old else {}
    after = yaml.safe_load(text)["pipeline"]["variants"]
    write_text(pipeline, text)
    changed = [f"+{v}" for v in after if v not in before] + [f"-{v}" for v in before if v not in after]
    return changed or ["(entries changed)"]


def run(params_path: str | Path, record: str | Path | None = None, pipeline: str | Path | None = None) -> None:
    """Raise :class:`ParamsError` for a bad file, :class:`PipelineStale` for a lagging table; else write ``record``."""
    load_params(params_path)
    if pipeline is not None:
        changed = refresh_pipeline(params_path, pipeline)
        if changed:
            raise PipelineStale(f"{pipeline} lagged {params_path} ({', '.join(changed)}): rewritten; run `dvc repro` "
                                "again so that DVC reads it")
    if record is not None:
        write_json(record, RECORD)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m edgellm.stages.params", description="Validate params.yaml.")
    ap.add_argument("params", nargs="?", default="params.yaml")
    ap.add_argument("--record", help="write the validation record here (only when the file is valid)")
    ap.add_argument("--pipeline", help="the pipeline tables dvc.yaml reads: rewritten (and the run failed) if stale")
    a = ap.parse_args(argv)
    try:
        run(a.params, a.record, a.pipeline)
    except (ParamsError, PipelineStale) as e:
        print(e, file=sys.stderr)
        return 1
    print(f"{a.params}: valid")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
