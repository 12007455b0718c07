"""The forest plot: every headline metric per variant with its bootstrap interval, significant changes marked."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

from .plotting import plt, savefig
from .results import HEADLINE


def quality_significance(df: pd.DataFrame, comp: pd.DataFrame, out_dir: Path, confidence: float, alpha: float,
                        note: str) -> list[Path]:
    """Forest plot: each headline metric per variant with its CI; significant changes vs the reference marked."""
    metrics_ = [m for m in HEADLINE if m in df and df[m].notna().any()]
    # drawn at the paper's text width, three panels a row, so that it prints legibly
    ncols = min(3, len(metrics_))
    nrows = -(-len(metrics_) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(7.2, nrows * (0.2 * len(df) + 1.1) + 0.4), sharey=True,
                             squeeze=False)
    for ax in axes.flat[len(metrics_):]:
        ax.axis("off")
    order = df.sort_values(["base", "recipe", "bpw"], ascending=[True, True, False])
    y = np.arange(len(order))
    for ax, m in zip(axes.flat, metrics_):
        label, higher, _ = HEADLINE[m]
        for yi, (_, r) in zip(y, order.iterrows()):
            sig = comp[(comp["variant"] == r["variant"]) & (comp["metric"] == m)]
            is_sig = bool(len(sig) and sig["significant"].iloc[0])
            worse = bool(len(sig) and sig["direction"].iloc[0] == "worse")
            color = ("#c0392b" if worse else "#1e8449") if is_sig else ("black" if pd.isna(r.get("reference")) else "grey")
            lo, hi = r.get(f"{m}_ci_low"), r.get(f"{m}_ci_high")
            if pd.notna(lo):
                ax.plot([lo, hi], [yi, yi], color=color, lw=1.5)
            ax.plot(r[m], yi, "o", color=color, mfc=color if is_sig else "white", ms=5)
        ax.set_title(textwrap.fill(label, 27), fontsize=8)
        ax.set_xlim(-0.02, 1.02)
        ax.set_xlabel("higher is better" if higher else "lower is better", fontsize=7)
        ax.tick_params(axis="x", labelsize=7)
    for row in axes:
        row[0].set_yticks(y)
        row[0].set_yticklabels(order["variant"], fontsize=7)
    axes[0][0].invert_yaxis()
    fig.suptitle(f"Accuracy and hallucination per variant with {confidence:.0%} bootstrap intervals", fontsize=10)
    fig.text(0.01, -0.01, f"Filled markers: significantly different from the variant's reference on the same items "
             f"(red worse, green better; McNemar exact test for 0/1 scores, sign-flip permutation test for MC2; "
             f"Holm-adjusted within each metric, alpha = {alpha}). Black: reference variants. Reference: the base model at the "
             "same GGUF type for compressed variants, the base model's F16 for quantized ones. " + note,
             fontsize=7, ha="left", va="top", wrap=True)
    fig.tight_layout()
    return savefig(fig, out_dir / "quality_significance")
