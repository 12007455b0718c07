"""Knowledge distillation: a student learns the teacher's next-token distributions.

The loss is the KL divergence between the temperature-softened teacher and
student distributions, scaled by T^2 (Hinton et al.), optionally mixed with the
next-token cross-entropy on the text itself. The run is a pure function of its
configuration: the data order is drawn from the seed, the run writes a
checkpoint every few steps, and an interrupted run resumes from the last one
and ends with the same weights as an uninterrupted run.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..config import DistillSettings


#: Optimiser settings that are not study parameters (``DistillSettings`` holds those): AdamW without weight
#: decay, a cosine decay to this share of ``lr`` after the warm-up, gradients clipped to this norm.
MIN_LR_RATIO = 0.1
WEIGHT_DECAY = 0.0
GRAD_CLIP = 1.0


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2 * KL(teacher_T || student_T), averaged over tokens."""
    t = temperature
    s = F.log_softmax(student_logits.float() / t, dim=-1)
    p = F.log_softmax(teacher_logits.float() / t, dim=-1)
    return F.kl_div(s.flatten(0, -2), p.flatten(0, -2), log_target=True, reduction="batchmean") * t * t


def _row_batches(rows: torch.Tensor, batch_size: int, device) -> list[torch.Tensor]:
    return [rows[i : i + batch_size].to(device) for i in range(0, len(rows), batch_size)]


