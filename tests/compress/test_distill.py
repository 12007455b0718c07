"""Knowledge distillation (``edgellm.compress.distill``) of a depth-pruned tiny Llama from its teacher."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgellm.compress.activations import token_batches
from edgellm.compress.distill import data_order, distill, heldout_kl
from edgellm.compress.prune import prune_depth
from edgellm.config import DistillSettings

from .tiny import ROWS, SEQ


def _kd_setup(text_ids, teacher):
    student, _ = prune_depth(teacher, token_batches(text_ids, SEQ, ROWS * SEQ, 4), 2)
    rows = text_ids[: (len(text_ids) // SEQ) * SEQ].view(-1, SEQ)
    return student, rows[:-8], rows[-8:]


def test_distillation_lowers_heldout_kl(tmp_path, text_ids, teacher):
    student, train, held = _kd_setup(text_ids, teacher)
    before = heldout_kl(student, teacher, held, 4)
    cfg = DistillSettings(tokens=40 * 4 * SEQ, seq_len=SEQ, batch_size=4, lr=3e-3, checkpoint_every=100,
                      eval_every=20)
    res = distill(student, teacher, train, held, cfg, tmp_path, seed=0, progress=False)
    after = heldout_kl(student, teacher, held, 4)
    assert res["complete"] and res["steps_done"] == 40
    assert after < 0.5 * before
    assert res["history"][-1]["heldout_kl"] == pytest.approx(after, rel=1e-5)
    assert [h["step"] for h in res["history"]] == list(range(41))


def test_resumed_distillation_equals_uninterrupted(tmp_path, text_ids, teacher):
    cfg = DistillSettings(tokens=6 * 2 * SEQ, seq_len=SEQ, batch_size=2, lr=1e-3, checkpoint_every=2, eval_every=3)
    a, train, held = _kd_setup(text_ids, teacher)
    full = distill(a, teacher, train, held, cfg, tmp_path / "a", seed=3, progress=False)

    b, _, _ = _kd_setup(text_ids, teacher)
    part = distill(b, teacher, train, held, cfg, tmp_path / "b", seed=3, progress=False, stop_after=4)
    assert not part["complete"] and part["steps_done"] == 4
    b2, _, _ = _kd_setup(text_ids, teacher)  # a fresh process would start from the pruned weights again
    rest = distill(b2, teacher, train, held, cfg, tmp_path / "b", seed=3, progress=False)
    assert rest["complete"]
    for (k, x), (_, y) in zip(a.state_dict().items(), b2.state_dict().items()):
        assert torch.equal(x, y), k
    strip = lambda h: [{k: v for k, v in r.items()} for r in h]
    assert strip(rest["history"]) == strip(full["history"])


def test_distillation_data_order_is_seeded():
    a, b, c = data_order(10, 7, 3, 1), data_order(10, 7, 3, 1), data_order(10, 7, 3, 2)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert sorted(a.flatten()[:10].tolist()) == list(range(10))  # each epoch is a permutation


def test_distillation_keeps_2_of_4_sparsity(tmp_path, text_ids, teacher):
    """A Wanda 2:4 student stays 2:4 sparse through distillation (the optimiser would regrow its zeros)."""
    import copy

    from edgellm.compress.prune import prune_unstructured

    student = copy.deepcopy(teacher)
    prune_unstructured(student, "wanda", pattern="2:4", batches=token_batches(text_ids, SEQ, ROWS * SEQ, 4))
    zeros = {n: (p == 0).clone() for n, p in student.named_parameters() if p.dim() == 2 and (p == 0).float().mean() > 0.4}
    assert zeros  # the block matrices are half zeros
    rows = text_ids[: (len(text_ids) // SEQ) * SEQ].view(-1, SEQ)
    held = rows[-8:]
    cfg = DistillSettings(tokens=10 * 4 * SEQ, seq_len=SEQ, batch_size=4, lr=3e-3, checkpoint_every=100)
    distill(student, teacher, rows[:-8], held, cfg, tmp_path, seed=0, progress=False)
    for n, p in student.named_parameters():
        if n in zeros:
            assert bool((p[zeros[n]] == 0).all()), n  # every pruned weight is still zero
            groups = (p.detach() != 0).reshape(-1, 4).sum(dim=1)
            assert int(groups.max()) <= 2, n  # at most 2 non-zeros in every group of 4
