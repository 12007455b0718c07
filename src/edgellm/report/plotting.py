"""The one plotting set-up of the report: a headless backend, the theme, print sizes, and how a figure is saved.

Every figure module imports ``plt`` and ``sns`` from here, so the backend and
the theme are set once, before anything is drawn. Figures are drawn at the size
they are printed (a fraction of the paper's text width, :data:`TEXT_WIDTH_IN`),
with no text under :data:`MIN_FONT_PT`; :func:`savefig` writes each figure's
size and smallest font next to it (``<stem>.json``), and a test checks them
against the ``\\includegraphics`` widths of ``paper/main.tex``.
"""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from adjustText import adjust_text

from ..io import atomic_path, write_json

#: the paper's text width: A4 (8.27 in) less two 2 cm margins (``\usepackage[a4paper,margin=2cm]{geometry}``)
TEXT_WIDTH_IN = 8.27 - 2 * 2 / 2.54
#: the smallest text a figure may print (points, at its printed size), a sub- or superscript included
MIN_FONT_PT = 7.0
#: how much smaller mathtext draws a sub- or superscript than its text (matplotlib's mathtext SHRINK_FACTOR)
SCRIPT_SHRINK = 0.7

sns.set_theme(style="whitegrid", context="paper")
plt.rcParams.update({
    "font.size": 7.5, "axes.titlesize": 8, "axes.labelsize": 7.5, "xtick.labelsize": 7, "ytick.labelsize": 7,
    "legend.fontsize": 7, "legend.title_fontsize": 7, "figure.titlesize": 8.5,
    # hatching (estimated values) must survive printing: dense, dark and thick enough
    "hatch.linewidth": 0.9, "hatch.color": "0.15",
})

__all__ = ["MIN_FONT_PT", "TEXT_WIDTH_IN", "clipped_texts", "figure", "label_points", "log_axis", "matplotlib",
           "overlapping_texts", "plt", "savefig", "sns"]

#: no timestamps or tool versions in the files, so that the same figure gives the same bytes
METADATA = {".png": {"Software": None}, ".pdf": {"CreationDate": None, "Producer": None, "Creator": None}}


def figure(width: float = 1.0, height_in: float = 2.6, nrows: int = 1, ncols: int = 1, **kw):
    """A figure printed at ``width`` of the text width (the ``\\includegraphics`` width must say the same)."""
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * TEXT_WIDTH_IN, height_in), layout="constrained", **kw)
    fig.print_width = width
    return fig, axes


def printed_size(t) -> float:
    """A text's smallest printed size (pt): its font size, or :data:`SCRIPT_SHRINK` of it where mathtext draws a
    sub- or superscript (a log axis's "10^-2" prints its exponent that much smaller)."""
    math = re.findall(r"\$[^$]*\$", t.get_text())
    return t.get_fontsize() * (SCRIPT_SHRINK if any(("^" in m or "_" in m) for m in math) else 1.0)


def smallest_font(fig) -> float:
    """The smallest printed size (pt) of any visible, non-empty text of the figure (:func:`printed_size`)."""
    fig.canvas.draw()  # tick labels get their text when drawn
    sizes = [printed_size(t) for t in fig.findobj(matplotlib.text.Text) if t.get_visible() and t.get_text().strip()]
    return float(min(sizes)) if sizes else MIN_FONT_PT


def log_axis(ax, which: str = "y") -> None:
    """A log scale whose tick labels are plain numbers ("0.01", "100"), not powers of ten whose exponents print
    at 70 % of the tick labels' size; minor ticks carry no labels."""
    axis = ax.yaxis if which == "y" else ax.xaxis
    (ax.set_yscale if which == "y" else ax.set_xscale)("log")
    axis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def _drawn_text_boxes(fig, renderer):
    """(name, display box) of every piece of text the figure draws: each axis (its drawn tick labels and its
    label; ticks outside the view are not drawn and not counted), titles, annotations and legends."""
    texts = list(fig.texts)
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            bb = axis.get_tightbbox(renderer) if axis.get_visible() and ax.axison else None  # not drawn when off
            if bb is not None and bb.width > 0:
                yield (axis.label.get_text() or f"{axis.axis_name} tick labels"), bb
        texts += [ax.title, *ax.texts]
        if ax.get_legend() is not None:
            texts.append(ax.get_legend())
    texts += list(fig.legends)
    for t in texts:
        if t.get_visible() and (not isinstance(t, matplotlib.text.Text) or t.get_text().strip()):
            name = t.get_text() if isinstance(t, matplotlib.text.Text) else "legend"
            yield name, t.get_window_extent(renderer)


def _text_pieces(fig, renderer):
    """(name, display box) of every single piece of text the figure draws: each drawn tick label and axis label
    apart (two axes' label groups may share a corner without their texts touching), titles, annotations, and each
    legend as one box."""
    for ax in fig.axes:
        if not ax.axison:
            continue
        for axis in (ax.xaxis, ax.yaxis):
            if not axis.get_visible():
                continue
            lo, hi = sorted(axis.get_view_interval())
            for tick in axis.get_major_ticks():
                label = tick.label1
                if label.get_visible() and label.get_text().strip() and lo <= tick.get_loc() <= hi:
                    yield f"{axis.axis_name} tick {label.get_text()}", label.get_window_extent(renderer)
            if axis.label.get_visible() and axis.label.get_text().strip():
                yield axis.label.get_text(), axis.label.get_window_extent(renderer)
    for name, box in _drawn_text_boxes(fig, renderer):
        if not (name.endswith("tick labels") or any(name == ax_.get_xlabel() or name == ax_.get_ylabel()
                                                     for ax_ in fig.axes)):
            yield name, box


