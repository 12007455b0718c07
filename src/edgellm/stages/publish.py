"""The executed notebook a reader opens: ``results/notebooks/<name>.ipynb``, committed to git.

A repository's web view renders an ``.ipynb`` with its outputs, so each notebook stage's executed copy is
committed as a notebook (the source notebooks under ``notebooks/`` stay cleared). What papermill wrote is
made byte-stable first, so a rerun with the same results rewrites the same bytes:

- volatile metadata goes: papermill's block (start and end times, durations, the input and output paths,
  the environment), each cell's run times, Jupyter's execution timestamps, the kernel's Python version;
- execution counts and cell ids are numbered by position (a source notebook without cell ids gets random
  ones from nbformat in every papermill run);
- progress bars go (their stderr carries rates and times);
- an embedded image whose bytes are a file of the repository (the report shows ``figures/*.png``) becomes a
  link to that file: no figure is stored twice;
- an output over :data:`MAX_OUTPUT_BYTES` is replaced by a note, and while the notebook is over
  :data:`MAX_NOTEBOOK_BYTES` its largest remaining output is too (the full values are in the stage's records).

The parameters a run was given stay (``metadata.parameters``): they say which variant the page is about.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from pathlib import Path

from ..io import sha256_file, write_text

#: an output larger than this (its JSON) is left out of the committed notebook
MAX_OUTPUT_BYTES = 200_000
#: the most a committed notebook may hold
MAX_NOTEBOOK_BYTES = 1_000_000
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


def _note(size: int) -> dict:
    return {"output_type": "stream", "name": "stdout",
            "text": f"[an output of {size // 1000} kB is left out of this copy; the stage's records hold its values]\n"}


def _cap(out: dict) -> dict:
    size = len(json.dumps(out))
    return out if size <= MAX_OUTPUT_BYTES else _note(size)


def _serialize(nb: dict) -> str:
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def readable(nb: dict, root: Path, here: Path) -> dict:
    """The notebook without volatile metadata, progress bars, duplicated figures and oversized outputs."""
    files = _file_index(root)
    nb = json.loads(json.dumps(nb))
    meta = nb.get("metadata", {})
    params = meta.get("papermill", {}).get("parameters", {})
    kernel = meta.get("kernelspec", {})
    nb["metadata"] = {"kernelspec": {k: kernel[k] for k in ("name", "display_name", "language") if k in kernel},
                      "language_info": {"name": meta.get("language_info", {}).get("name", "python")},
                      **({"parameters": params} if params else {})}
    nb["nbformat"], nb["nbformat_minor"] = 4, max(nb.get("nbformat_minor", 0), 5)
    count = 0
    for i, cell in enumerate(nb["cells"]):
        cell["id"] = f"cell-{i}"
        tags = cell.get("metadata", {}).get("tags")
        cell["metadata"] = {"tags": tags} if tags else {}
        if cell["cell_type"] == "code":
            count += 1
            cell["execution_count"] = count
            outs = [_cap(_link_images(o, files, here)) for o in cell.get("outputs", []) if not _is_progress(o)]
            for o in outs:
                if "execution_count" in o:
                    o["execution_count"] = count
            cell["outputs"] = outs
    # a size cap per notebook: the largest outputs give way first
    while len(_serialize(nb)) > MAX_NOTEBOOK_BYTES:
        sizes = [(len(json.dumps(o)), c, k) for c, cell in enumerate(nb["cells"]) if cell["cell_type"] == "code"
                 for k, o in enumerate(cell["outputs"])]
        size, c, k = max(sizes)
        if size <= len(json.dumps(_note(size))):
            break
        nb["cells"][c]["outputs"][k] = _note(size)
    return nb


def publish(executed: Path, root: Path, target: Path) -> Path:
    """Write the readable copy of the executed notebook ``executed`` to ``target``."""
    write_text(target, _serialize(readable(json.loads(Path(executed).read_text()), root, target.parent)))
    return target
