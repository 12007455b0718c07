"""Speed, memory, accessibility and energy of every variant on every device: measured or projected.

Projection is a roofline calibrated on this host. Per variant, two efficiencies
are measured here:

- ``eta_bw``: the share of this host's (measured) memory bandwidth that token
  generation achieves, ``tg * bytes_per_token / BW_host``; a generated token
  reads every weight once (the token embedding only when it doubles as the
  output head) and the KV cache up to its position;
- ``eta_c``: the share of this host's peak FP32 throughput that prompt
  processing achieves, ``pp * flops_per_token / F_host`` (2 FLOP per weight
  plus attention at the average position; the output head once per prompt).

On a device, a generated token takes ``max(bytes / (eta_bw * BW), flops /
(eta_c * F))`` and a prompt token ``flops / (eta_c * F)``. The efficiencies
carry each variant's kernel costs (dequantization, per-op overhead) to the
device; what they cannot carry (a different ISA's kernels, big.LITTLE
scheduling, thermal throttling) is why projected numbers are labelled as such
and replaced by measured ones as soon as a runner brings them back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .fleet import HOST, Device

KV_BYTES = 2  # llama.cpp's default F16 KV cache


@dataclass(frozen=True)
class Shape:
    """What the roofline needs to know about a GGUF file, from its tensor list."""

    weight_bytes: int      # all tensor data
    bytes_per_token: int   # read per generated token (without the KV cache)
    matmul_params: int     # weights multiplied per token
    n_layer: int
    kv_dim: int            # K (= V) width per layer: n_head_kv * head_dim
    q_dim: int             # query width per layer: n_head * head_dim
    head_params: int = 0   # weights of the output head (vocabulary x hidden), part of matmul_params

    def kv_bytes(self, n_ctx: int) -> int:
        return 2 * self.n_layer * self.kv_dim * KV_BYTES * n_ctx

    def tg_bytes(self, pos: float) -> float:
        """Bytes read to generate the token at position ``pos``."""
        return self.bytes_per_token + self.kv_bytes(1) * pos

    def flops(self, pos: float) -> float:
        """FLOP for one token at position ``pos``: matrix products plus QK^T and AV."""
        return 2 * self.matmul_params + 4 * self.n_layer * self.q_dim * pos

    def pp_flops(self, n_prompt: int) -> float:
        """FLOP per token of a prompt of ``n_prompt`` tokens as llama-bench's pp runs it: logits only for the
        last token, so the output head is paid once per prompt, not per token. On Gemma 3 270M the head is
        63 % of the weights, and counting it per token made its prompt speed look 1.5x slower than it is."""
        return (2 * (self.matmul_params - self.head_params) + 4 * self.n_layer * self.q_dim * n_prompt / 2
                + 2 * self.head_params / n_prompt)


def shape_of(tensors: list[dict]) -> Shape:
    """From a GGUF record's tensor list (name, shape, bytes), as :func:`edgellm.llamacpp.gguf.inspect_gguf` writes it."""
    by = {t["name"]: t for t in tensors}
    total = sum(t["bytes"] for t in tensors)
    tied = "output.weight" not in by
    embd = by["token_embd.weight"]
    # the embedding lookup reads one row; with tied weights the output head reads the whole matrix
    per_token = total if tied else total - embd["bytes"]
    params = sum(_numel(t["shape"]) for t in tensors if len(t["shape"]) >= 2 and t["name"] != "token_embd.weight")
    if tied:
        params += _numel(embd["shape"])
    layers = {int(m.group(1)) for t in tensors if (m := re.match(r"blk\.(\d+)\.", t["name"]))}
    k = by.get("blk.0.attn_k.weight")
    q = by.get("blk.0.attn_q.weight")
    if k is None or q is None:
        raise ValueError("no blk.0.attn_k/attn_q tensors: not a llama-style decoder")
    head = _numel(by["output.weight" if not tied else "token_embd.weight"]["shape"])
    return Shape(weight_bytes=total, bytes_per_token=per_token, matmul_params=params, n_layer=len(layers),
                 kv_dim=k["shape"][-1], q_dim=q["shape"][-1], head_params=head)


def _numel(shape: list[int]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


@dataclass(frozen=True)
class Efficiency:
    """One variant measured on this host, reduced to the two efficiencies."""

    eta_bw: float
    eta_c: float
    overhead_bytes: float   # peak RSS beyond weights and KV cache: compute buffers, runtime
    n_prompt: int
    n_gen: int


def calibrate(shape: Shape, host: Device, pp_ts: float, tg_ts: float, n_prompt: int, n_gen: int,
              peak_rss_model_bytes: float, file_bytes: int) -> Efficiency:
    bw = host.memory_bandwidth_gbs * 1e9
    f = host.cpu.peak_gflops_fp32 * 1e9
    eta_bw = tg_ts * shape.tg_bytes(n_gen / 2) / bw
    eta_c = pp_ts * shape.pp_flops(n_prompt) / f
    overhead = max(0.0, peak_rss_model_bytes - file_bytes - shape.kv_bytes(n_prompt))
    return Efficiency(eta_bw=eta_bw, eta_c=eta_c, overhead_bytes=overhead, n_prompt=n_prompt, n_gen=n_gen)


def project(shape: Shape, cal: Efficiency, dev: Device, backend: str = "cpu") -> dict:
    """Projected pp and tg tokens/s of a calibrated variant on ``dev``, and which roof bounds tg."""
    bw_gbs, gflops = dev.roofs(backend)
    bw = cal.eta_bw * bw_gbs * 1e9
    f = cal.eta_c * gflops * 1e9
    t_mem = shape.tg_bytes(cal.n_gen / 2) / bw
    t_cmp = shape.flops(cal.n_gen / 2) / f
    return {"pp_ts": f / shape.pp_flops(cal.n_prompt), "tg_ts": 1 / max(t_mem, t_cmp),
            "tg_bound": "memory" if t_mem >= t_cmp else "compute"}


def memory_required(shape: Shape, cal: Efficiency, file_bytes: int, n_ctx: int) -> float:
    """Bytes a run with ``n_ctx`` context needs: the mapped file, the KV cache, and the measured overhead."""
    return file_bytes + shape.kv_bytes(n_ctx) + cal.overhead_bytes


def accessible(mem_bytes: float, dev: Device, tg_ts: float, memory_share: float, min_tg_ts: float) -> dict:
    budget = memory_share * dev.ram_bytes
    fits = mem_bytes <= budget
    fast = tg_ts >= min_tg_ts
    return {"mem_budget_bytes": budget, "fits": fits, "fast_enough": fast, "accessible": fits and fast}


def fleet_share(rows: list[dict], fleet: list[str]) -> dict[str, float]:
    """Per variant, the share of the fleet (this host excluded) it is accessible on."""
    out: dict[str, list[bool]] = {}
    for r in rows:
        if r["device"] != HOST and r["device"] in fleet:
            out.setdefault(r["variant"], []).append(bool(r["accessible"]))
    return {v: sum(a) / len(a) for v, a in out.items()}
