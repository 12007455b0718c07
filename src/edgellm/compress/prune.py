"""Pruning of a Hugging Face decoder: unstructured (magnitude, Wanda), 2:4, depth and width.

Unstructured and 2:4 pruning set weights to zero and keep every shape: the
checkpoint, and the GGUF file llama.cpp makes from it, keep their size, because
llama.cpp stores zeros densely and has no sparse kernels. Depth and width
pruning remove whole blocks, heads, channels, and produce a smaller
configuration: a genuinely smaller model that llama.cpp's converter accepts as
any other checkpoint.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .activations import (LayerRunner, block_linears, check_architecture, decoder_layers, hooks,
                          residual_streams, width_statistics)


# --------------------------------------------------------------------------- unstructured
def _mask_lowest(score: torch.Tensor, sparsity: float, per_row: bool) -> torch.Tensor:
    """A boolean mask of the weights to zero: the lowest ``sparsity`` share, per output row or per matrix."""
    if per_row:
        k = int(score.shape[1] * sparsity)
        idx = torch.argsort(score, dim=1, stable=True)[:, :k]
        return torch.zeros_like(score, dtype=torch.bool).scatter_(1, idx, True)
    k = int(score.numel() * sparsity)
    idx = torch.argsort(score.flatten(), stable=True)[:k]
    return torch.zeros(score.numel(), dtype=torch.bool).scatter_(0, idx, True).view_as(score)


def _mask_n_m(score: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """N:M semi-structured: in every group of ``m`` consecutive inputs of a row, zero the ``n`` lowest."""
    rows, cols = score.shape
    if cols % m:
        raise ValueError(f"{n}:{m} sparsity needs input dimensions divisible by {m}, got {cols}")
    groups = score.view(rows, cols // m, m)
    idx = torch.argsort(groups, dim=-1, stable=True)[..., :n]
    return torch.zeros_like(groups, dtype=torch.bool).scatter_(-1, idx, True).view(rows, cols)


@torch.no_grad()
def prune_unstructured(model, method: str, sparsity: float | None = None, pattern: str | None = None,
                       batches: list[torch.Tensor] | None = None) -> dict:
    """Zero weights of every block matrix, in place.

    ``magnitude`` ranks |W| over the whole matrix (the classic baseline);
    ``wanda`` ranks |W| * ||X_j|| per output row, with the input norms ``X``
    measured block by block on the already pruned model, as the reference
    implementation does. ``pattern="2:4"`` keeps 2 of every 4 consecutive
    weights of a row instead (the semi-structured sparsity GPUs accelerate).
    Embeddings and the output head stay dense, as in the Wanda paper.
    """
    check_architecture(model)
    if (sparsity is None) == (pattern is None):
        raise ValueError("give exactly one of sparsity (unstructured) or pattern (N:M)")
    if pattern is not None:
        n_keep, m = (int(x) for x in pattern.split(":"))
        n_zero = m - n_keep
    if method == "wanda" and not batches:
        raise ValueError("wanda needs calibration batches")
    runner = LayerRunner(model, batches) if method == "wanda" else None
    zeroed = total = 0
    for i, layer in enumerate(decoder_layers(model)):
        linears = block_linears(layer)
        if method == "wanda":
            sq = {name: torch.zeros(lin.in_features, dtype=torch.float64) for name, lin in linears.items()}

            def on_input(name, _mod, args):
                x = args[0].detach().to(torch.float64)
                sq[name] += x.pow(2).reshape(-1, x.shape[-1]).sum(0)

            with hooks(linears, on_input, pre=True):
                runner.run(i)
        for name, lin in linears.items():
            w = lin.weight
            score = w.abs().to(torch.float64)
            if method == "wanda":
                score = score * sq[name].sqrt()[None, :]
            elif method != "magnitude":
                raise ValueError(f"unknown unstructured pruning method {method!r} (magnitude, wanda)")
            mask = _mask_n_m(score, n_zero, m) if pattern else _mask_lowest(score, sparsity, method == "wanda")
            w[mask] = 0
            zeroed += int(mask.sum())
            total += mask.numel()
        if runner is not None:
            runner.advance(runner.run(i))
    return {"method": method, "sparsity": sparsity, "pattern": pattern, "zeroed": zeroed,
            "block_weights": total, "block_sparsity": zeroed / total}


# --------------------------------------------------------------------------- depth
def check_removable(n_remove: int, n_layers: int) -> None:
    """Depth pruning keeps at least one block and removes at least one."""
    if not 0 < n_remove < n_layers:
        raise ValueError(f"cannot remove {n_remove} of {n_layers} layers")


def cheapest(scores: list[float], n: int) -> list[int]:
    """The indices of the ``n`` lowest scores, ties to the lower index, in block order: the blocks to drop."""
    return sorted(sorted(range(len(scores)), key=lambda i: (scores[i], i))[:n])


@torch.no_grad()
def layer_importance(model, batches: list[torch.Tensor], n_remove: int, metric: str = "block_influence") -> dict:
    """How much each block changes the residual stream on calibration text.

    ``block_influence`` (ShortGPT): BI_i = 1 - E[cos(x_i, x_{i+1})] per block;
    the ``n_remove`` blocks with the lowest BI are dropped.
    ``angular`` (Gromov et al., "The Unreasonable Ineffectiveness of the Deeper
    Layers"): arccos(E-token cos(x_l, x_{l+n})) / pi for every run of ``n``
    consecutive blocks; the run with the smallest distance is dropped.
    ``kl``: the cost of dropping each block alone, measured as what it is: the
    mean per-token KL(model || model without block i) on the calibration text
    (the objective distillation then minimises; Kim et al.'s "Shortened LLaMA"
    ranks blocks by the perplexity of the same one-shot drop). Blocks cosine
    calls quiet can matter a lot: on SmolLM2-135M the lowest-influence block
    costs twice the KL of the cheapest one. One model pass per block.
    """
    n_layers = len(decoder_layers(model))
    check_removable(n_remove, n_layers)
    if metric == "kl":
        scores = block_drop_kl(model, batches)
        return {"metric": "kl", "scores": scores, "removed": cheapest(scores, n_remove)}
    span = n_remove if metric == "angular" else 1
    if metric not in ("block_influence", "angular"):
        raise ValueError(f"unknown layer importance {metric!r} (block_influence, angular, kl)")
    sums = torch.zeros(n_layers - span + 1, dtype=torch.float64)
    count = 0
    for stream in residual_streams(model, batches):
        for i in range(n_layers - span + 1):
            a, b = stream[i].to(torch.float64), stream[i + span].to(torch.float64)
            sums[i] += torch.nn.functional.cosine_similarity(a, b, dim=-1).sum()
        count += stream[0].shape[0] * stream[0].shape[1]
    cos = (sums / count).clamp(-1, 1)
    if metric == "block_influence":
        scores = (1 - cos).tolist()
        removed = cheapest(scores, n_remove)
    else:
        scores = (torch.arccos(cos) / math.pi).tolist()
        start = min(range(len(scores)), key=lambda i: (scores[i], i))
        removed = list(range(start, start + n_remove))
    return {"metric": metric, "scores": scores, "removed": removed}


@torch.no_grad()
def block_drop_kl(model, batches: list[torch.Tensor]) -> list[float]:
    """Per block, the mean per-token KL(model || model without the block) on ``batches``.

    A block is skipped by a forward hook that returns its input unchanged, which
    is what :func:`drop_layers` builds (the test checks the two agree). The
    scores do not depend on how many blocks a recipe then drops: the
    ``block_kl`` stage computes them once per base model for every recipe.
    """
    layers = decoder_layers(model)
    reference = [F.log_softmax(model(input_ids=ids, use_cache=False).logits.float(), dim=-1) for ids in batches]

    def skip(_mod, args, kwargs, out):
        h = args[0] if args else kwargs["hidden_states"]
        return (h, *out[1:]) if isinstance(out, tuple) else h

    scores = []
    for block in layers:
        handle = block.register_forward_hook(skip, with_kwargs=True)
        try:
            total = tokens = 0.0
            for ids, ref in zip(batches, reference):
                logp = F.log_softmax(model(input_ids=ids, use_cache=False).logits.float(), dim=-1)
                total += float(F.kl_div(logp, ref, log_target=True, reduction="sum"))
                tokens += ids.numel()
        finally:
            handle.remove()
        scores.append(total / tokens)
    return scores


def _rebuild(model, config, state: dict[str, torch.Tensor]):
    """A fresh model of ``config`` holding ``state`` (shapes checked strictly)."""
    from transformers import AutoModelForCausalLM

    config.architectures = model.config.architectures
    new = AutoModelForCausalLM.from_config(config, dtype=next(model.parameters()).dtype)
    missing, unexpected = new.load_state_dict(state, strict=False)
    # a tied output head has no state of its own
    missing = [k for k in missing if not (k == "lm_head.weight" and config.tie_word_embeddings)]
    if missing or unexpected:
        raise RuntimeError(f"pruned state does not fit the pruned config: missing {missing}, unexpected {unexpected}")
    if config.tie_word_embeddings:
        new.tie_weights()
    return new.eval()


@torch.no_grad()
def drop_layers(model, removed: list[int]):
    """A new model without the blocks ``removed`` (renumbered, config updated)."""
    n = len(decoder_layers(model))
    keep = [i for i in range(n) if i not in set(removed)]
    state = {}
    for k, v in model.state_dict().items():
        if k.startswith("model.layers."):
            parts = k.split(".")
            old = int(parts[2])
            if old not in keep:
                continue
            parts[2] = str(keep.index(old))
            k = ".".join(parts)
        state[k] = v.clone()
    config = copy.deepcopy(model.config)
    config.num_hidden_layers = len(keep)
    if getattr(config, "layer_types", None):
        config.layer_types = [config.layer_types[i] for i in keep]
    return _rebuild(model, config, state)


# --------------------------------------------------------------------------- width
@dataclass
class WidthPlan:
    """Which channels, heads and KV groups survive, and the resulting dimensions."""

    hidden: list[int]
    mlp: list[list[int]]
    q_heads: list[list[int]]
    kv_heads: list[int]
    stats: dict = field(default_factory=dict, repr=False)


def _top(scores: torch.Tensor, k: int) -> list[int]:
    """Indices of the ``k`` highest scores, in their original order (ties: lower index first)."""
    order = sorted(range(len(scores)), key=lambda j: (-float(scores[j]), j))
    return sorted(order[:k])


def plan_width(model, stats: dict[str, torch.Tensor], hidden_size: int | None = None,
               intermediate_size: int | None = None, num_heads: int | None = None,
               num_kv_heads: int | None = None) -> WidthPlan:
    """Choose what to keep from activation importances (Minitron), respecting grouped-query attention.

    KV heads are kept or dropped as whole groups (a group's score is the sum of
    its query heads' scores); within each kept group the same number of query
    heads survives, the most important ones, so the GQA layout stays regular.
    """
    cfg = model.config
    H, KV = cfg.num_attention_heads, cfg.num_key_value_heads
    hidden_size = hidden_size or cfg.hidden_size
    intermediate_size = intermediate_size or cfg.intermediate_size
    num_heads = num_heads or H
    num_kv_heads = num_kv_heads or KV
    for name, new, old in (("hidden_size", hidden_size, cfg.hidden_size),
                           ("intermediate_size", intermediate_size, cfg.intermediate_size),
                           ("num_heads", num_heads, H), ("num_kv_heads", num_kv_heads, KV)):
        if not 0 < new <= old:
            raise ValueError(f"width pruning: {name} must be in 1..{old}, got {new}")
    group = H // KV
    if num_heads % num_kv_heads or num_heads // num_kv_heads > group:
        raise ValueError(f"width pruning: {num_heads} query heads cannot be split evenly over {num_kv_heads} KV heads "
                         f"with at most {group} per group (the model has {H} heads, {KV} KV heads)")
    if hidden_size != cfg.hidden_size and _unit_offset_norms(cfg):
        raise ValueError(f"width pruning: {cfg.model_type} scales its embeddings by sqrt(hidden_size) and its norms "
                         f"by (1 + w); narrowing the residual stream ({cfg.hidden_size} -> {hidden_size}) is not "
                         "supported there: prune intermediate_size and heads")
    if hidden_size % num_heads:
        raise ValueError(f"width pruning: hidden_size {hidden_size} must be a multiple of the number of query heads "
                         f"{num_heads} (transformers refuses to save or load other Llama configurations)")
    per_group = num_heads // num_kv_heads
    q_heads, kv_heads = [], []
    for layer_scores in stats["heads"]:
        g_scores = layer_scores.view(KV, group)
        kept_groups = _top(g_scores.sum(-1), num_kv_heads)
        kv_heads.append(kept_groups)
        q_heads.append([g * group + h for g in kept_groups for h in _top(g_scores[g], per_group)])
    return WidthPlan(
        hidden=_top(stats["hidden"], hidden_size),
        mlp=[_top(s, intermediate_size) for s in stats["mlp"]],
        q_heads=q_heads,
        kv_heads=kv_heads,
        stats={"hidden_size": hidden_size, "intermediate_size": intermediate_size,
               "num_attention_heads": num_heads, "num_key_value_heads": num_kv_heads},
    )


def _unit_offset_norms(cfg) -> bool:
    """Gemma's RMSNorm multiplies by (1 + w), not w."""
    return str(getattr(cfg, "model_type", "")).startswith("gemma")


#: the norms of a block over the residual stream (Gemma 3 has four, Llama two)
_BLOCK_NORMS = ("input_layernorm.weight", "post_attention_layernorm.weight", "pre_feedforward_layernorm.weight",
                "post_feedforward_layernorm.weight")


def _rows(w: torch.Tensor, idx: list[int]) -> torch.Tensor:
    return w[torch.tensor(idx)].clone()


def _cols(w: torch.Tensor, idx: list[int]) -> torch.Tensor:
    return w[:, torch.tensor(idx)].clone()


def _head_rows(heads: list[int], head_dim: int) -> list[int]:
    return [h * head_dim + d for h in heads for d in range(head_dim)]


@torch.no_grad()
def apply_width(model, plan: WidthPlan):
    """A new, narrower model: the plan's channels, MLP neurons and heads, sliced out of every matrix."""
    cfg = model.config
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    hid = plan.hidden
    # RMSNorm divides by the root mean square over the channels it sees; with fewer channels the
    # mean is taken over H' instead of H, so scale the norm weights by sqrt(H / H'): exact when the
    # removed channels carry nothing, and an unbiased correction when they carry little.
    norm_scale = math.sqrt(cfg.hidden_size / len(hid))
    state = {}
    for k, v in model.state_dict().items():
        parts = k.split(".")
        if k in ("model.embed_tokens.weight", "lm_head.weight"):
            state[k] = _cols(v, hid)
        elif k == "model.norm.weight":
            state[k] = _rows(v, hid) * norm_scale
        elif k.startswith("model.layers."):
            i, sub = int(parts[2]), ".".join(parts[3:])
            q_rows = _head_rows(plan.q_heads[i], head_dim)
            kv_rows = _head_rows(plan.kv_heads[i], head_dim)
            if sub in _BLOCK_NORMS:
                state[k] = _rows(v, hid) * norm_scale
            elif sub == "self_attn.q_proj.weight":
                state[k] = _cols(_rows(v, q_rows), hid)
            elif sub in ("self_attn.k_proj.weight", "self_attn.v_proj.weight"):
                state[k] = _cols(_rows(v, kv_rows), hid)
            elif sub == "self_attn.q_proj.bias":
                state[k] = _rows(v, q_rows)
            elif sub in ("self_attn.k_proj.bias", "self_attn.v_proj.bias"):
                state[k] = _rows(v, kv_rows)
            elif sub == "self_attn.o_proj.weight":
                state[k] = _rows(_cols(v, q_rows), hid)
            elif sub in ("mlp.gate_proj.weight", "mlp.up_proj.weight"):
                state[k] = _cols(_rows(v, plan.mlp[i]), hid)
            elif sub == "mlp.down_proj.weight":
                state[k] = _rows(_cols(v, plan.mlp[i]), hid)
            elif sub in ("self_attn.q_norm.weight", "self_attn.k_norm.weight"):
                state[k] = v.clone()  # per-head-dim norms (Qwen3, Gemma 3) are shared by all heads
            else:
                raise ValueError(f"width pruning does not know how to slice {k} {tuple(v.shape)}")
        else:
            raise ValueError(f"width pruning does not know how to slice {k} {tuple(v.shape)}")
    config = copy.deepcopy(cfg)
    config.head_dim = head_dim
    config.hidden_size = len(hid)
    config.intermediate_size = len(plan.mlp[0])
    config.num_attention_heads = len(plan.q_heads[0])
    config.num_key_value_heads = len(plan.kv_heads[0])
    return _rebuild(model, config, state)


def prune_width(model, batches: list[torch.Tensor], **dims) -> tuple[object, dict]:
    """Measure importances, plan and slice: (smaller model, record of what was kept)."""
    check_architecture(model)
    stats = width_statistics(model, batches)
    plan = plan_width(model, stats, **dims)
    record = {"method": "width", **plan.stats,
              "kept_heads": plan.q_heads, "kept_kv_heads": plan.kv_heads,
              "hidden_importance_kept_share": float(stats["hidden"][plan.hidden].sum() / stats["hidden"].sum()),
              "mlp_importance_kept_share": float(sum(s[k].sum() for s, k in zip(stats["mlp"], plan.mlp))
                                                 / stats["mlp"].sum())}
    return apply_width(model, plan), record


def prune_depth(model, batches: list[torch.Tensor], n_remove: int, metric: str = "block_influence",
                kl_scores: list[float] | None = None):
    """Drop the ``n_remove`` least important blocks. ``kl_scores``: :func:`block_drop_kl` of this model on
    these batches, already computed (the ``block_kl`` stage), used instead of scoring again when ``metric``
    is ``kl``."""
    check_architecture(model)
    if metric == "kl" and kl_scores is not None:
        n_layers = len(decoder_layers(model))
        if len(kl_scores) != n_layers:
            raise ValueError(f"{len(kl_scores)} block KL scores for a model of {n_layers} blocks")
        check_removable(n_remove, n_layers)
        imp = {"metric": "kl", "scores": list(kl_scores), "removed": cheapest(list(kl_scores), n_remove)}
    else:
        imp = layer_importance(model, batches, n_remove, metric)
    types = getattr(model.config, "layer_types", None)
    if types:  # sliding-window and global blocks (Gemma 3): say which kinds survive, in their new order
        kept = [i for i in range(len(types)) if i not in set(imp["removed"])]
        imp |= {"kept_layer_types": [types[i] for i in kept],
                "kept_global_layers": [i for i in kept if types[i] == "full_attention"]}
    return drop_layers(model, imp["removed"]), {"method": "depth", **imp}


def count_params(model) -> dict:
    """Parameters stored (tied embeddings once) and non-zero ones."""
    seen, total, nonzero = set(), 0, 0
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        nonzero += int(torch.count_nonzero(p))
    return {"params": total, "nonzero_params": nonzero}
