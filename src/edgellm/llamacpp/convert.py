"""Hugging Face checkpoint -> GGUF with llama.cpp's own tools.

Conversion uses the ``convert_hf_to_gguf.py`` and ``gguf-py`` vendored in the
llama-cpp-python sdist (the same llama.cpp revision as the runtime), and
quantization uses ``llama-quantize`` built from that tree; :mod:`.gguf` then
records what each output really holds.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..io import atomic_path
from .gguf import check_gguf
from .tools import llama_cpp_home, run_tool, tool


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
        run_tool(
            [sys.executable, str(home / "src" / "convert_hf_to_gguf.py"), str(hf_dir),
             "--outfile", str(tmp), "--outtype", outtype],
            f"convert_hf_to_gguf.py on {hf_dir}", env,
        )
    return check_gguf(out)


def quantize(src: Path, out: Path, qtype: str, threads: int, imatrix: Path | None = None,
             root: Path | None = None, allow_requantize: bool = False) -> Path:
    """``llama-quantize`` src -> out at ``qtype``, optionally guided by an importance matrix.

    ``allow_requantize``: ``src`` may itself be quantized (the bundle check dequantizes a deployed file to F32).
    """
    check_gguf(src)
    cmd = [str(tool("llama-quantize", root))]
    if allow_requantize:
        cmd.append("--allow-requantize")
    if imatrix is not None:
        cmd += ["--imatrix", str(imatrix)]
    with atomic_path(out) as tmp:
        run_tool(cmd + [str(src), str(tmp), qtype, str(threads)], f"llama-quantize to {qtype}")
    return check_gguf(out)


def compute_imatrix(model: Path, text_file: Path, out: Path, chunks: int, n_ctx: int, threads: int,
                    root: Path | None = None) -> Path:
    """``llama-imatrix`` over the calibration text."""
    with atomic_path(out) as tmp:
        run_tool([str(tool("llama-imatrix", root)), "-m", str(model), "-f", str(text_file), "-o", str(tmp),
              "--chunks", str(chunks), "-c", str(n_ctx), "-t", str(threads), "--no-ppl"],
             "llama-imatrix")
    return out
