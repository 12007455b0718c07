"""Compression recipes (``edgellm.compress.recipe``): the texts a recipe trains and calibrates on."""

from __future__ import annotations

import pytest
import torch

from edgellm.compress.recipe import calibration_batches, split_text, teacher_text
from edgellm.config import CalibrationSettings, DistillSettings


def test_teacher_text_is_seeded_and_full_length(teacher):
    a = teacher_text(teacher, 3, 12, seed=5, bos_id=1, batch_size=2)
    b = teacher_text(teacher, 3, 12, seed=5, bos_id=1, batch_size=2)
    c = teacher_text(teacher, 3, 12, seed=6, bos_id=1, batch_size=2)
    assert a.shape == (3, 12) and torch.all(a[:, 0] == 1)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_recipe_text_splits_are_disjoint():
    ids = list(range(10_000))
    calib = CalibrationSettings(tokens=1000, seq_len=100)
    parts = split_text(ids, calib, DistillSettings(seq_len=64, heldout_rows=4))
    cal = set(torch.cat(calibration_batches(ids, calib)).flatten().tolist())
    train, held = (set(parts[k].flatten().tolist()) for k in ("train", "heldout"))
    assert len(cal) == 1000 and len(held) == 4 * 64 and not (cal & train) and not (train & held) and not (cal & held)
    with pytest.raises(ValueError, match="calibration text has"):
        split_text(ids[:1100], CalibrationSettings(tokens=1000, seq_len=100), DistillSettings(seq_len=64, heldout_rows=4))
