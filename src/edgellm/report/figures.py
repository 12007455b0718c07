"""The quantization curves: the base models at every GGUF type, one line per model.

One function per figure, named after the figure's file stem (``figures/<stem>.png``/``.pdf``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..eval.judge import HALLUCINATION_RULE
from .plotting import label_points, plt, savefig, sns

#: every figure's size in inches (a column of the paper)
SIZE = (5.2, 3.6)


def quantized(df_all: pd.DataFrame) -> pd.DataFrame:
    """The base models' variants (no compression recipe)."""
    return df_all[df_all["kind"] == "quantized"]


def _hue(df: pd.DataFrame) -> str | None:
    return "model" if df["model"].nunique() > 1 else None


def caption(base_note: str) -> str:
    return f"Points are GGUF variants (labels: llama.cpp type). {base_note}"


def _curve(df, x, y, yerr, xlabel, ylabel, title, stem: Path, note: str, logy=False) -> list[Path]:
    hue = _hue(df)
    fig, ax = plt.subplots(figsize=SIZE)
    sns.lineplot(data=df.sort_values(x), x=x, y=y, hue=hue, marker="o", ax=ax, legend=bool(hue),
                 label=None if hue else df["model"].iloc[0], sort=True)
    if yerr and yerr in df:
        ax.errorbar(df[x], df[y], yerr=df[yerr].fillna(0), fmt="none", ecolor="grey", alpha=0.6, capsize=2)
    label_points(ax, df, x, y)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if logy:
        ax.set_yscale("log")
    ax.legend(title="model", fontsize=7, title_fontsize=7)
    fig.text(0.01, -0.04, caption(note), fontsize=6, ha="left", va="top", wrap=True)
    return savefig(fig, stem)


def accuracy_vs_size(df_all: pd.DataFrame, out_dir: Path, base_note: str) -> list[Path]:
    n_tasks = len(str(df_all["gen_tasks"].iloc[0]).split()) if len(df_all) else 0
    return _curve(quantized(df_all), "file_mb", "gen_acc", "gen_acc_stderr", "GGUF file size (MB)",
                  f"Generalization accuracy (mean acc, {n_tasks} tasks above chance)", "Accuracy vs model size",
                  out_dir / "accuracy_vs_size", base_note)


def perplexity_vs_bpw(df_all: pd.DataFrame, out_dir: Path, base_note: str) -> list[Path]:
    return _curve(quantized(df_all), "bpw", "ppl", "ppl_stderr", "Bits per weight (all tensors)",
                  "WikiText-2 perplexity", "Perplexity vs bits per weight", out_dir / "perplexity_vs_bpw", base_note)


def kl_vs_bpw(df_all: pd.DataFrame, out_dir: Path, base_note: str) -> list[Path]:
    """Drawn only when some variant differs from F16 (KL > 0)."""
    df = quantized(df_all)
    sub = df[df["kld"].fillna(0) > 0]
    if not len(sub):
        return []
    hue = _hue(df)
    fig, ax = plt.subplots(figsize=SIZE)
    sns.lineplot(data=sub.sort_values("bpw"), x="bpw", y="kld", hue=hue, marker="o", ax=ax,
                 label=None if hue else sub["model"].iloc[0])
    label_points(ax, sub, "bpw", "kld")
    ax.set_yscale("log")
    ax.set(xlabel="Bits per weight (all tensors)", ylabel="Mean KL divergence to F16 (nats/token)",
           title="KL divergence vs bits per weight")
    ax.legend(title="model", fontsize=7, title_fontsize=7)
    fig.text(0.01, -0.04, caption(base_note), fontsize=6, ha="left", va="top", wrap=True)
    return savefig(fig, out_dir / "kl_vs_bpw")


def speed_vs_bpw(df_all: pd.DataFrame, speed_all: pd.DataFrame, out_dir: Path, base_note: str) -> list[Path]:
    df = quantized(df_all)
    hue = _hue(df)
    speed = speed_all[speed_all["variant"].isin(df["variant"])]
    tg = speed[speed["test"].str.startswith("tg")].copy()
    tg["threads"] = tg["threads"].astype(str) + " threads"
    fig, ax = plt.subplots(figsize=SIZE)
    sns.lineplot(data=tg.sort_values("bpw"), x="bpw", y="avg_ts", hue="threads", style=hue, marker="o", ax=ax)
    ax.errorbar(tg["bpw"], tg["avg_ts"], yerr=tg["stddev_ts"], fmt="none", ecolor="grey", alpha=0.6, capsize=2)
    label_points(ax, tg[tg["threads"] == tg["threads"].iloc[-1]], "bpw", "avg_ts")
    test = tg["test"].iloc[0]
    ax.set(xlabel="Bits per weight (all tensors)", ylabel=f"Generation speed, {test} (tokens/s)",
           title=f"Generation speed vs bits per weight ({tg['device'].iloc[0]}, measured)")
    ax.legend(fontsize=7)
    fig.text(0.01, -0.04, "Measured like llama-bench (mean ± sd over repetitions). " + caption(base_note),
             fontsize=6, ha="left", va="top", wrap=True)
    return savefig(fig, out_dir / "speed_vs_bpw")


def hallucination_vs_bpw(df_all: pd.DataFrame, out_dir: Path, base_note: str) -> list[Path]:
    """Drawn only when the study has TruthfulQA MC1."""
    df = quantized(df_all)
    if "halluc_mc1" not in df:
        return []
    hue = _hue(df)
    long = pd.concat([
        df.assign(metric="MC1 error (1 - MC1 acc)", value=df["halluc_mc1"], err=df["halluc_mc1_stderr"]),
        df.assign(metric="1 - MC2 (mass on false answers)", value=1 - df["mc2"], err=df.get("mc2_stderr")),
        *[df.assign(metric=f"generated, {label} judge", value=df[col], err=np.nan)
          for col, label in (("halluc_gen_rougeL", "ROUGE-L"), ("halluc_gen_embed", "embedding")) if col in df],
    ])
    fig, ax = plt.subplots(figsize=SIZE)
    sns.lineplot(data=long.sort_values("bpw"), x="bpw", y="value", hue="metric", style=hue, marker="o", ax=ax)
    ax.errorbar(long["bpw"], long["value"], yerr=long["err"].fillna(0), fmt="none", ecolor="grey", alpha=0.6,
                capsize=2)
    label_points(ax, df, "bpw", "halluc_mc1")
    ax.set_ylim(0, 1)
    ax.set(xlabel="Bits per weight (all tensors)", ylabel="Hallucination rate on TruthfulQA",
           title="Hallucination vs bits per weight")
    ax.legend(fontsize=7)
    fig.text(0.01, -0.04, "lm-eval's TruthfulQA prompts; error bars: standard error (MC metrics); generated "
             f"answers: {HALLUCINATION_RULE} (ties count as hallucinated). " + caption(base_note),
             fontsize=6, ha="left", va="top", wrap=True)
    return savefig(fig, out_dir / "hallucination_vs_bpw")
