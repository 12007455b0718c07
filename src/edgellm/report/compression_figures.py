"""Figures of the trade-off: every variant against size, one curve per method, and distillation.

One function per figure, named after the figure's file stem.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .analysis import pareto_front
from .figures import ci_err, style
from .results import ladder_method
from .plotting import figure, log_axis, savefig, sns


def method_curves(df: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """method -> its points in size order: the base ladder with the reference, each pruning method at its
    strengths (with the base model at the same type, its zero point), the K-aligned checkpoint's ladder."""
    out = {}
    for method, sub in df.groupby("method", sort=False):
        if (sub["recipe"] != "").all() and not method.endswith(", GGUF type"):  # a compression method
            anchor = df[(df["recipe"] == "") & df["type"].isin(sub["type"]) & (df["method"] == "GGUF type")]
            sub = pd.concat([anchor, sub])
        out[method] = sub.sort_values("file_mb")
    for recipe, lad in df[df["ladder"]].groupby("recipe", sort=False):
        out[ladder_method(recipe)] = lad.sort_values("file_mb")
    return out


def pareto_size(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Size against KL divergence, generalization accuracy and generation speed: a curve per method (pruning
    curves start at the base model at the same GGUF type), the Pareto front in black (for accuracy, over the
    variants evaluated on the full item set only)."""
    curves = method_curves(df)
    fig, axes = figure(1.0, 3.0, 1, 3)
    panels = (("kld", None, "KL divergence to the reference (nats/token)", False, True),
              ("gen_acc", "ci", "generalization accuracy (95 % CI)", True, False),
              ("tg_ts", "tg_ts_sd", "generation tg (tokens/s, ± sd)", True, False))
    for ax, (y, err, ylabel, higher, logy) in zip(axes, panels):
        for method, sub in curves.items():
            sub = sub[sub[y].notna() & ((sub[y] > 0) if logy else True)]
            color, marker = style(method)
            yerr = ci_err(sub, y) if err == "ci" else (sub[err].fillna(0) if err else None)
            ax.errorbar(sub["file_mb"], sub[y], yerr=yerr, fmt=marker + "-", color=color, ms=3.2, lw=0.8,
                        elinewidth=0.6, capsize=1.2, label=method)
        pts = df[df[y].notna() & ((df[y] > 0) if logy else True)]
        if y == "gen_acc":  # one front per item set: the frontier tier's accuracy rests on fewer items
            pts = pts[pts["tier"] != "frontier"]
        front = pareto_front(pts, "file_mb", y, higher)
        ax.step(front["file_mb"], front[y], where="post", color="black", lw=0.7, alpha=0.8, label="Pareto front")
        if logy:
            log_axis(ax, "y")
        ax.set(xlabel="GGUF file size (MB)", ylabel=ylabel)
    # no point labels: the points crowd between the 4- and 5-bit sizes, and labels would cover them; the methods
    # are told apart by the legend, each type by the ladder figure and the tables
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=4, frameon=False)
    return savefig(fig, out_dir / "pareto_size")


def distillation_recovery(rec: pd.DataFrame, histories: dict[str, list[dict]], out_dir: Path) -> list[Path]:
    """Left: held-out KL to the teacher of each pruned student before and after distillation. Right: held-out
    KL against distillation tokens, the default budget and four times it on the same student."""
    if not len(rec):
        return []
    fig, (ax1, ax2) = figure(1.0, 2.6, 1, 2)
    # pruned -> distilled as an arrow on a log scale: the mild points' KL (a few hundredths) and the harsh ones'
    # (a few nats) are both readable, and so is a distillation that makes a student worse
    labels = rec["recipe"] + " (" + rec["distill_tokens"].map("{:,.0f}".format) + " tok)"
    y = np.arange(len(rec))
    before, after = rec["heldout_kl_before"].to_numpy(), rec["heldout_kl_after"].to_numpy()
    pruned_color, kd_color = sns.color_palette("colorblind", 2)
    for yi, b, a in zip(y, before, after):
        ax1.annotate("", xy=(a, yi), xytext=(b, yi),
                     arrowprops={"arrowstyle": "-|>", "color": "0.35", "lw": 0.8, "shrinkA": 2.5, "shrinkB": 2.5})
    ax1.plot(before, y, "o", ms=4, color=pruned_color, label="pruned")
    ax1.plot(after, y, "s", ms=4, color=kd_color, label="pruned + KD")
    log_axis(ax1, "x")
    ax1.set_yticks(y, labels)
    ax1.invert_yaxis()
    ax1.set(xlabel="held-out KL to the teacher (nats/token, log)", ylabel="")
    ax1.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False)
    for i, (name, hist) in enumerate(histories.items()):
        h = pd.DataFrame(hist)
        held = h.dropna(subset=["heldout_kl"])
        color = sns.color_palette("colorblind", len(histories))[i]
        ax2.plot(held["tokens"], held["heldout_kl"], marker="o", ms=2.5, lw=0.9, color=color, label=name)
    log_axis(ax2, "y")
    ax2.set(xlabel="distillation tokens", ylabel="held-out KL to the teacher (nats/token, log)")
    ax2.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return savefig(fig, out_dir / "distillation_recovery")
