"""The forest plot of differences: every variant minus its reference on the same items, with the paired
bootstrap interval of the difference, the minimum detectable difference, and Holm-significant changes marked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .plotting import figure, savefig, sns
from .results import HEADLINE, short_name

#: the hallucination metrics of the right-hand panel (the comparisons table has every metric), short labels
HALLUCINATION_PANEL = {"halluc_mc1": "MC1 error", "halluc_gen_rougeL": "not truthful (ROUGE-L)",
                       "halluc_gen_embed": "not truthful (embedding)", "informative": "informative"}


def _forest(ax, comp: pd.DataFrame, metrics: list[str]) -> None:
    variants = list(dict.fromkeys(comp["variant"]))
    y = np.arange(len(variants))
    offsets = np.linspace(-0.22, 0.22, len(metrics)) if len(metrics) > 1 else [0.0]
    colors = sns.color_palette("colorblind", len(metrics)) if len(metrics) > 1 else ["black"]
    for off, m, color in zip(offsets, metrics, colors):
        sub = comp[comp["metric"] == m].set_index("variant")
        labelled = False
        for yi, v in zip(y, variants):
            if v not in sub.index:
                continue
            c = sub.loc[v]
            yy = yi + off
            ax.plot([-c["mde"], c["mde"]], [yy, yy], color="0.82", lw=3.2, solid_capstyle="butt", zorder=1)
            ax.plot([c["ci_low"], c["ci_high"]], [yy, yy], color=color, lw=1, zorder=2)
            ax.plot(c["delta"], yy, "o", ms=3.2, color=color, mfc=color if c["significant"] else "white", zorder=3,
                    label=None if labelled else HALLUCINATION_PANEL.get(m, HEADLINE[m][0]))
            labelled = True
    ax.axvline(0, color="black", lw=0.6)
    ax.set_yticks(y, variants)
    ax.invert_yaxis()


def quality_significance(df: pd.DataFrame, comp: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Left: generalization accuracy, every variant minus its reference. Right: the hallucination metrics of the
    main-tier variants. Line: the paired bootstrap interval of the difference; grey band: +/- the minimum
    detectable difference; filled marker: Holm-significant."""
    if not len(comp):
        return []
    short = {v: short_name(v, b) for v, b in zip(df["variant"], df["base"])}
    comp = comp.assign(variant=comp["variant"].map(lambda v: short.get(v, v)))
    acc = comp[comp["metric"] == "gen_acc"]
    hall = [m for m in HALLUCINATION_PANEL if m in set(comp["metric"])]
    n_left = max(1, acc["variant"].nunique())
    # 0.13 in a row: 7 pt labels (0.1 in) with room, and both models' panels and the caption fit one page
    fig, (ax1, ax2) = figure(1.0, 0.13 * n_left + 1.0, 1, 2, width_ratios=[1, 1])
    _forest(ax1, acc, ["gen_acc"])
    ax1.set(xlabel="difference in generalization accuracy")
    if hall:
        _forest(ax2, comp[comp["metric"].isin(hall)], hall)
        ax2.set(xlabel="difference in rate")
        fig.legend(*ax2.get_legend_handles_labels(), loc="outside upper center", ncol=len(hall), frameon=False,
                   columnspacing=0.8, title="right: hallucination metrics (MC1; generated answers)")
    else:
        ax2.axis("off")
    return savefig(fig, out_dir / "quality_significance")
