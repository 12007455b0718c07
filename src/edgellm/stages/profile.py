"""Stage ``profile@<variant>``: speed, memory and (where readable) energy of one GGUF file on this host."""

from __future__ import annotations

from pathlib import Path

from ..devices.bench import profile_in_subprocess
from ..devices.host import host_info
from ..provenance import versions
from ..records import ProfileRecord
from .common import context, study_variant, variant_fields


def run(variant: str, params_path: str | Path | None = None) -> dict:
    params, lay = context(params_path)
    v = study_variant(lay, variant)
    pr = params.profile
    res = profile_in_subprocess(lay.gguf(v.checkpoint, v.qtype), threads=pr.threads, n_prompt=pr.n_prompt,
                                n_gen=pr.n_gen, reps=pr.repetitions, ttft_prompt=pr.ttft_prompt, seed=params.seed)
    record = {**variant_fields(v), "device": host_info(), "measured": True, **res, "versions": versions()}
    ProfileRecord.model_validate(record).write(lay.profile_record(variant))
    return record
