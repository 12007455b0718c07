"""The memory a llama.cpp run needs at a context length and KV-cache type, from the model's shape.

A fixed allowance (the file plus what one run on this host needed beyond it)
says nothing about 4k or 32k tokens. llama.cpp allocates, beside the mapped
weights:

- the **KV cache**: per layer, K and V rows of ``n_kv_head * head_dim`` values
  for every cell, in the cache type (``f16`` 2 bytes a value, ``q8_0`` 34 bytes
  and ``q4_0`` 18 bytes per 32). A layer with a sliding window keeps
  ``min(n_ctx, pad256(window + n_ubatch))`` cells, a full-attention layer
  ``n_ctx`` (llama.cpp's iSWA cache, its default);
- the **compute buffer** of the graph it reserves for the worst micro-batch
  ``u`` (with flash attention, llama.cpp's default on the CPU): the larger of
  the logits stage, ``4u(n_vocab + 2 n_embd)`` bytes, and a block's activations
  beside the float16 attention masks, ``4u(5 n_embd + 2 n_ff) + 2u(n_ctx +
  swa cells)``; without flash attention the scores of one layer's heads are
  added;
- the **output buffer**: one row of logits per sequence, ``4 * n_vocab``.

Checked against the sizes llama.cpp prints (``benchmarks/memory_buffers.py`` on
both default models, ``tests/devices/test_memory.py`` on a tiny Gemma 3 with
sliding and full layers): the KV cache and output buffer to the byte, the
compute buffer within 1.2 % on the default models and 3 % on the tiny one, whose
activations, not its logits, dominate (flash attention adds a little for quantized caches).
On an embedding-heavy model the compute buffer is the largest item after the
weights: Gemma 3 270M's 262,144-token vocabulary takes 512 MiB of logits at
llama.cpp's default micro-batch of 512, which a run with ``-ub 64`` cuts to 64.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: bytes per cached value of llama.cpp's KV-cache types (``-ctk/-ctv``)
KV_TYPE_BYTES = {"f16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32}
KV_TYPES = tuple(KV_TYPE_BYTES)
#: the context lengths accessibility is judged at (capped at a model's trained context)
CONTEXTS = (512, 4096, 32768)
#: llama.cpp's default micro-batch (``-ub``)
N_UBATCH = 512
#: llama.cpp pads the sliding-window cache to this many cells
SWA_PAD = 256


@dataclass(frozen=True)
class Attention:
    """What the buffers depend on: the layers' attention layout and the model's widths."""

    n_layer: int
    kv_dim: int                 # K (= V) values per cell and layer: n_kv_head * head_dim
    n_head: int
    n_embd: int
    n_ff: int
    n_vocab: int
    swa: tuple[bool, ...]       # per layer: True where it attends through the sliding window
    window: int | None          # the sliding window (None: no layer has one)
    n_ctx_train: int

    def contexts(self) -> list[int]:
        """:data:`CONTEXTS`, capped at the trained context (which is then the last)."""
        out = [c for c in CONTEXTS if c < self.n_ctx_train]
        return out + [min(CONTEXTS[-1], self.n_ctx_train)]

    def swa_cells(self, n_ctx: int, n_ubatch: int = N_UBATCH) -> int:
        if self.window is None:
            return n_ctx
        need = self.window + min(n_ubatch, n_ctx)
        return min(n_ctx, -(-need // SWA_PAD) * SWA_PAD)

    def kv_bytes(self, n_ctx: int, kv_type: str = "f16", n_ubatch: int = N_UBATCH) -> int:
        """The KV cache llama.cpp allocates for ``n_ctx`` cells of one sequence."""
        per_cell = 2 * self.kv_dim * KV_TYPE_BYTES[kv_type]
        n_swa = sum(self.swa)
        cells = (self.n_layer - n_swa) * n_ctx + n_swa * self.swa_cells(n_ctx, n_ubatch)
        return round(per_cell * cells)

    def kv_read_bytes(self, pos: float, kv_type: str = "f16") -> float:
        """KV bytes a generated token reads at position ``pos`` (a sliding layer reads at most its window)."""
        n_swa = sum(self.swa)
        span = (self.n_layer - n_swa) * pos + n_swa * (min(pos, self.window) if self.window else pos)
        return 2 * self.kv_dim * KV_TYPE_BYTES[kv_type] * span

    def compute_bytes(self, n_ctx: int, n_ubatch: int = N_UBATCH, flash_attn: bool = True) -> int:
        """The compute buffer llama.cpp reserves (its micro-batch is at most the context): the larger of the
        logits stage and a block's activations beside the attention masks (float16, one per cache kind)."""
        u = min(n_ubatch, n_ctx)
        logits = 4 * u * (self.n_vocab + 2 * self.n_embd)
        n_swa = sum(self.swa)
        masks = 2 * u * ((n_ctx if n_swa < self.n_layer else 0) + (self.swa_cells(n_ctx, n_ubatch) if n_swa else 0))
        block = 4 * u * (5 * self.n_embd + 2 * self.n_ff) + masks
        if not flash_attn:   # the scores of one layer's heads are materialised
            block += 4 * u * self.n_head * n_ctx
        return max(logits, block)

    def output_bytes(self, n_seq: int = 1) -> int:
        return 4 * self.n_vocab * n_seq


