"""The block_kl stage's record, as the compress stages read it (``edgellm.compress.block_scores.scores_for``)."""

from __future__ import annotations

import pytest

from edgellm.paths import Layout
from edgellm.records import BlockKLRecord, RecordMissing
from edgellm.compress.block_scores import scores_for

CALIB = {"tokens": 2048, "seq_len": 256}
FILES = {"model.safetensors": {"bytes": 10, "sha256": "ab" * 32}}


def _write(lay: Layout, calibration: dict = CALIB, files: dict = FILES) -> None:
    BlockKLRecord.model_validate({"model": "m", "scores": [0.3, 0.1, 0.2], "calibration": calibration,
                                  "base_files": files, "seconds": 1.0}).write(lay.block_kl("m"))


def test_a_compress_stage_reads_the_scores_of_its_own_base_and_calibration(tmp_path):
    lay = Layout(tmp_path)
    _write(lay)
    assert scores_for(lay, "m", CALIB, FILES) == [0.3, 0.1, 0.2]


def test_scores_of_other_calibration_or_other_weights_are_refused_with_the_file_named(tmp_path):
    lay = Layout(tmp_path)
    with pytest.raises(RecordMissing, match=r"block_kl/m.json: block KL record missing; run its stage \(dvc repro block_kl\)"):
        scores_for(lay, "m", CALIB, FILES)
    _write(lay, calibration={"tokens": 1024, "seq_len": 256})
    with pytest.raises(ValueError, match=r"block_kl/m.json: computed with compress.calibration .*1024"):
        scores_for(lay, "m", CALIB, FILES)
    _write(lay, files={"model.safetensors": {"bytes": 10, "sha256": "cd" * 32}})
    with pytest.raises(ValueError, match=r"block_kl/m.json: computed on other weights"):
        scores_for(lay, "m", CALIB, FILES)
