"""Stage ``params``: validate ``params.yaml`` before any other stage runs.

``python -m edgellm.stages.params params.yaml --record results/params.json``.
Every other stage depends on the record, so ``dvc repro`` runs this first: a bad
value stops it with the schema's one message before DVC removes any stage's
outputs. The record's bytes do not depend on the values (a valid change of a
parameter reruns only the stages that use it), and it is written atomically.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import ParamsError, load_params
from ..io import write_json

#: what the record says: the same for every valid params.yaml
RECORD = {"schema": "edgellm.config.Params", "valid": True}


def run(params_path: str | Path, record: str | Path | None = None) -> None:
    """Raise :class:`ParamsError` for a bad file; write ``record`` for a good one."""
    load_params(params_path)
    if record is not None:
        write_json(record, RECORD)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m edgellm.stages.params", description="Validate params.yaml.")
    ap.add_argument("params", nargs="?", default="params.yaml")
    ap.add_argument("--record", help="write the validation record here (only when the file is valid)")
    a = ap.parse_args(argv)
    try:
        run(a.params, a.record)
    except ParamsError as e:
        print(e, file=sys.stderr)
        return 1
    print(f"{a.params}: valid")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
