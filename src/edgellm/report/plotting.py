"""The one plotting set-up of the report: a headless backend, the seaborn theme, and how a figure is saved.

Every figure module imports ``plt`` and ``sns`` from here, so the backend and
the theme are set once, before anything is drawn.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from ..io import atomic_path

sns.set_theme(style="whitegrid", context="paper")

__all__ = ["label_points", "matplotlib", "plt", "savefig", "sns"]

#: no timestamps or tool versions in the files, so that the same figure gives the same bytes
METADATA = {".png": {"Software": None}, ".pdf": {"CreationDate": None, "Producer": None, "Creator": None}}


def savefig(fig, stem: Path) -> list[Path]:
    """``stem``.png and ``stem``.pdf, written atomically with fixed metadata; closes the figure."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    outs = []
    for ext, meta in METADATA.items():
        path = stem.with_suffix(ext)
        with atomic_path(path, suffix=ext) as tmp:
            fig.savefig(tmp, dpi=200, bbox_inches="tight", metadata=meta)
        outs.append(path)
    plt.close(fig)
    return outs


def label_points(ax, df: pd.DataFrame, x: str, y: str) -> None:
    """Type labels, alternately above and below the points so that neighbours stay legible."""
    pts = df[df[x].notna() & df[y].notna()].sort_values(x)
    for i, (_, r) in enumerate(pts.iterrows()):
        ax.annotate(r["type"], (r[x], r[y]), textcoords="offset points", xytext=(4, 5 if i % 2 == 0 else -11),
                    fontsize=7)
