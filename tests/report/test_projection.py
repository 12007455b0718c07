"""Figures and table of the projection's validation and of the banded verdicts (``edgellm.report.projection``)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from matplotlib.patches import Rectangle

from edgellm.paths import Layout, project_root
from edgellm.report.plotting import MIN_FONT_PT, TEXT_WIDTH_IN, savefig
from edgellm.report.projection import STATE_COLOURS, validation_figure, validation_table, verdict_figure

LAY = Layout(project_root())
POINTS = pd.read_csv(LAY.validation_points)
BEST = pd.read_csv(LAY.device_verdicts)


def _print_check(fig, tmp_path, name):
    savefig(fig, tmp_path / name)
    info = json.loads((tmp_path / f"{name}.json").read_text())
    assert info["width_in"] == pytest.approx(TEXT_WIDTH_IN, abs=1e-3) and info["min_font_pt"] >= MIN_FONT_PT
    assert (tmp_path / f"{name}.pdf").stat().st_size > 5_000


def test_validation_figure_draws_every_comparable_point_in_both_panels(tmp_path):
    fig = validation_figure(POINTS)
    cmp = POINTS[POINTS.comparable]
    for ax, col in zip(fig.axes[:2], ["projected_host", "projected_heldout"]):
        drawn = sum(len(c.get_offsets()) for c in ax.collections)
        assert drawn == cmp[col].notna().sum()
        assert ax.get_xscale() == ax.get_yscale() == "log"
    labels = {t.get_text() for t in fig.legends[0].get_texts()}
    assert set(cmp.device) | {"pp", "tg"} <= labels
    _print_check(fig, tmp_path, "validation")


def test_verdict_figure_one_cell_per_variant_and_device_hatched_when_projected(tmp_path):
    best = BEST.copy()
    best.loc[0, ["measured", "tg_ts"]] = [True, 12.3]          # one measured cell must look different
    fig = verdict_figure(best, 10)
    ax = fig.axes[0]
    cells = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_width() == 1]
    assert len(cells) == len(best)
    assert sum(bool(p.get_hatch()) for p in cells) == len(best) - 1
    assert {p.get_facecolor()[:3] for p in cells} <= {tuple(int(c[i:i + 2], 16) / 255 for i in (1, 3, 5))
                                                      for c in STATE_COLOURS.values()}
    texts = [t for t in ax.texts if t.get_text() == "12.3*"]
    assert len(texts) == 1 and texts[0].get_fontweight() == "bold"
    _print_check(fig, tmp_path, "verdicts")


def test_validation_table_has_a_row_per_device_backend_and_test():
    summary = pd.read_csv(LAY.validation_table)
    tex = validation_table(summary)
    body = tex.split("\\midrule")[1].split("\\bottomrule")[0].strip().splitlines()
    assert len(body) == len(summary)
    assert "raspberry-pi-4 & cpu & tg" in tex and "\\label{tab:validation}" in tex
    assert "\n".join(body).count("$^{x}$") == int((summary.heldout_median_factor.isna() & summary.crossdevice_median_factor.notna()).sum())
