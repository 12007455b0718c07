"""A recipe of ``params.yaml`` (prune, then distill) applied to a base checkpoint.

The base model is both the model that is pruned and the teacher it is
distilled from. The LAMBADA development text (no test set) is cut into three
disjoint parts: the first tokens calibrate pruning, the last rows are held out
to measure the student's KL to the teacher, and the rows between are the
distillation text (unless the teacher writes its own, data-free, text).
"""

from __future__ import annotations

import copy
import csv
import time
from pathlib import Path

import torch

from ..config import CalibrationSettings, DepthPrune, DistillSettings, Recipe, UnstructuredPrune, WidthPrune
from ..io import atomic_path
from .activations import token_batches
from .distill import distill, heldout_kl
from .prune import block_drop_kl, count_params, prune_depth, prune_unstructured, prune_width


def width_targets(spec: WidthPrune, config) -> dict:
    """Absolute target sizes from sizes or shares, rounded down to ``align`` where asked."""

    def size(value, original: int) -> int | None:
        if value is None:
            return None
        n = int(value * original) if isinstance(value, float) else int(value)
        if spec.align > 1:
            n = max(spec.align, n // spec.align * spec.align)
        return min(n, original)

    return {"hidden_size": size(spec.hidden_size, config.hidden_size),
            "intermediate_size": size(spec.intermediate_size, config.intermediate_size),
            "num_heads": spec.num_heads, "num_kv_heads": spec.num_kv_heads}


def apply_prune(model, spec, batches: list[torch.Tensor], kl_scores: list[float] | None = None):
    """(pruned model, record); unstructured methods prune in place and return the same model.
    ``kl_scores``: the base model's :func:`block_kl_scores`, for depth pruning by ``kl``."""
    if isinstance(spec, UnstructuredPrune):
        return model, prune_unstructured(model, spec.method, spec.sparsity, spec.pattern, batches)
    if isinstance(spec, DepthPrune):
        return prune_depth(model, batches, spec.layers, spec.importance, kl_scores)
    if isinstance(spec, WidthPrune):
        return prune_width(model, batches, **width_targets(spec, model.config))
    raise TypeError(f"unknown pruning spec {spec!r}")


@torch.no_grad()
def teacher_text(teacher, n_rows: int, seq_len: int, seed: int, bos_id: int, batch_size: int = 16) -> torch.Tensor:
    """Data-free distillation text (LLM-QAT): sequences the teacher samples from its own distribution."""
    torch.manual_seed(seed)
    rows = []
    for start in range(0, n_rows, batch_size):
        n = min(batch_size, n_rows - start)
        prompt = torch.full((n, 1), bos_id, dtype=torch.long)
        out = teacher.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), do_sample=True, top_k=0,
                               top_p=1.0, temperature=1.0, max_new_tokens=seq_len - 1, min_new_tokens=seq_len - 1,
                               pad_token_id=bos_id)
        rows.append(out[:, :seq_len])
    return torch.cat(rows)


def split_text(ids: list[int], calib: CalibrationSettings, spec: DistillSettings | None) -> dict[str, torch.Tensor]:
    """The distillation and held-out token rows of the calibration text: what follows the first
    ``calib.tokens`` tokens (the rows pruning scores, :func:`calibration_batches`), disjoint from them."""
    ids_t = torch.as_tensor(ids, dtype=torch.long)
    seq = spec.seq_len if spec else calib.seq_len
    n_held = (spec.heldout_rows if spec else 8) * seq
    if len(ids_t) < calib.tokens + n_held + seq:
        raise ValueError(f"calibration text has {len(ids_t)} tokens; the recipe needs at least "
                         f"{calib.tokens + n_held + seq} (compress.calibration.tokens + held-out + one row)")
    held = ids_t[-n_held:].view(-1, seq)
    middle = ids_t[calib.tokens : len(ids_t) - n_held]
    train = middle[: len(middle) // seq * seq].view(-1, seq)
    return {"train": train, "heldout": held}


def write_curve(path: Path, history: list[dict]) -> None:
    cols = ["step", "tokens", "loss", "kd", "ce", "lr", "heldout_kl"]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for row in history:
            w.writerow({k: ("" if row.get(k) is None else (f"{row[k]:.6g}" if isinstance(row[k], float) else row[k]))
                        for k in cols})


def calibration_batches(text_ids: list[int], calib: CalibrationSettings) -> list[torch.Tensor]:
    """The calibration rows every pruning method scores: the text's first ``calib.tokens`` tokens."""
    return token_batches(torch.as_tensor(text_ids, dtype=torch.long)[: calib.tokens], calib.seq_len)


def block_kl_scores(base, text_ids: list[int], calib: CalibrationSettings) -> list[float]:
    """Per block of ``base``, the KL divergence dropping it alone costs on the calibration rows: what depth
    pruning by ``kl`` ranks blocks by, whatever the number it drops (the ``block_kl`` stage, once per model)."""
    return block_drop_kl(base, calibration_batches(text_ids, calib))


def run_recipe(base, tokenizer, recipe: Recipe, calib: CalibrationSettings, text_ids: list[int], seed: int,
               work_dir: Path, progress: bool = True, stop_after: int | None = None,
               kl_scores: list[float] | None = None):
    """Apply ``recipe`` to ``base`` (left unchanged): (compressed model, record, loss-curve rows).
    ``kl_scores``: :func:`block_kl_scores` of ``base``, where a depth recipe ranks blocks by ``kl``."""
    split = split_text(text_ids, calib, recipe.distill)
    record: dict = {"params_base": count_params(base), "lineage": []}
    student = copy.deepcopy(base)
    if recipe.prune is not None:
        t0 = time.perf_counter()
        batches = calibration_batches(text_ids, calib)
        student, info = apply_prune(student, recipe.prune, batches, kl_scores)
        record["prune"] = info | {"seconds": time.perf_counter() - t0, "calibration_tokens": calib.tokens}
        record["lineage"].append("pruned")
    heldout = split["heldout"]
    if recipe.distill is None:
        history: list[dict] = [{"step": 0, "tokens": 0, "heldout_kl": heldout_kl(student, base, heldout, 4)}]
    else:
        spec = recipe.distill
        t0 = time.perf_counter()
        if spec.text == "teacher":
            train = teacher_text(base, spec.steps * spec.batch_size, spec.seq_len, seed, tokenizer.bos_token_id or 0)
        else:
            train = split["train"]
        gen_seconds = time.perf_counter() - t0
        res = distill(student, base, train, heldout, spec, work_dir, seed, progress, stop_after)
        history = res.pop("history")
        record["distill"] = res | {"text": spec.text, "text_rows": len(train), "text_seconds": gen_seconds}
        record["lineage"].append("distilled")
    record["heldout_kl_before_distill"] = history[0]["heldout_kl"]
    record["heldout_kl"] = history[-1].get("heldout_kl")
    record["params"] = count_params(student)
    record["param_reduction"] = 1 - record["params"]["params"] / record["params_base"]["params"]
    return student, record, history
