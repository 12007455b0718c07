"""The ``block_kl`` stage's scores as the depth recipes read them: refused when they are of other settings."""

from __future__ import annotations

from ..paths import Layout
from ..records import BlockKLRecord


def scores_for(lay: Layout, model: str, calibration: dict, base_files: dict) -> list[float]:
    """The block scores of ``model`` from its ``block_kl`` record, which must be of these calibration
    settings and these base weights (else the stage is stale: one message that says which)."""
    rec = BlockKLRecord.load(lay.block_kl(model))
    if rec.calibration != calibration:
        raise ValueError(f"{lay.block_kl(model)}: computed with compress.calibration {rec.calibration}, the study "
                         f"has {calibration}; run `dvc repro block_kl`")
    if rec.dump()["base_files"] != base_files:
        raise ValueError(f"{lay.block_kl(model)}: computed on other weights than {lay.checkpoint(model)}; "
                         "run `dvc repro block_kl`")
    return list(rec.scores)
