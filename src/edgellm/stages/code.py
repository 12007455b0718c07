"""Stage ``code``: one fingerprint per stage of the library files it runs and the toolchain (:mod:`edgellm.codedeps`).

``python -m edgellm.stages.code --out results/code``. Every other stage depends on its own fingerprint
instead of on each module, so ``dvc.lock`` stays small; the fingerprints' bytes change only when a file that
stage runs does, so this stage reruns on any edit of ``src/`` but the stages downstream only when their code
changed. A fingerprint that no stage has any more is removed; each is written atomically.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..codedeps import fingerprint, stage_code, toolchain
from ..io import write_text


def run(root: str | Path = ".", out: str | Path = "results/code") -> dict[str, list[str]]:
    root, out = Path(root), Path(out)
    if not out.is_absolute():
        out = root / out
    code = stage_code(root)
    tools = toolchain(root)
    out.mkdir(parents=True, exist_ok=True)
    for stale in set(out.glob("*.txt")) - {out / f"{name}.txt" for name in code}:
        stale.unlink()
    for name, files in code.items():
        text = fingerprint(root, files, tools)
        target = out / f"{name}.txt"
        if not target.is_file() or target.read_text() != text:
            write_text(target, text)
    return code


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m edgellm.stages.code",
                                 description="Write each stage's code fingerprint (the files it runs, hashed).")
    ap.add_argument("--root", default=".", help="the repository (src/edgellm and notebooks/ under it)")
    ap.add_argument("--out", default="results/code")
    a = ap.parse_args(argv)
    code = run(a.root, a.out)
    print(f"{len(code)} fingerprints in {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
