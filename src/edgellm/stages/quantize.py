"""Stage ``quantize@<variant>``: llama-quantize from the F32 file, and what the output really holds."""

from __future__ import annotations

from pathlib import Path

from ..records import GgufRecord
from ..llamacpp.convert import quantize
from ..llamacpp.gguf import inspect_gguf
from .common import context, study_variant, variant_fields


def run(variant: str, params_path: str | Path | None = None) -> dict:
    params, lay = context(params_path)
    v = study_variant(lay, variant)
    imatrix = lay.imatrix(v.checkpoint)
    if v.imatrix and not imatrix.is_file():
        raise FileNotFoundError(f"{imatrix}: {variant} needs the importance matrix; run the convert stage")
    out = quantize(lay.f32(v.checkpoint), lay.gguf(v.checkpoint, v.qtype), v.llama_type, params.threads,
                   imatrix if v.imatrix else None, lay.root, embedding_type=v.embedding_type)
    record = {**variant_fields(v), "imatrix": v.imatrix, **inspect_gguf(out)}
    GgufRecord.model_validate(record).write(lay.gguf_record(variant))
    return record
