"""Hugging Face checkpoint -> GGUF with llama.cpp's own tools.

Conversion uses the ``convert_hf_to_gguf.py`` and ``gguf-py`` vendored in the
llama-cpp-python sdist (the same llama.cpp revision as the runtime), and
quantization uses ``llama-quantize`` built from that tree; :mod:`.gguf` then
records what each output really holds.
"""

from __future__ import annotations

import json
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
    pattern = swa_pattern(json.loads((hf_dir / "config.json").read_text()))
    with atomic_path(out) as tmp:
        raw = tmp.with_name(tmp.name + ".raw") if pattern else tmp
        try:
            run_tool(
                [sys.executable, str(home / "src" / "convert_hf_to_gguf.py"), str(hf_dir),
                 "--outfile", str(raw), "--outtype", outtype],
                f"convert_hf_to_gguf.py on {hf_dir}", env,
            )
            if pattern:
                write_swa_pattern(raw, tmp, pattern)
        finally:
            if raw != tmp:
                raw.unlink(missing_ok=True)
    return check_gguf(out)


def swa_pattern(config: dict) -> list[bool] | None:
    """Per block, whether it attends through the sliding window (Gemma 3's ``layer_types``), or None for a
    model without sliding-window blocks."""
    types = config.get("layer_types") or []
    return [t == "sliding_attention" for t in types] if "sliding_attention" in types else None


def write_swa_pattern(src: Path, out: Path, pattern: list[bool]) -> Path:
    """``src`` with ``<arch>.attention.sliding_window_pattern`` set to the per-block list, written to ``out``.

    llama.cpp's converter writes no pattern for Gemma 3, and the runtime then assumes one global block in six
    (and gives it the global RoPE base). After depth pruning that rule no longer matches the blocks kept, so the
    list the checkpoint's config holds goes into the file, where the runtime reads it first."""
    import gguf
    from gguf.scripts.gguf_new_metadata import MetadataDetails, copy_with_new_metadata

    reader = gguf.GGUFReader(src)
    arch = reader.fields[gguf.Keys.General.ARCHITECTURE].contents()
    key = gguf.Keys.Attention.SLIDING_WINDOW_PATTERN.format(arch=arch)
    writer = gguf.GGUFWriter(out, arch=arch, endianess=reader.endianess)
    copy_with_new_metadata(reader, writer, {key: MetadataDetails(gguf.GGUFValueType.ARRAY, list(pattern))}, [])
    return out


def quantize(src: Path, out: Path, qtype: str, threads: int, imatrix: Path | None = None,
             root: Path | None = None, allow_requantize: bool = False, embedding_type: str | None = None) -> Path:
    """``llama-quantize`` src -> out at ``qtype``, optionally guided by an importance matrix.

    ``allow_requantize``: ``src`` may itself be quantized (the bundle check dequantizes a deployed file to F32).
    ``embedding_type``: the tensor type of the token embedding and the output head, apart from ``qtype``'s
    choice (on a model with tied embeddings the one matrix is both, and holds most of its bytes).
    """
    check_gguf(src)
    cmd = [str(tool("llama-quantize", root))]
    if allow_requantize:
        cmd.append("--allow-requantize")
    if imatrix is not None:
        cmd += ["--imatrix", str(imatrix)]
    if embedding_type is not None:
        cmd += ["--token-embedding-type", embedding_type, "--output-tensor-type", embedding_type]
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
