"""Stage ``convert@<checkpoint>``: checkpoint -> F32 GGUF (the exact weights), and the importance matrix."""

from __future__ import annotations

from pathlib import Path

from ..io import atomic_dir, write_json
from ..llamacpp.convert import compute_imatrix, convert_hf
from ..llamacpp.gguf import ORIGIN_TOLERANCE, compare_with_origin, inspect_gguf
from ..models import ORIGIN_FILE
from .common import context, study_checkpoint


def run(model: str, params_path: str | Path | None = None) -> dict:
    """Every type is quantized from this file, so the F32 conversion is the only lossy-free step."""
    params, lay = context(params_path)
    out = convert_hf(lay.checkpoint(model), lay.f32(model), "f32", lay.root)
    record = inspect_gguf(out)
    record.pop("tensors")
    origin = lay.checkpoint(model) / ORIGIN_FILE
    if origin.is_file():  # a base model dequantized from a GGUF file: its F32 file must hold the same weights
        record["origin_check"] = check = compare_with_origin(out, origin)
        if check["tensors_missing"] or check["max_rel_diff"] > ORIGIN_TOLERANCE:
            raise ValueError(f"{out}: differs from {origin} (max relative difference {check['max_rel_diff']:.2e}, "
                             f"tolerance {ORIGIN_TOLERANCE:g}; missing tensors {check['tensors_missing'][:5]})")
    return record


def run_imatrix(model: str, params_path: str | Path | None = None) -> dict:
    """Importance matrix from the calibration text, or a record that none is used.

    Every base model gets one (half a minute for a small model), so that adding or removing an ``-imat`` type
    reruns no conversion; a compressed checkpoint only when one of its types asks for it."""
    params, lay = context(params_path)
    # the settings of the computation, whether or not this checkpoint's table entry asks for it (a stage's params
    # deps are the same for every checkpoint)
    cfg, threads = params.quantization.imatrix, params.threads
    with atomic_dir(lay.imatrix_dir(model)) as tmp:
        info = {"enabled": study_checkpoint(lay, model)["imatrix"], **cfg.model_dump()}
        if info["enabled"]:
            compute_imatrix(lay.f32(model), lay.calibration, tmp / lay.imatrix(model).name, cfg.chunks, cfg.n_ctx,
                            threads, lay.root)
        write_json(tmp / "info.json", info)
    return info
