"""Figures of the compressed variants: every variant against size with the Pareto front, and distillation.

One function per figure, named after the figure's file stem.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .analysis import pareto_front
from .plotting import plt, savefig, sns


def pareto_size(df: pd.DataFrame, out_dir: Path, base_note: str) -> list[Path]:
    """Every variant on size/quality/speed axes, with the Pareto front."""
    kinds = sorted(df["kind"].unique(), key=lambda k: (k != "quantized", k))
    palette = dict(zip(kinds, sns.color_palette("colorblind", len(kinds))))
    note = ("Sparse variants store their zeros densely in GGUF: same size and speed as the dense model. "
            + base_note)

    # drawn at the paper's text width (2 x 2: three panels and the legend), so that it prints legibly
    fig, grid = plt.subplots(2, 2, figsize=(7.2, 5.8))
    axes, legend_ax = grid.flat[:3], grid.flat[3]
    for ax, (y, err, ylabel, better_high, logy) in zip(axes, (
            ("gen_acc", "gen_acc_stderr", "Generalization accuracy (± s.e.)", True, False),
            ("ppl", "ppl_stderr", "WikiText-2 perplexity (± s.e.)", False, True),
            ("tg_ts", "tg_ts_sd", "Generation speed tg (tokens/s, ± sd)", True, False))):
        ax.errorbar(df["file_mb"], df[y], yerr=df[err].fillna(0), fmt="none", ecolor="grey", alpha=0.5, capsize=2)
        sns.scatterplot(data=df, x="file_mb", y=y, hue="kind", style="kind", palette=palette, hue_order=kinds,
                        s=45, ax=ax, legend=ax is axes[0], zorder=3)
        front = pareto_front(df, "file_mb", y, better_high)
        ax.step(front["file_mb"], front[y], where="post", color="black", lw=0.8, alpha=0.7,
                label="Pareto front" if ax is axes[0] else None)
        for _, r in df.iterrows():
            label = r["recipe"] + ("/" if r["recipe"] else "") + r["type"]
            ax.annotate(label, (r["file_mb"], r[y]), textcoords="offset points", xytext=(3, 3), fontsize=6)
        if logy:
            ax.set_yscale("log")
        ax.set_xlabel("GGUF file size (MB)", fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.tick_params(labelsize=7)
    handles, labels = axes[0].get_legend_handles_labels()
    axes[0].get_legend().remove()
    legend_ax.axis("off")
    legend_ax.legend(handles, labels, fontsize=8, title=None, loc="center")
    fig.suptitle("All variants: quality and speed against size (black: Pareto front)", fontsize=10)
    fig.text(0.01, -0.01, note, fontsize=7, ha="left", va="top", wrap=True)
    fig.tight_layout()
    return savefig(fig, out_dir / "pareto_size")


def distillation_recovery(rec: pd.DataFrame, histories: dict[str, list[dict]], out_dir: Path,
                          base_note: str) -> list[Path]:
    """Perplexity lost by pruning and won back by distillation, and the distillation curves."""
    if not (len(rec) and "ppl_pruned" in rec):
        return []
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(7.2, 3.3))  # at the paper's text width
    bars = []
    for _, r in rec.iterrows():
        for stage, col in (("base", "ppl_base"), ("pruned", "ppl_pruned"), ("pruned + KD", "ppl_distilled")):
            if pd.notna(r.get(col)):
                bars.append({"variant": f"{r['recipe']} ({r['type']})", "stage": stage, "ppl": r[col]})
    sns.barplot(data=pd.DataFrame(bars), x="variant", y="ppl", hue="stage", ax=ax1, palette="colorblind")
    for i, (_, r) in enumerate(rec.iterrows()):
        if pd.notna(r.get("ppl_recovered_share")):
            ax1.annotate(f"{100 * r['ppl_recovered_share']:.0f}% of the loss recovered", (i, r["ppl_pruned"]),
                         textcoords="offset points", xytext=(0, 4), ha="center", fontsize=7)
    ax1.set(xlabel="", ylabel="WikiText-2 perplexity", title="Perplexity lost by pruning, won back by KD")
    ax1.legend(fontsize=7)
    for i, (name, hist) in enumerate(histories.items()):
        h = pd.DataFrame(hist)
        color = sns.color_palette("colorblind")[i % 10]
        if "loss" in h:
            train = h.dropna(subset=["loss"])
            ax2.plot(train["tokens"], train["loss"].rolling(4, min_periods=1).mean(), color=color, alpha=0.5,
                     lw=1, label=f"{name}: training loss (running mean of 4 steps)")
        held = h.dropna(subset=["heldout_kl"])
        ax2.plot(held["tokens"], held["heldout_kl"], marker="o", color=color, label=f"{name}: held-out KL")
    ax2.set(xlabel="distillation tokens", ylabel="KL to the teacher (nats/token)",
            title="Distillation: training loss and held-out KL")
    ax2.legend(fontsize=7)
    fig.text(0.01, -0.03, "Recovered share = (PPL_pruned - PPL_KD) / (PPL_pruned - PPL_base) at the same GGUF "
             "type. " + base_note, fontsize=6.5, ha="left", va="top", wrap=True)
    fig.tight_layout()
    return savefig(fig, out_dir / "distillation_recovery")
