"""GGUF files: the checks before llama.cpp opens one, and what a file really holds.

llama.cpp silently falls back to another type for tensors whose rows are not a
multiple of the type's block size, so every quantized file is inspected and its
real tensor types and bits per weight are recorded. The constants of that rule
live here, once.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import gguf
import numpy as np

from ..config.base import base_type

#: the four bytes every GGUF file starts with
GGUF_MAGIC = b"GGUF"
#: K-quants pack rows in super-blocks of this many weights; other rows fall back to a legacy type (gguf-py's)
QK_K = gguf.QK_K


def block_bpw(qtype: str) -> float | None:
    """Bits per weight of a llama.cpp type's own blocks (gguf-py's block sizes): the tensor type a file type is
    named after (``Q4_K_M`` -> ``Q4_K``, ``Q2_K-imat`` -> ``Q2_K``); None for a name gguf-py does not know."""
    name = base_type(qtype)
    for candidate in (name, name.rsplit("_", 1)[0]):
        member = gguf.GGMLQuantizationType.__members__.get(candidate)
        if member is not None:
            block, size = gguf.GGML_QUANT_SIZES[member]
            return 8 * size / block
    return None


class ModelFileError(ValueError):
    """A model file that llama.cpp cannot load; the message names the file."""


def check_gguf(path: str | Path) -> Path:
    """Fail early, naming the file, when it is missing, truncated or not GGUF."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: model file not found")
    with path.open("rb") as f:
        magic = f.read(4)
    if magic != GGUF_MAGIC:
        raise ModelFileError(f"{path}: not a GGUF file (starts with {magic!r}, expected {GGUF_MAGIC!r})")
    return path


def inspect_gguf(path: Path) -> dict:
    """The tensor types a GGUF file really holds, and its bits per weight.

    ``bpw`` counts every tensor (embeddings and norms included), as llama.cpp's
    model size divided by its parameter count does. ``kquant_eligible_share`` is
    the share of matrix weights whose rows are a multiple of :data:`QK_K` (256), the only ones
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
            eligible += ne if int(t.shape[0]) % QK_K == 0 else 0
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


#: largest difference (relative to a tensor's largest weight) between a base model's F32 file and the GGUF file
#: it was dequantized from: float rounding only (SmolLM2's is bit-identical)
ORIGIN_TOLERANCE = 1e-5


def compare_with_origin(f32: Path, origin: Path) -> dict:
    """How far the F32 file of a base model is from the GGUF file it was dequantized from, tensor by tensor.

    Every tensor of ``origin`` is dequantized with gguf-py and compared with the F32 file's tensor of the same
    name (over the rows both have: the converter drops a vocabulary's unused rows). Norm weights may differ by
    float rounding where a loader takes an offset out and the converter puts it back (Gemma's ``1 + w``)."""
    from gguf import GGUFReader
    from gguf.quants import dequantize

    ours = {t.name: t for t in GGUFReader(check_gguf(f32)).tensors}
    worst, compared, missing = 0.0, 0, []
    per_type: dict[str, float] = defaultdict(float)
    for t in GGUFReader(check_gguf(origin)).tensors:
        if t.name not in ours:
            missing.append(t.name)
            continue
        want = dequantize(t.data, t.tensor_type).reshape(-1, int(t.shape[0])).astype(np.float64)
        have = np.asarray(ours[t.name].data, dtype=np.float64).reshape(-1, int(t.shape[0]))
        rows = min(len(want), len(have))
        diff = float(np.abs(want[:rows] - have[:rows]).max()) if rows else 0.0
        scale = float(np.abs(want[:rows]).max()) or 1.0
        rel = diff / scale
        worst = max(worst, rel)
        per_type[t.tensor_type.name] = max(per_type[t.tensor_type.name], rel)
        compared += 1
    return {"origin": origin.name, "tensors_compared": compared, "tensors_missing": missing,
            "max_rel_diff": worst, "max_rel_diff_by_type": dict(per_type)}
