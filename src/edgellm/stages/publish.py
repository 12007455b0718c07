"""The readable copy of an executed notebook: ``results/executed/<name>.html``, committed to git.

Every notebook stage runs ``papermill`` into ``results/notebooks/`` (DVC's cache: the full record, run times
included, which ``benchmarks/study_time.py`` reads), then this module renders the copy a reader opens on the
repository without running anything (nbconvert's ``basic`` HTML template: no stylesheet, a few kB of markup
around the outputs; committed notebooks themselves stay cleared). Before rendering:

- volatile metadata goes (papermill's and each cell's start and end times and durations, Jupyter's execution
  timestamps), so a rerun with the same results changes as few bytes as possible;
- progress bars go (their stderr carries rates and times);
- cells are numbered by position (a source notebook without cell ids gets random ones from nbformat in every
  papermill run, which would rewrite the page of an unchanged rerun);
- an embedded image whose bytes are a file of the repository (the report shows ``figures/*.png`` with
  ``IPython.display.Image``) becomes a link to that file: no figure is stored twice;
- an output over ``MAX_OUTPUT_BYTES`` is replaced by a note (the full one is in the DVC-cached notebook).

``python -m edgellm.stages.publish results/notebooks/X.ipynb`` writes ``results/executed/X.html``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter

from ..io import sha256_file, write_text

#: an output larger than this (its JSON) is left out of the readable copy
MAX_OUTPUT_BYTES = 200_000
#: repository folders whose files an embedded image may duplicate
SHARED_DIRS = ("figures",)
_PROGRESS = re.compile(r"\d+%\|.*\|")


def _file_index(root: Path) -> dict[str, Path]:
    """sha256 of every file under the shared folders -> its path."""
    out = {}
    for d in SHARED_DIRS:
        for p in sorted((root / d).rglob("*")) if (root / d).is_dir() else []:
            if p.is_file():
                out[sha256_file(p)] = p
    return out


def _is_progress(out: dict) -> bool:
    return out.get("output_type") == "stream" and out.get("name") == "stderr" and bool(
        _PROGRESS.search("".join(out.get("text", ""))))


def _link_images(out: dict, files: dict[str, Path], here: Path) -> dict:
    data = out.get("data", {})
    png = data.get("image/png")
    if not png:
        return out
    digest = hashlib.sha256(base64.b64decode("".join(png))).hexdigest()
    if digest not in files:
        return out
    rel = Path(os.path.relpath(files[digest], here)).as_posix()
    return {"output_type": "display_data", "metadata": {},
            "data": {"text/markdown": f"![{files[digest].name}]({rel})", "text/plain": f"[{rel}]"}}


def _cap(out: dict) -> dict:
    size = len(json.dumps(out))
    if size <= MAX_OUTPUT_BYTES:
        return out
    return {"output_type": "stream", "name": "stdout",
            "text": f"[an output of {size // 1000} kB is left out of this copy; it is in the DVC-cached notebook "
                    f"under results/notebooks/]\n"}


def readable(nb: dict, root: Path, here: Path) -> dict:
    """The notebook without volatile metadata, progress bars, duplicated figures and oversized outputs."""
    files = _file_index(root)
    nb = json.loads(json.dumps(nb))
    pm = nb.get("metadata", {}).get("papermill", {})
    for key in ("start_time", "end_time", "duration", "environment_variables"):
        pm.pop(key, None)
    nb.get("metadata", {}).pop("widgets", None)
    # cell ids by position: a source notebook without ids gets random ones in every papermill run (nbformat
    # fills them in), and the HTML would change with every rerun of an unchanged stage
    nb["nbformat_minor"] = max(nb.get("nbformat_minor", 0), 5)
    for i, cell in enumerate(nb["cells"]):
        cell["id"] = f"cell-{i}"
    for cell in nb["cells"]:
        meta = cell.get("metadata", {})
        meta.pop("papermill", None)
        meta.pop("execution", None)
        if cell["cell_type"] == "code":
            cell["outputs"] = [_cap(_link_images(o, files, here)) for o in cell.get("outputs", []) if not _is_progress(o)]
    return nb


def render(nb: dict) -> str:
    """The notebook as HTML (nbconvert's ``basic`` template: the cells and outputs, no page styling)."""
    body, _ = HTMLExporter(template_name="basic").from_notebook_node(nbformat.reads(json.dumps(nb), as_version=4))
    return body


def publish(executed: Path, root: Path, out_dir: Path | None = None) -> Path:
    out_dir = out_dir or root / "results" / "executed"
    target = out_dir / f"{executed.stem}.html"
    write_text(target, render(readable(json.loads(executed.read_text()), root, out_dir)))
    return target


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m edgellm.stages.publish", description=__doc__.split("\n\n")[0])
    ap.add_argument("executed", nargs="+", type=Path, help="executed notebook(s) under results/notebooks/")
    ap.add_argument("--root", type=Path, default=Path("."), help="the repository (default: the current directory)")
    a = ap.parse_args(argv)
    for path in a.executed:
        if not path.is_file():
            ap.error(f"{path}: no such executed notebook")
        publish(path, a.root.resolve())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
