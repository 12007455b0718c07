"""The quantization figures: the GGUF ladders of the base models (and of the K-aligned checkpoint), and speed.

One function per figure, named after the figure's file stem (``figures/<stem>.png``/``.pdf``). Every figure is
drawn at its printed width (:func:`~edgellm.report.plotting.figure`); what it draws is said in the paper's
caption, not inside the figure.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..llamacpp.gguf import block_bpw
from .plotting import figure, label_points, log_axis, savefig, sns
from .results import ladder_method, short_name

#: method -> colour, marker: the same in every figure
METHOD_STYLE = {
    "GGUF type": ("#0072B2", "o"),
    "GGUF type + imatrix": ("#56B4E9", "D"),
    "depth + KD": ("#009E73", "^"),
    "depth + KD, 4x tokens": ("#004D40", "v"),
    "width + KD": ("#D55E00", "s"),
    "Wanda 2:4 + KD": ("#CC79A7", "P"),
}


#: every compress.ladder recipe's curve (``<recipe>, GGUF type``)
LADDER_STYLE = ("#E69F00", "s")


def style(method: str) -> tuple[str, str]:
    if method not in METHOD_STYLE and method.endswith(", GGUF type"):
        return LADDER_STYLE
    return METHOD_STYLE.get(method, ("0.4", "x"))


def quantized(df_all: pd.DataFrame) -> pd.DataFrame:
    """The base models' variants (no compression recipe)."""
    return df_all[df_all["recipe"] == ""]


def ci_err(df: pd.DataFrame, col: str) -> np.ndarray:
    """Asymmetric error bars from a column's bootstrap interval (``<col>_ci_low``/``_ci_high``)."""
    lo = (df[col] - df[f"{col}_ci_low"]).clip(lower=0).fillna(0)
    hi = (df[f"{col}_ci_high"] - df[col]).clip(lower=0).fillna(0)
    return np.vstack([lo.to_numpy(), hi.to_numpy()])


def ladder_lines(ax, x: str, y: str, ladders: dict[str, pd.DataFrame]) -> None:
    for name, sub in ladders.items():
        sub = sub[sub[x].notna() & sub[y].notna()].sort_values(x)
        if not len(sub):
            continue
        color, marker = style(name)
        ax.plot(sub[x], sub[y], marker=marker, color=color, lw=1, ms=4, label=name)


