"""Figures a reader can read in print: the size each figure is drawn at, its smallest font and the width the
paper prints it at, from the committed figures and paper/main.tex; point labels that do not overlap."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from edgellm.report.plotting import (MIN_FONT_PT, TEXT_WIDTH_IN, clipped_texts, figure, label_points, log_axis,
                                     overlapping_texts, plt, savefig, separate, smallest_font)

ROOT = Path(__file__).resolve().parents[2]
MAIN = (ROOT / "paper" / "main.tex").read_text()
MODELS = list(yaml.safe_load((ROOT / "params.yaml").read_text())["models"])
#: (print width, figure file stem under figures/): \includegraphics of a figure drawn once, \permodel{stem}{width}
#: of one drawn per base model (paper/generated/figures.tex includes figures/<model>/<stem>.pdf for each)
INCLUDES = (re.findall(r"\\includegraphics\[width=([0-9.]+)\\linewidth\]\{([\w-]+)\.pdf\}", MAIN)
            + [(frac, f"{m}/{stem}") for stem, frac in re.findall(r"\\permodel\{([\w-]+)\}\{([0-9.]+)\}", MAIN)
               for m in MODELS])


def pdf_width_in(path: Path) -> float:
    """The page width of a one-page PDF (its MediaBox), in inches."""
    box = re.search(rb"/MediaBox\s*\[\s*([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s*\]", path.read_bytes())
    assert box, f"{path}: no MediaBox"
    return (float(box.group(3)) - float(box.group(1))) / 72


def test_text_width_is_the_papers():
    # TEXT_WIDTH_IN is A4 less two 2 cm margins: the geometry main.tex uses
    assert r"\usepackage[a4paper,margin=2cm]{geometry}" in MAIN
    assert TEXT_WIDTH_IN == pytest.approx(8.27 - 4 / 2.54)


def test_every_figure_in_the_paper_is_drawn_at_its_print_width_with_legible_text():
    assert len(INCLUDES) >= 6
    for frac, stem in INCLUDES:
        meta = json.loads((ROOT / "figures" / f"{stem}.json").read_text())
        pdf_w = pdf_width_in(ROOT / "figures" / f"{stem}.pdf")
        assert pdf_w == pytest.approx(meta["width_in"], abs=0.02), stem  # the file is the size it says
        printed = float(frac) * TEXT_WIDTH_IN
        scale = printed / pdf_w
        assert meta["min_font_pt"] * scale >= MIN_FONT_PT - 1e-6, (stem, meta, scale)


def test_every_figure_in_the_paper_has_a_caption_and_exists():
    for _, stem in INCLUDES:
        assert (ROOT / "figures" / f"{stem}.pdf").is_file(), stem
        name = stem.split("/")[-1]
        at = MAIN.find(f"{{{name}.pdf}}") if "/" not in stem else MAIN.find(f"\\permodel{{{name}}}")
        assert at >= 0, stem
        block = MAIN[at:]
        assert "\\caption{" in block[: block.index("\\end{figure}")], stem


def _boxes(ax):
    fig = ax.figure
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    return [t.get_window_extent(r) for t in ax.texts]


def test_point_labels_do_not_overlap():
    # ten points packed into a corner, as the quantization ladder's are
    df = pd.DataFrame({"x": [6.3, 6.4, 6.45, 6.5, 6.6, 6.7, 7.0, 5.3, 5.35, 5.4],
                       "y": [0.06, 0.061, 0.062, 0.06, 0.063, 0.064, 0.066, 0.45, 0.46, 0.44],
                       "type": ["Q5_K_M", "Q6_K", "Q4_K_M", "Q8_0", "Q4_1", "Q4_0", "Q5_0", "Q3_K_M", "Q2_K",
                                "Q2_K-imat"]})
    fig, ax = figure(0.5, 2.6)
    ax.plot(df["x"], df["y"], "o")
    ax.set_yscale("log")
    label_points(ax, df, "x", "y")
    boxes = _boxes(ax)
    assert len(boxes) == len(df)
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not a.overlaps(b), (a, b)
    plt.close(fig)


def test_overlapping_labels_at_the_bottom_of_the_axes_move_up_not_off_the_page():
    # two labels on the lowest point of a log axis, as the origin type's KL is
    fig, ax = figure(0.5, 2.6)
    ax.plot([5.7, 8.0], [0.003, 0.08], "o")
    ax.set_yscale("log")
    ax.set_ylim(0.003, 0.1)
    texts = [ax.text(5.7, 0.0032, "Q4_1", fontsize=6.5), ax.text(5.72, 0.0032, "Q5_K_M", fontsize=6.5)]
    separate(ax, texts)
    a, b = _boxes(ax)
    assert not a.overlaps(b)
    assert min(a.y0, b.y0) >= ax.bbox.y0 - 1 and clipped_texts(fig) == []
    plt.close(fig)


def test_text_past_the_figure_edge_is_refused_before_anything_is_written(tmp_path):
    fig, ax = figure(0.3, 1.5)
    ax.plot([0, 1], [0, 1])
    ax.set_xlabel("a label far too long for a third of the text width, which print would cut off")
    assert clipped_texts(fig) == [ax.get_xlabel()]
    with pytest.raises(ValueError, match="cut off in print: .*far too long"):
        savefig(fig, tmp_path / "too_wide")
    assert list(tmp_path.iterdir()) == []
    fig, ax = figure(0.3, 1.5)
    ax.plot([0, 1], [0, 1])
    ax.set_xlim(0.2, 0.8)  # the ticks at 0 and 1 are outside the view and not drawn: not counted
    assert clipped_texts(fig) == []
    assert [p.suffix for p in savefig(fig, tmp_path / "fits")] == [".png", ".pdf"]


def test_text_drawn_on_other_text_is_refused_before_anything_is_written(tmp_path):
    """Every piece of text the figure draws (tick labels, axis labels, annotations, legends) against every other,
    from their drawn boxes: a legend on a point label is refused, as is a label on a label."""
    fig, ax = figure(0.5, 2.4)
    ax.plot([0, 1], [0, 1], label="a line")
    ax.text(0.02, 0.95, "a label where the legend goes", transform=ax.transAxes, va="top")
    ax.legend(loc="upper left")
    assert ("a label where the legend goes", "legend") in overlapping_texts(fig)
    with pytest.raises(ValueError, match="texts drawn on each other"):
        savefig(fig, tmp_path / "crowded")
    assert list(tmp_path.iterdir()) == []
    fig, ax = figure(0.5, 2.4)
    ax.plot([0, 1], [0, 1], label="a line")
    ax.text(0.5, 0.1, "apart", transform=ax.transAxes)
    ax.legend(loc="upper left")
    assert overlapping_texts(fig) == []
    plt.close(fig)


def test_log_axis_exponents_count_at_their_printed_size():
    """A log axis's default labels print their exponents at 70 % of the tick size (below 7 pt at 7 pt ticks);
    log_axis prints plain numbers, at full size."""
    fig, ax = figure(0.5, 2.4)
    ax.plot([1, 10, 100], [0.001, 0.01, 1])
    ax.set_yscale("log")
    assert smallest_font(fig) < MIN_FONT_PT
    plt.close(fig)
    fig, ax = figure(0.5, 2.4)
    ax.plot([1, 10, 100], [0.001, 0.01, 1])
    log_axis(ax, "y")
    assert smallest_font(fig) >= MIN_FONT_PT
    plt.close(fig)
