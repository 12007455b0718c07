"""Figures and the table of the device projection's validation and of the banded verdicts, at print size.

- :func:`validation_figure`: projected against measured tokens/s, log-log, one colour per device and one marker
  per test, for the host-carried projection (what the fleet table does) and the held-out calibrated one, with the
  ``y = x`` line and a ±25 % corridor;
- :func:`verdict_figure`: per variant and fleet device, the three-state verdict of the best backend the bundle
  runs, with the speed band; measured cells are bold with an asterisk, projected ones hatched;
- :func:`validation_table`: per device, backend and test, the errors of both projections and the band.

The validation and verdict notebooks draw them (``06e``, ``06f``); the report saves them with
:func:`.plotting.savefig`, which records their print size and smallest font.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.patches import Patch, Rectangle

from .latex import Tex, fmt, latex_table
from .plotting import MIN_FONT_PT, figure, log_axis, plt, sns

#: the verdict states, best first, and how they are drawn (colour-blind-safe, distinct in grey)
STATE_COLOURS = {"accessible": "#66c2a5", "borderline": "#fdae61", "not accessible": "#d9d9d9"}
MARKERS = {"pp": "o", "tg": "^"}


def validation_figure(points: pd.DataFrame):
    """Two log-log panels, host-carried and held out; points that are neither pp nor tg are left out."""
    cmp = points[points.comparable]
    devices = sorted(cmp.device.unique())
    colours = dict(zip(devices, sns.color_palette("tab10", len(devices))))
    fig, axes = figure(1.0, 3.0, 1, 2, sharex=True, sharey=True)
    lo, hi = cmp.measured_ts.min() / 1.6, cmp.measured_ts.max() * 1.6
    for ax, col, title in zip(axes, ["projected_host", "projected_heldout"],
                              ["carried from this host (the fleet table)", "calibrated, held out (one model out)"]):
        for (dev, test), g in cmp.groupby(["device", "test"]):
            g = g.dropna(subset=[col])
            ax.scatter(g.measured_ts, g[col], s=14, marker=MARKERS[test], color=colours[dev], alpha=0.85,
                       linewidths=0.4, edgecolors="0.2")
        ax.plot([lo, hi], [lo, hi], color="0.2", lw=0.8)
        for f in (1.25, 1 / 1.25):
            ax.plot([lo, hi], [lo * f, hi * f], color="0.45", lw=0.6, ls="--")
        log_axis(ax, "x")
        log_axis(ax, "y")
        ax.set(xlim=(lo, hi), ylim=(lo, hi), xlabel="measured tokens/s", title=title)
        ax.set_aspect("equal")
    axes[0].set_ylabel("projected tokens/s")
    handles = [Patch(color=colours[d], label=d) for d in devices]
    handles += [plt.Line2D([], [], marker=m, ls="", color="0.3", label=t, markersize=4) for t, m in MARKERS.items()]
    fig.legend(handles=handles, loc="outside right center", frameon=False)
    return fig


def verdict_figure(best: pd.DataFrame, min_tg_ts: float):
    """Variants down, fleet devices across; colour = state, text = the generation band (tokens/s)."""
    variants = sorted(best.variant.unique())
    devices = list(dict.fromkeys(best.device))
    idx = best.set_index(["variant", "device"])
    fig, ax = figure(1.0, 0.17 * len(variants) + 1.0)
    for i, v in enumerate(variants):
        for j, d in enumerate(devices):
            r = idx.loc[(v, d)]
            ax.add_patch(Rectangle((j, i), 1, 1, facecolor=STATE_COLOURS[r.state], edgecolor="white", lw=0.8,
                                   hatch=None if r.measured else "////", alpha=0.95))
            text = f"{r.tg_ts:.1f}*" if r.measured else f"{r.tg_low:.0f}–{r.tg_high:.0f}"
            ax.text(j + 0.5, i + 0.5, text, ha="center", va="center", fontsize=MIN_FONT_PT,
                    fontweight="bold" if r.measured else "normal",
                    bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.6, "alpha": 0.85})
    ax.set(xlim=(0, len(devices)), ylim=(len(variants), 0))
    ax.set_xticks(np.arange(len(devices)) + 0.5, devices, rotation=0)
    ax.set_yticks(np.arange(len(variants)) + 0.5, [v.split("-", 2)[-1] for v in variants])
    ax.tick_params(length=0)
    ax.grid(False)
    handles = [Patch(facecolor=c, label=s) for s, c in STATE_COLOURS.items()]
    handles.append(Patch(facecolor="white", edgecolor="0.3", hatch="////", label="projected (band)"))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.02 - 0.5 / len(variants)), ncol=4,
              frameon=False, title=f"generation tokens/s; accessible: band's lower end ≥ {min_tg_ts:g}")
    return fig


def validation_table(summary: pd.DataFrame) -> str:
    """Per device, backend and test: points, the error factors of the host-carried projection and of the device
    model held out by model and by device, and the band."""
    def factor(x) -> str:
        return fmt(x, 2) if not (isinstance(x, float) and math.isnan(x)) else "--"

    rows = []
    for r in summary.itertuples():
        held = r.heldout_median_factor if not math.isnan(r.heldout_median_factor) else r.crossdevice_median_factor
        mark = "" if not math.isnan(r.heldout_median_factor) else "$^{x}$"
        band = factor(r.band_factor) + ("" if r.band_source == "own" else "$^{n}$")
        rows.append([r.device, r.backend, r.test, f"{r.n_points} / {r.n_models}",
                     factor(r.host_median_factor), factor(r.host_worst_factor),
                     Tex(factor(held) + mark), factor(r.heldout_worst_factor), factor(r.lodo_median_factor),
                     Tex(band)])
    return latex_table(
        ["Device", "Backend", "Test", "Points / models", "Host median", "Host worst", "LOMO median",
         "LOMO worst", "LODO median", "Band"], rows,
        "The device projection against published llama.cpp measurements (\\texttt{data/published}): the error "
        "factor $e^{|\\log(\\mathrm{projected}/\\mathrm{measured})|}$ of the projection carried from this host and of "
        "the device model (a fixed cost per layer and the bandwidth roof for generation, one efficiency per weight "
        "family for prompts) fitted on the device's other models (LOMO: leave one model out; $^{x}$ fitted on the "
        "same backend of the other devices, the device having one model) and on the other devices only (LODO: "
        "leave one device out). Band: the 90th percentile of the LOMO errors; $^{n}$ a device and backend without "
        "enough points of its own, whose band is at least its backend's LODO error.",
        "tab:validation", "lllrrrrrrr")


def size_table(sizes: pd.DataFrame, target: float) -> str:
    """Per device, backend and model-size class: the generation error held out by model and by device, and
    whether the median meets the target where the class has enough points to judge."""
    def factor(x) -> str:
        return fmt(x, 2) if not (isinstance(x, float) and math.isnan(x)) else "--"

    tg = sizes[sizes.test == "tg"]
    rows = [[r.device, r.backend, Tex(r.size_class.replace("<=", "$\\le$")), r.n_points,
             factor(r.heldout_median_factor), factor(r.lodo_median_factor),
             "--" if r.meets_target is None or (isinstance(r.meets_target, float) and math.isnan(r.meets_target))
             else ("yes" if r.meets_target in (True, "True") else "no")] for r in tg.itertuples()]
    return latex_table(
        ["Device", "Backend", "Model size", "Points", "LOMO median", "LODO median", f"Within {fmt(target, 2)}x"],
        rows,
        "Generation error of the device model by model size (billions of parameters): held out by model (LOMO) "
        "and by device (LODO). The target is judged only where a class has at least five points held out on its "
        "own device (--: fewer).",
        "tab:validation-sizes", "llrrrrl")

