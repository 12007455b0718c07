"""Hugging Face checkpoint -> GGUF with llama.cpp's own tools, and what each file really holds.

Conversion uses the ``convert_hf_to_gguf.py`` and ``gguf-py`` vendored in the
llama-cpp-python sdist (the same llama.cpp revision as the runtime), and
quantization uses ``llama-quantize`` built from that tree. llama.cpp silently
falls back to another type for tensors whose rows are not a multiple of the
type's block size (256 for K-quants), so every output is inspected and its real
tensor types and bits per weight are recorded.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from .io import atomic_path
from .runtime import check_gguf

LLAMA_CPP_ENV = "EDGELLM_LLAMA_CPP"


class ToolchainError(RuntimeError):
    """llama.cpp's source tree or tools are missing; ``make tools`` builds them."""


def llama_cpp_home(root: Path | None = None) -> Path:
    """The folder with llama.cpp's source (``src/``) and built tools (``bin/``)."""
    if os.environ.get(LLAMA_CPP_ENV):
        home = Path(os.environ[LLAMA_CPP_ENV])
    else:
        from .config import project_root

        home = (root or project_root()) / ".llama.cpp"
    if not (home / "src" / "convert_hf_to_gguf.py").is_file():
        raise ToolchainError(f"llama.cpp source not found in {home}/src; run `make tools` (or set {LLAMA_CPP_ENV})")
    return home


def tool(name: str, root: Path | None = None) -> Path:
    path = llama_cpp_home(root) / "bin" / name
    if not path.is_file():
        raise ToolchainError(f"{path} not found; run `make tools`")
    return path


def _run(cmd: list[str], what: str, env: dict | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise RuntimeError(f"{what} failed (exit {proc.returncode}): {' '.join(map(str, cmd))}\n{tail}")
    return proc


def convert_hf(hf_dir: Path, out: Path, outtype: str = "f32", root: Path | None = None) -> Path:
    """Run llama.cpp's converter with its own gguf-py (not PyPI's) on a checkpoint."""
    hf_dir = Path(hf_dir)
    if not (hf_dir / "config.json").is_file():
        raise FileNotFoundError(f"{hf_dir}: not a Hugging Face checkpoint (no config.json)")
    home = llama_cpp_home(root)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(home / "src" / "gguf-py"), env.get("PYTHONPATH", "")])
    env["NO_LOCAL_GGUF"] = ""
    with atomic_path(out) as tmp:
        _run(
            [sys.executable, str(home / "src" / "convert_hf_to_gguf.py"), str(hf_dir),
             "--outfile", str(tmp), "--outtype", outtype],
            f"convert_hf_to_gguf.py on {hf_dir}", env,
        )
    return check_gguf(out)


def quantize(src: Path, out: Path, qtype: str, threads: int, imatrix: Path | None = None,
             root: Path | None = None) -> Path:
    """``llama-quantize`` src -> out at ``qtype``, optionally guided by an importance matrix."""
    check_gguf(src)
    cmd = [str(tool("llama-quantize", root))]
    if imatrix is not None:
        cmd += ["--imatrix", str(imatrix)]
    with atomic_path(out) as tmp:
        _run(cmd + [str(src), str(tmp), qtype, str(threads)], f"llama-quantize to {qtype}")
    return check_gguf(out)


def compute_imatrix(model: Path, text_file: Path, out: Path, chunks: int, n_ctx: int, threads: int,
                    root: Path | None = None) -> Path:
    """``llama-imatrix`` over the calibration text."""
    with atomic_path(out) as tmp:
        _run([str(tool("llama-imatrix", root)), "-m", str(model), "-f", str(text_file), "-o", str(tmp),
              "--chunks", str(chunks), "-c", str(n_ctx), "-t", str(threads), "--no-ppl"],
             "llama-imatrix")
    return out


def inspect_gguf(path: Path) -> dict:
    """The tensor types a GGUF file really holds, and its bits per weight.

    ``bpw`` counts every tensor (embeddings and norms included), as llama.cpp's
    model size divided by its parameter count does. ``kquant_eligible_share`` is
    the share of matrix weights whose rows are a multiple of 256, the only ones
    a K-quant can be applied to.
    """
    from gguf import GGUFReader  # PyPI gguf reads files; conversion uses the vendored copy

    r = GGUFReader(check_gguf(path))  # slow (it parses the whole vocabulary): read once
    by_type: dict[str, dict] = defaultdict(lambda: {"tensors": 0, "params": 0, "bytes": 0})
    n_params = n_bytes = 0
    mat_params = eligible = 0
    for t in r.tensors:
        name = t.tensor_type.name
        ne = int(t.n_elements)
        nb = int(t.n_bytes)
        by_type[name]["tensors"] += 1
        by_type[name]["params"] += ne
        by_type[name]["bytes"] += nb
        n_params += ne
        n_bytes += nb
        if len(t.shape) >= 2 and int(t.shape[1]) > 1:
            mat_params += ne
            eligible += ne if int(t.shape[0]) % 256 == 0 else 0
    ftype = r.fields.get("general.file_type")
    return {
        "file_bytes": path.stat().st_size,
        "tensor_bytes": n_bytes,
        "n_params": n_params,
        "bpw": 8.0 * n_bytes / n_params,
        "n_tensors": len(r.tensors),
        "file_type": int(ftype.contents()) if ftype is not None else None,
        "tensor_types": {k: dict(v) for k, v in sorted(by_type.items(), key=lambda kv: -kv[1]["params"])},
        "kquant_eligible_share": eligible / mat_params if mat_params else 0.0,
        # every tensor: the full record a reader can audit
        "tensors": [
            {"name": t.name, "shape": [int(x) for x in t.shape], "type": t.tensor_type.name, "bytes": int(t.n_bytes)}
            for t in r.tensors
        ],
    }


def tool_versions(root: Path | None = None) -> dict:
    """The llama.cpp build the tools came from (recorded with every result)."""
    try:
        # llama-quantize has no --version; llama-perplexity is built from the same tree
        proc = subprocess.run([str(tool("llama-perplexity", root)), "--version"], capture_output=True, text=True)
        text = (proc.stdout + proc.stderr).strip().splitlines()
        return {"llama.cpp": " ".join(line.strip() for line in text if line.startswith(("version", "built")))}
    except ToolchainError:
        return {"llama.cpp": None}