@torch.no_grad()
def teacher_logits(teacher, rows: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    """The teacher's logits on the held-out rows, computed once for every evaluation of a run."""
    device = next(teacher.parameters()).device
    return [teacher(input_ids=ids).logits for ids in _row_batches(rows, batch_size, device)]


@torch.no_grad()
def heldout_kl(student, teacher, rows: torch.Tensor, batch_size: int,
               reference: list[torch.Tensor] | None = None) -> float:
    """Mean per-token KL(teacher || student) at temperature 1 on held-out rows.

    ``reference`` is :func:`teacher_logits` of the same rows and batch size, when already known.
    """
    was = student.training
    student.eval()
    reference = reference if reference is not None else teacher_logits(teacher, rows, batch_size)
    total = n = 0.0
    for ids, t_logits in zip(_row_batches(rows, batch_size, next(student.parameters()).device), reference):
        kl = kd_loss(student(input_ids=ids).logits, t_logits, 1.0)
        total += float(kl) * ids.numel()
        n += ids.numel()
    student.train(was)
    return total / n


def data_order(n_rows: int, steps: int, batch_size: int, seed: int) -> np.ndarray:
    """Row indices for every step: successive seeded permutations (epochs) of the rows."""
    need = steps * batch_size
    out, epoch = [], 0
    while sum(len(o) for o in out) < need:
        out.append(np.random.default_rng([seed, epoch]).permutation(n_rows))
        epoch += 1
    return np.concatenate(out)[:need].reshape(steps, batch_size)


def _schedule(cfg: DistillSettings):
    warm = max(1, int(cfg.warmup * cfg.steps))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        progress = (step - warm) / max(1, cfg.steps - warm)
        return MIN_LR_RATIO + (1 - MIN_LR_RATIO) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def trainable(student, cfg: DistillSettings) -> list[torch.nn.Parameter]:
    """Every parameter, or all but the (tied) embedding matrix, which holds a fifth of a small model."""
    emb = student.get_input_embeddings().weight
    out = student.get_output_embeddings()
    frozen = set() if cfg.train_embeddings else {id(emb), id(out.weight) if out is not None else None}
    params = []
    for p in student.parameters():
        p.requires_grad_(id(p) not in frozen)
        if p.requires_grad:
            params.append(p)
    return params


def sparsity_masks(params: list[torch.nn.Parameter]) -> list[tuple[torch.nn.Parameter, torch.Tensor]]:
    """(parameter, keep mask) of every matrix that unstructured pruning zeroed (at least a quarter zeros): the
    optimiser would regrow the zeros, so each step re-applies the mask and the student keeps its sparsity."""
    out = []
    for p in params:
        if p.dim() == 2:
            keep = p.detach() != 0
            if (~keep).float().mean() >= 0.25:
                out.append((p, keep))
    return out


def _save(path: Path, state: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def distill(student, teacher, train_rows: torch.Tensor, heldout_rows: torch.Tensor, cfg: DistillSettings,
            work_dir: Path, seed: int, progress: bool = True, stop_after: int | None = None) -> dict:
    """Train ``student`` in place; return the history (loss curve, held-out KL) and timing.

    ``work_dir`` holds the resumable checkpoint; it is keyed by the configuration
    and the student's initial weights, so a changed recipe never resumes a stale
    run. ``stop_after`` ends the run after that many steps (as an interruption
    would), leaving the checkpoint behind.
    """
    from tqdm import tqdm  # text bars: they survive in executed notebooks (tqdm.auto needs ipywidgets)

    device = "cuda" if torch.cuda.is_available() else "cpu"
    student.to(device).train()
    teacher.to(device).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    params = trainable(student, cfg)
    masks = sparsity_masks(params)
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=WEIGHT_DECAY, betas=(0.9, 0.95))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _schedule(cfg))
    order = data_order(len(train_rows), cfg.steps, cfg.batch_size, seed)

    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    ckpt = work_dir / "checkpoint.pt"
    history: list[dict] = []
    start = 0
    elapsed = 0.0
    reference = teacher_logits(teacher, heldout_rows, cfg.batch_size)
    if ckpt.is_file():
        state = torch.load(ckpt, map_location=device, weights_only=False)
        student.load_state_dict(state["student"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        history, start, elapsed = state["history"], state["step"], state["elapsed"]
    else:
        history.append({"step": 0, "tokens": 0, "heldout_kl": heldout_kl(student, teacher, heldout_rows,
                                                                            cfg.batch_size, reference)})
    t0 = time.perf_counter()
    bar = tqdm(total=cfg.steps, initial=start, desc="distill", unit="step", disable=not progress, mininterval=10)
    step = start
    for step in range(start, cfg.steps):
        if stop_after is not None and step - start >= stop_after:
            break
        ids = train_rows[torch.as_tensor(order[step])].to(device)
        with torch.no_grad():
            t_logits = teacher(input_ids=ids).logits
        s_logits = student(input_ids=ids).logits
        kd = kd_loss(s_logits, t_logits, cfg.temperature)
        ce = F.cross_entropy(s_logits[:, :-1].flatten(0, 1).float(), ids[:, 1:].flatten())
        loss = (1 - cfg.ce_weight) * kd + cfg.ce_weight * ce
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if GRAD_CLIP:
            torch.nn.utils.clip_grad_norm_(params, GRAD_CLIP)
        opt.step()
        with torch.no_grad():
            for p, keep in masks:
                p.mul_(keep)
        sched.step()
        row = {"step": step + 1, "tokens": (step + 1) * cfg.batch_size * cfg.seq_len, "loss": float(loss.detach()),
               "kd": float(kd.detach()), "ce": float(ce.detach()), "lr": opt.param_groups[0]["lr"]}
        done = step + 1 == cfg.steps
        if (step + 1) % cfg.eval_every == 0 or done:
            row["heldout_kl"] = heldout_kl(student, teacher, heldout_rows, cfg.batch_size, reference)
        history.append(row)
        bar.update(1)
        bar.set_postfix(kd=f"{float(kd.detach()):.3f}")
        if (step + 1) % cfg.checkpoint_every == 0 or done:
            _save(ckpt, {"student": student.state_dict(), "optimizer": opt.state_dict(),
                         "scheduler": sched.state_dict(), "history": history, "step": step + 1,
                         "elapsed": elapsed + time.perf_counter() - t0})
    bar.close()
    steps_done = len([h for h in history if h["step"] > 0])
    student.eval()
    for p in student.parameters():
        p.requires_grad_(True)
    return {"history": history, "steps": cfg.steps, "steps_done": steps_done, "complete": steps_done == cfg.steps,
            "seconds": elapsed + time.perf_counter() - t0, "device": device,
            "tokens_per_second": steps_done * cfg.batch_size * cfg.seq_len / max(1e-9, elapsed + time.perf_counter() - t0)}