def overlapping_texts(fig, tolerance_px: float = 0.5) -> list[tuple[str, str]]:
    """Pairs of texts whose drawn boxes overlap (by more than ``tolerance_px`` each way): a label printed on
    another is unreadable whatever its size."""
    fig.canvas.draw()
    pieces = list(_text_pieces(fig, fig.canvas.get_renderer()))
    out = []
    for i, (a, ea) in enumerate(pieces):
        for b, eb in pieces[i + 1:]:
            if (min(ea.x1, eb.x1) - max(ea.x0, eb.x0) > tolerance_px
                    and min(ea.y1, eb.y1) - max(ea.y0, eb.y0) > tolerance_px):
                out.append((a, b))
    return out


def clipped_texts(fig, tolerance_px: float = 1.0) -> list[str]:
    """The texts (axis and tick labels, titles, annotations, legends) that reach past the figure's edge: at the
    print size there is no tight bounding box to rescue them, so they would be cut off in the paper."""
    fig.canvas.draw()
    box = fig.bbox
    return [name for name, e in _drawn_text_boxes(fig, fig.canvas.get_renderer())
            if e.x0 < box.x0 - tolerance_px or e.y0 < box.y0 - tolerance_px or e.x1 > box.x1 + tolerance_px
            or e.y1 > box.y1 + tolerance_px]


def savefig(fig, stem: Path) -> list[Path]:
    """``stem``.png and ``stem``.pdf at the figure's own size (no tight bounding box: the size is the print
    size), written atomically with fixed metadata, and ``stem``.json (size, print width, smallest font).
    A figure with text past its edge is refused before anything is written."""
    for ax in fig.axes:
        if getattr(ax, "point_labels", None):
            separate(ax, ax.point_labels)
    clipped = clipped_texts(fig)
    if clipped:
        plt.close(fig)
        raise ValueError(f"{stem.name}: text past the figure's edge would be cut off in print: {clipped}")
    overlaps = overlapping_texts(fig)
    if overlaps:
        plt.close(fig)
        raise ValueError(f"{stem.name}: texts drawn on each other: {overlaps[:6]}")
    stem.parent.mkdir(parents=True, exist_ok=True)
    outs = []
    for ext, meta in METADATA.items():
        path = stem.with_suffix(ext)
        with atomic_path(path, suffix=ext) as tmp:
            fig.savefig(tmp, dpi=300, metadata=meta)
        outs.append(path)
    w, h = fig.get_size_inches()
    write_json(stem.with_suffix(".json"), {"width_in": round(float(w), 4), "height_in": round(float(h), 4),
                                           "print_width": getattr(fig, "print_width", None),
                                           "min_font_pt": smallest_font(fig)})
    plt.close(fig)
    return outs


def label_points(ax, df: pd.DataFrame, x: str, y: str, label: str = "type", fontsize: float = MIN_FONT_PT) -> None:
    """A label at every point, placed by adjustText (away from the points and each other), then separated
    vertically wherever two labels still overlap: adjustText minimises overlaps, this guarantees none."""
    pts = df[df[x].notna() & df[y].notna()]
    texts = [ax.text(r[x], r[y], str(r[label]), fontsize=fontsize) for _, r in pts.iterrows()]
    if texts:
        # a fixed iteration budget: adjustText's default is one second of work, so the layout depended on the CPU
        adjust_text(texts, x=pts[x].tolist(), y=pts[y].tolist(), ax=ax, ensure_inside_axes=True, expand=(1.2, 1.4),
                    iter_lim=500,
                    arrowprops={"arrowstyle": "-", "color": "0.5", "lw": 0.4})
        separate(ax, texts)
        # kept on the axes: savefig separates them again once the figure's layout is final (a legend or a panel
        # drawn after them resizes the axes, and labels placed in data coordinates move closer)
        ax.point_labels = [*getattr(ax, "point_labels", []), *texts]


def separate(ax, texts: list, gap_px: float = 1.0, rounds: int = 200) -> None:
    """Move labels apart vertically (in display space) until no two bounding boxes overlap."""
    fig = ax.figure
    for _ in range(rounds):
        fig.canvas.draw()
        r = fig.canvas.get_renderer()
        boxes = [t.get_window_extent(r) for t in texts]
        moved = False
        for i in range(len(texts)):
            for j in range(i + 1, len(texts)):
                a, b = boxes[i], boxes[j]
                if not a.overlaps(b):
                    continue
                # the lower label moves down by the overlap (plus a gap), in display coordinates, unless that
                # takes it below the axes: then the upper one moves up
                lower, upper = (j, i) if b.y0 <= a.y0 else (i, j)
                dy = min(a.y1, b.y1) - max(a.y0, b.y0) + gap_px
                if boxes[lower].y0 - dy >= ax.bbox.y0:
                    t, shift = texts[lower], -dy
                else:
                    t, shift = texts[upper], dy
                px, py = ax.transData.transform(t.get_position())
                t.set_position(ax.transData.inverted().transform((px, py + shift)))
                moved = True
                break
            if moved:
                break
        if not moved:
            return
