"""Every notebook stage's command: run a source notebook with papermill, commit-ready.

``python -m edgellm.stages.notebook 05_evaluate variant=smollm2-135m-F16`` runs ``notebooks/05_evaluate.ipynb``
with the parameter ``variant`` and writes the executed copy a reader opens,
``results/notebooks/05_evaluate-smollm2-135m-F16.ipynb`` (:mod:`edgellm.stages.publish`: byte-stable, no run
times). The stage's run time goes to ``models/work/stage-times.jsonl`` (scratch, not an output), which
``benchmarks/study_time.py`` reads, and the parameter keys it read to ``models/work/params-reads/<name>.txt``,
which the tests hold against the stage's params deps in ``dvc.yaml``. ``dvc.yaml`` writes this command once per
stage kind.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from ..config.base import READS_ENV
from ..paths import Layout, project_root
from .publish import publish


def executed_name(notebook: str, parameters: dict[str, str]) -> str:
    """``<notebook>-<value>-...``: the executed copy's stem (parameters in the order given)."""
    return "-".join([notebook, *parameters.values()])


def _parameter(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier() or not value:
        raise argparse.ArgumentTypeError(f"{text!r}: a parameter is NAME=VALUE")
    return key, value


def run(notebook: str, parameters: dict[str, str], root: Path | None = None) -> Path:
    """Execute ``notebooks/<notebook>.ipynb`` with ``parameters``; return the committed copy's path."""
    import papermill

    root = Path(root) if root else project_root()
    lay = Layout(root)
    source = root / "notebooks" / f"{notebook}.ipynb"
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such notebook")
    target = lay.executed_notebook(executed_name(notebook, parameters))
    reads = lay.params_reads(target.stem)
    reads.parent.mkdir(parents=True, exist_ok=True)
    reads.write_text("")
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{target.stem}.ipynb"
        # the kernel inherits the environment: its stage records every parameter it reads (config.base)
        os.environ[READS_ENV] = str(reads)
        try:
            papermill.execute_notebook(str(source), str(out), parameters=parameters, cwd=str(root),
                                       log_output=False, progress_bar=False)
        finally:
            os.environ.pop(READS_ENV, None)
        publish(out, root, target)
    log = lay.stage_times
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as f:
        f.write(json.dumps({"notebook": target.name, "start": started.isoformat(),
                            "seconds": round(time.perf_counter() - t0, 3)}) + "\n")
    return target


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m edgellm.stages.notebook", description=__doc__.split("\n\n")[0])
    ap.add_argument("notebook", help="a notebook under notebooks/, without .ipynb (e.g. 05_evaluate)")
    ap.add_argument("parameters", nargs="*", type=_parameter, metavar="NAME=VALUE")
    a = ap.parse_args(argv)
    print(run(a.notebook, dict(a.parameters)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