def attention_from(tensors: list[dict], n_head: int, layer_swa: list[bool] | None, window: int | None,
                   n_ctx_train: int) -> Attention:
    """The attention layout of a GGUF file's tensor list (shapes as :func:`edgellm.llamacpp.gguf.inspect_gguf`
    writes them), with the head count and sliding-window layout its checkpoint records."""
    by = {t["name"]: t for t in tensors}
    layers = sorted({int(m.group(1)) for t in tensors if (m := re.match(r"blk\.(\d+)\.", t["name"]))})
    n_embd, n_vocab = by["token_embd.weight"]["shape"][:2]
    kv_dim = by["blk.0.attn_k.weight"]["shape"][-1]
    n_ff = by["blk.0.ffn_up.weight"]["shape"][-1]
    swa = tuple(layer_swa) if layer_swa is not None else (False,) * len(layers)
    if len(swa) != len(layers):
        raise ValueError(f"attention_from: {len(swa)} layer types for {len(layers)} layers")
    return Attention(n_layer=len(layers), kv_dim=kv_dim, n_head=n_head, n_embd=n_embd, n_ff=n_ff, n_vocab=n_vocab,
                     swa=swa,
                     window=window if any(swa) else None, n_ctx_train=n_ctx_train)


def required(file_bytes: float, att: Attention, n_ctx: int, kv_type: str, runtime_bytes: float = 0.0) -> dict:
    """Bytes a run at ``n_ctx`` with a ``kv_type`` cache needs: the mapped file, the KV cache, the compute and
    output buffers, and ``runtime_bytes`` beyond them (the process itself)."""
    kv, comp, out = att.kv_bytes(n_ctx, kv_type), att.compute_bytes(n_ctx), att.output_bytes()
    return {"weights_bytes": float(file_bytes), "kv_bytes": float(kv), "compute_bytes": float(comp),
            "output_bytes": float(out), "runtime_bytes": float(runtime_bytes),
            "total_bytes": float(file_bytes + kv + comp + out + runtime_bytes)}


def published_match(config: dict, archs: dict) -> tuple[str, object] | None:
    """The published model (``data/published/models.yaml``) with a checkpoint's shape: layers, width, vocabulary
    and KV heads; where the sliding-window layout the checkpoint's record lacks is read from."""
    key = (config.get("num_hidden_layers"), config.get("hidden_size"), config.get("vocab_size"),
           config.get("num_key_value_heads"))
    for name, a in sorted(archs.items()):
        if (a.n_layer, a.hidden, a.vocab, a.n_kv_head) == key:
            return name, a
    return None


def attention_of(tensors: list[dict], record: dict, base_record: dict, archs: dict) -> tuple[Attention, str]:
    """A study variant's attention layout, and where its sliding-window layout comes from.

    The checkpoint's record gives its head count and, for a depth-pruned one, the layer types it kept; the base
    model's record its trained context; the published model of the base's shape the window and the pattern of an
    unpruned base. A model with no published match is taken to attend fully in every layer (the KV cache is then
    an upper bound, said in the second element).
    """
    base_cfg = base_record.get("config") or {}
    cfg = {**base_cfg, **(record.get("config") or {})}
    match = published_match(base_cfg, archs)
    arch = match[1] if match else None
    kept = (record.get("prune") or {}).get("kept_layer_types")
    if kept is not None and arch is not None and arch.sliding_window:
        swa, source = [t == "sliding_attention" for t in kept], f"kept layer types, window of {match[0]}"
    elif arch is not None and arch.sliding_window:
        swa, source = arch.layer_types(), f"layer pattern and window of {match[0]}"
    else:
        swa = None
        source = f"full attention ({match[0]})" if match else "full attention (no published match: an upper bound)"
    att = attention_from(tensors, int(cfg["num_attention_heads"]), swa, arch.sliding_window if arch else None,
                         int(base_cfg.get("max_position_embeddings") or 2048))
    return att, source