def quant_ladders(df_all: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The base ladder (with the reference), the imatrix types, and every ladder checkpoint across its types."""
    base = quantized(df_all)
    out = {"GGUF type": base[base["method"] == "GGUF type"],
           "GGUF type + imatrix": base[base["method"] == "GGUF type + imatrix"]}
    for recipe, lad in df_all[df_all["ladder"]].groupby("recipe", sort=False):
        out[ladder_method(recipe)] = lad
    return {k: v for k, v in out.items() if len(v)}


def _empty(ax, text: str) -> None:
    """A panel with nothing to draw says so instead of showing empty axes."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()


def quant_ladder(df_all: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Left: KL divergence to the reference against bits per weight, for each ladder. Right: the bits per weight
    llama.cpp really stores under each type name, for the base model and the K-aligned checkpoint."""
    ladders = quant_ladders(df_all)
    fig, (ax1, ax2) = figure(1.0, 3.0, 1, 2)
    kl = {k: v[v["kld"].fillna(0) > 0] for k, v in ladders.items()}
    if any(len(v) for v in kl.values()):
        ladder_lines(ax1, "bpw", "kld", kl)
        log_axis(ax1, "y")  # before the labels: they are placed in the axes' final coordinates
        label_points(ax1, pd.concat(kl.values()), "bpw", "kld")
        ax1.set(xlabel="bits per weight (all tensors)", ylabel="KL to the reference (nats/token)")
    else:  # a model evaluated at float types only (a smoke study's): no KL to draw
        _empty(ax1, "no quantized type")
    rows = []
    for name, sub in ladders.items():
        for _, r in sub[~sub["type"].isin(["F16", "BF16", "F32"])].iterrows():
            rows.append({"type": r["type"], "ladder": name, "bpw": r["bpw"]})
    bars = pd.DataFrame(rows, columns=["type", "ladder", "bpw"])
    if bars.empty:
        _empty(ax2, "no quantized type")
        return savefig(fig, out_dir / "quant_ladder")
    nominal = lambda t: block_bpw(t) or 0.0
    order = sorted(set(bars["type"]), key=lambda t: (-nominal(t), t))
    sns.barplot(data=bars, y="type", x="bpw", hue="ladder", order=order, ax=ax2,
                palette={k: style(k)[0] for k in ladders}, orient="h", legend=False)
    for i, t in enumerate(order):  # the bits of the type's own block format
        if nominal(t):
            ax2.plot([nominal(t)] * 2, [i - 0.42, i + 0.42], color="black", lw=1.2)
    ax2.set(xlabel="bits per weight stored\n(black: the type's own block format)", ylabel="")
    fig.legend(*ax1.get_legend_handles_labels(), loc="outside lower center", ncol=3, frameon=False)
    return savefig(fig, out_dir / "quant_ladder")


def speed_vs_bpw(df_all: pd.DataFrame, speed_all: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Prompt processing (pp) and generation (tg) on this host against bits per weight, for the base ladder."""
    df = quantized(df_all)
    speed = speed_all[speed_all["variant"].isin(df["variant"])].merge(df[["variant", "method"]], on="variant")
    top = speed["threads"].max()
    speed = speed[speed["threads"] == top]
    fig, axes = figure(1.0, 3.0, 1, 2)
    for ax, kind in zip(axes, ("pp", "tg")):
        sub = speed[speed["test"].str.startswith(kind)].sort_values("bpw")
        for method, m in sub.groupby("method", sort=False):
            color, marker = style(method)
            ax.errorbar(m["bpw"], m["avg_ts"], yerr=m["stddev_ts"], fmt=marker + "-", color=color, ms=3.5, lw=0.8,
                        elinewidth=0.7, capsize=1.5, label=method)
        label_points(ax, sub.merge(df[["variant", "type"]], on=["variant", "type"]), "bpw", "avg_ts")
        test = sub["test"].iloc[0] if len(sub) else kind
        ax.set(xlabel="bits per weight (all tensors)",
               ylabel=f"{'prompts' if kind == 'pp' else 'generation'}, {test} (tokens/s)")
    # one legend below both panels: inside an axes it lands on the point labels
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncol=len(handles), frameon=False)
    return savefig(fig, out_dir / "speed_vs_bpw")


def hallucination_main(df_all: pd.DataFrame, out_dir: Path) -> list[Path]:
    """The hallucination rates of the main-tier variants with their 95 % bootstrap intervals."""
    df = df_all[df_all["tier"] != "frontier"]
    metrics = [(c, label) for c, label in (("halluc_mc1", "MC1 error"), ("halluc_gen_rougeL", "generated, not "
               "truthful (ROUGE-L)"), ("halluc_gen_embed", "generated, not truthful (embedding)"))
               if c in df and df[c].notna().any()]
    if not metrics:
        return []
    fig, ax = figure(0.5, 2.8)
    y = np.arange(len(df))
    offsets = np.linspace(-0.25, 0.25, len(metrics))
    for off, (col, label), color in zip(offsets, metrics, sns.color_palette("colorblind", len(metrics))):
        ax.errorbar(df[col], y + off, xerr=ci_err(df, col), fmt="o", color=color, ms=3, elinewidth=0.8, capsize=1.5,
                    label=label)
    ax.set_yticks(y, [short_name(v, b) for v, b in zip(df["variant"], df["base"])])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set(xlabel="hallucination rate on TruthfulQA")
    # above the whole figure, not the axes: centred over the axes it overhangs the figure's edge where the
    # variants' names (the y labels) are long
    fig.legend(*ax.get_legend_handles_labels(), loc="outside upper center", ncol=1, frameon=False)
    return savefig(fig, out_dir / "hallucination_main")


