"""Calibration text as token batches, and the activation statistics pruning methods score with.

Every method here runs the model on the same calibration batches (LAMBADA
development text, never a test set) and reads activations through forward
hooks, so no model code is copied or patched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

SUPPORTED_ARCHS = ("LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM",
                   "Gemma3ForCausalLM")


class UnsupportedModelError(ValueError):
    """Structured pruning needs the Llama block layout (q/k/v/o + gate/up/down, RMSNorm; Gemma 3's four norms)."""


def check_architecture(model) -> None:
    archs = getattr(model.config, "architectures", None) or [type(model).__name__]
    if not any(a in SUPPORTED_ARCHS for a in archs):
        raise UnsupportedModelError(
            f"pruning supports Llama-style decoders {SUPPORTED_ARCHS}; this model is {archs}"
        )


def token_batches(ids: torch.Tensor | list[int], seq_len: int, n_tokens: int | None = None,
                  batch_size: int = 4) -> list[torch.Tensor]:
    """Cut a token stream into [batch, seq_len] tensors (the tail that does not fill a row is dropped)."""
    ids = torch.as_tensor(ids, dtype=torch.long)
    if n_tokens is not None:
        ids = ids[:n_tokens]
    rows = ids[: (len(ids) // seq_len) * seq_len].view(-1, seq_len)
    if len(rows) == 0:
        raise ValueError(f"calibration text has {len(ids)} tokens, fewer than one row of {seq_len}")
    return [rows[i : i + batch_size] for i in range(0, len(rows), batch_size)]


def decoder_layers(model) -> nn.ModuleList:
    return model.model.layers


def block_linears(layer) -> dict[str, nn.Linear]:
    """The matrices of one decoder block, by their Hugging Face names."""
    a, m = layer.self_attn, layer.mlp
    return {"self_attn.q_proj": a.q_proj, "self_attn.k_proj": a.k_proj, "self_attn.v_proj": a.v_proj,
            "self_attn.o_proj": a.o_proj, "mlp.gate_proj": m.gate_proj, "mlp.up_proj": m.up_proj,
            "mlp.down_proj": m.down_proj}


@contextmanager
def hooks(modules: dict[str, nn.Module], fn: Callable, *, pre: bool = False) -> Iterator[None]:
    """Register ``fn(name, module, args, output)`` (or ``fn(name, module, args)`` when pre) on each module."""
    handles = []
    for name, mod in modules.items():
        if pre:
            handles.append(mod.register_forward_pre_hook(lambda m, args, _n=name: fn(_n, m, args)))
        else:
            handles.append(mod.register_forward_hook(lambda m, args, out, _n=name: fn(_n, m, args, out)))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@torch.no_grad()
def residual_streams(model, batches: list[torch.Tensor]) -> Iterator[list[torch.Tensor]]:
    """Per batch, the residual stream entering each block and leaving the last one (n_layers + 1 tensors)."""
    layers = decoder_layers(model)
    for ids in batches:
        seen: list[torch.Tensor] = [None] * (len(layers) + 1)

        def block_input(i: int):
            def hook(_mod, args, kwargs):
                seen[i] = (args[0] if args else kwargs["hidden_states"]).detach()
            return hook

        def last_output(_mod, _args, out):
            seen[-1] = (out[0] if isinstance(out, tuple) else out).detach()

        handles = [b.register_forward_pre_hook(block_input(i), with_kwargs=True) for i, b in enumerate(layers)]
        handles.append(layers[-1].register_forward_hook(last_output))
        try:
            model(input_ids=ids, use_cache=False)
        finally:
            for h in handles:
                h.remove()
        yield seen


@torch.no_grad()
def width_statistics(model, batches: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """Minitron's activation importances, from one pass over the calibration batches.

    - ``mlp``   [layers, intermediate]: L2 norm over tokens of each MLP channel (input of down_proj)
    - ``heads`` [layers, heads]: L2 norm over tokens of each attention head's output (input of o_proj)
    - ``hidden`` [hidden]: L2 norm over tokens of each residual channel after every RMSNorm, summed over norms
    """
    layers = decoder_layers(model)
    n, head_dim = len(layers), model.config.head_dim if getattr(model.config, "head_dim", None) else (
        model.config.hidden_size // model.config.num_attention_heads)
    mlp = torch.zeros(n, model.config.intermediate_size, dtype=torch.float64)
    heads = torch.zeros(n, model.config.num_attention_heads, dtype=torch.float64)
    hidden = torch.zeros(model.config.hidden_size, dtype=torch.float64)

    def on_input(name, _mod, args):
        kind, i = name.split(":")
        x = args[0].detach().to(torch.float64)
        sq = x.pow(2).reshape(-1, x.shape[-1]).sum(0)
        if kind == "down":
            mlp[int(i)] += sq
        else:
            heads[int(i)] += sq.view(-1, head_dim).sum(-1)

    def on_norm(_name, _mod, _args, out):
        hidden.add_(out.detach().to(torch.float64).pow(2).reshape(-1, out.shape[-1]).sum(0).sqrt())

    inputs = {f"down:{i}": block.mlp.down_proj for i, block in enumerate(layers)}
    inputs |= {f"o:{i}": block.self_attn.o_proj for i, block in enumerate(layers)}
    norms = {f"in{i}": block.input_layernorm for i, block in enumerate(layers)}
    norms |= {f"post{i}": block.post_attention_layernorm for i, block in enumerate(layers)}
    with hooks(inputs, on_input, pre=True), hooks(norms, on_norm):
        for ids in batches:
            model(input_ids=ids, use_cache=False)
    return {"mlp": mlp.sqrt(), "heads": heads.sqrt(), "hidden": hidden}


class LayerRunner:
    """Runs the decoder blocks one at a time on captured inputs, as Wanda and SparseGPT do.

    One pass captures the first block's hidden states and, for every block, the keyword arguments the model
    passes it (rotary embeddings, mask, positions: on Gemma 3 they differ between sliding-window and global
    blocks); each block then maps the stored inputs to the next block's, so a method can prune block ``i``
    and feed its *pruned* output to block ``i + 1``.
    """

    @torch.no_grad()
    def __init__(self, model, batches: list[torch.Tensor]):
        self.layers = decoder_layers(model)
        self.hidden: list[torch.Tensor] = []
        self.kwargs: list[list[dict]] = [[] for _ in self.layers]

        def catch(i: int):
            def hook(_mod, args, kwargs):
                if i == 0:
                    self.hidden.append((args[0] if args else kwargs["hidden_states"]).detach())
                self.kwargs[i].append({k: v for k, v in kwargs.items() if k != "hidden_states"})
            return hook

        handles = [layer.register_forward_pre_hook(catch(i), with_kwargs=True) for i, layer in enumerate(self.layers)]
        try:
            for ids in batches:
                model(input_ids=ids, use_cache=False)
        finally:
            for h in handles:
                h.remove()

    @torch.no_grad()
    def run(self, i: int) -> list[torch.Tensor]:
        outs = []
        for hs, kwargs in zip(self.hidden, self.kwargs[i]):
            out = self.layers[i](hs, **kwargs)
            outs.append(out[0] if isinstance(out, tuple) else out)
        return outs

    def advance(self, outs: list[torch.Tensor]) -> None:
        self.hidden = list(outs)
