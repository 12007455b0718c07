"""Accessibility at a stated context length and KV-cache type: the table, the memory figure and the numbers the
paper quotes (from the ``verdicts`` stage's ``context_verdicts.csv`` and ``context_shares.csv``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..devices.memory import KV_TYPES, N_UBATCH
from .latex import Macro, Tex, latex_table, tex_escape
from .plotting import figure, log_axis, plt, savefig

CONTEXT_CSV = "results/devices/context_verdicts.csv"
SHARES_CSV = "results/devices/context_shares.csv"


def context_table(shares: pd.DataFrame, rows: pd.DataFrame) -> str:
    """Per deployed variant and context: the memory a run needs with each KV-cache type, and the share of the fleet
    on which it is accessible."""
    mem = rows.groupby(["variant", "n_ctx", "kv_type"], sort=False).mem_mb.first()
    sh = shares.set_index(["variant", "n_ctx", "kv_type"])
    body = []
    for (v, n_ctx), _ in shares.groupby(["variant", "n_ctx"], sort=False):
        body.append([v, f"{n_ctx:,}",
                     *[f"{mem[v, n_ctx, kv]:.0f}" for kv in KV_TYPES],
                     *[f"{100 * sh.loc[(v, n_ctx, kv), 'accessible_share']:.0f}" for kv in KV_TYPES]])
    return latex_table(
        ["Variant", "Context", *[Tex(f"MB {tex_escape(kv)}") for kv in KV_TYPES],
         *[Tex(f"Acc.\\,\\% {tex_escape(kv)}") for kv in KV_TYPES]], body,
        "Accessibility at a stated context length (capped at the model's trained context) and KV-cache type: the "
        "memory a run needs (the file, the KV cache of that many cells, and the compute and output buffers "
        "llama.cpp allocates at its default micro-batch of 512) and the share of the fleet on which the variant "
        "fits the memory budget and generates the last token of that context fast enough at the band's lower end. "
        "What the quantized caches cost in quality is in Table~\\ref{tab:kv-cache}; no accuracy was measured with them, "
        "so the headline verdicts use f16.",
        "tab:context", "lr" + "r" * 2 * len(KV_TYPES))


def context_memory(rows: pd.DataFrame, budgets: dict[str, float], bases: dict[str, str], out_dir: Path
                          ) -> list[Path]:
    """Memory a run needs against context length (log x, linear y), one panel per base model (its deployed
    variants, solid f16 cache, dashed q4_0), with the memory budgets of the fleet's smallest devices as lines."""
    models = list(dict.fromkeys(bases[v] for v in rows.variant))
    fig, axes = figure(1.0, 3.0, ncols=len(models), sharey=True, squeeze=False)
    colors = plt.get_cmap("tab10")
    one = rows.drop_duplicates(["variant", "n_ctx", "kv_type"])
    for ax, model in zip(axes[0], models, strict=True):
        variants = [v for v in dict.fromkeys(one.variant) if bases[v] == model]
        for i, v in enumerate(variants):
            for kv, style in (("f16", "-"), ("q4_0", "--")):
                g = one[(one.variant == v) & (one.kv_type == kv)].sort_values("n_ctx")
                ax.plot(g.n_ctx, g.mem_mb, style, color=colors(i), marker="o", markersize=2.5, linewidth=1,
                        label=f"{v.removeprefix(model + '-')}" if kv == "f16" else None)
        for name, mb in budgets.items():
            ax.axhline(mb, color="0.4", linewidth=0.6, linestyle=":")
            ax.text(one.n_ctx.min(), mb, f"{name} budget", fontsize=7, va="bottom", ha="left", color="0.3")
        log_axis(ax, "x")
        ticks = sorted(one[one.variant.isin(variants)].n_ctx.unique())
        ax.set_xticks(ticks, [f"{t:,}" for t in ticks])
        ax.set_ylim(0, one.mem_mb.max() * 1.08)
        ax.set_title(model)
        ax.set_xlabel("context (tokens)")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=2, frameon=False, fontsize=7)
    axes[0][0].set_ylabel("memory (MB; dashed: q4_0 cache)")
    return savefig(fig, out_dir / "context_memory")


def context_numbers(rows: pd.DataFrame, devices: dict[str, float]) -> dict[str, Macro]:
    """The paper's numbers about contexts: the fleet's smallest device, and on it how many (variant, context)
    verdicts change from the f16 to the q4_0 cache; the largest compute buffer of a deployed variant."""
    small = min(devices, key=devices.get)
    on = rows[rows.device == small].set_index(["variant", "n_ctx", "kv_type"]).state
    pairs = on.reset_index()[["variant", "n_ctx"]].drop_duplicates()
    changed = sum(on[v, c, KV_TYPES[0]] != on[v, c, KV_TYPES[-1]] for v, c in pairs.itertuples(index=False))
    big = rows.loc[rows.compute_mb.idxmax()]
    origin = f"{__name__}.{context_numbers.__qualname__}"
    n = {
        "kvTypes": (", ".join(tex_escape(k) for k in KV_TYPES[:-1]) + f" or {tex_escape(KV_TYPES[-1])}",
                    "edgellm.devices.memory.KV_TYPES"),
        "kvFull": (tex_escape(KV_TYPES[0]), "edgellm.devices.memory.KV_TYPES[0] (llama.cpp's default cache)"),
        "kvSmallest": (tex_escape(KV_TYPES[-1]), "edgellm.devices.memory.KV_TYPES[-1]"),
        "kvMiddle": (tex_escape(KV_TYPES[1]), "edgellm.devices.memory.KV_TYPES[1]"),
        "ctxUbatch": (N_UBATCH, "edgellm.devices.memory.N_UBATCH (llama.cpp's default micro-batch)"),
        "ctxDevice": (tex_escape(small), "the fleet device with the least RAM (device profiles)"),
        "ctxCells": (len(pairs), f"{CONTEXT_CSV}: (variant, n_ctx) pairs on ctxDevice"),
        "ctxChanged": (changed, f"{CONTEXT_CSV}: pairs on ctxDevice whose state differs between f16 and q4_0"),
        "ctxComputeModel": (tex_escape(big.variant), f"{CONTEXT_CSV}: the variant with the largest compute_mb"),
        "ctxComputeMb": (f"{big.compute_mb:.0f}", f"{CONTEXT_CSV}: compute_mb (max)"),
    }
    return {k: Macro(v, origin, src) for k, (v, src) in n.items()}
