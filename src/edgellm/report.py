"""Results table, DVC metrics and plots, figures and LaTeX tables from the stage records.

Everything a reader sees is regenerated here from the per-variant JSON records,
so a figure can never disagree with the metrics files it was drawn from.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from .config import Params, variant_name
from .io import atomic_path, read_json, write_json, write_text

TASK_LABELS = {
    "arc_easy": "ARC-Easy",
    "arc_challenge": "ARC-Challenge",
    "hellaswag": "HellaSwag",
    "piqa": "PIQA",
    "truthfulqa_mc1": "TruthfulQA MC1",
    "truthfulqa_mc2": "TruthfulQA MC2",
}


class ReportError(FileNotFoundError):
    """A stage record the report needs is missing; the message names it."""


def _read(path: Path, what: str) -> dict:
    if not path.is_file():
        raise ReportError(f"{path}: {what} record missing; run its stage (dvc repro)")
    return read_json(path)


def _type_mix(tensor_types: dict, n_params: int) -> str:
    """'Q5_0 61% / Q4_K 22% / ...' by share of parameters: what the file really holds."""
    parts = [(k, v["params"] / n_params) for k, v in tensor_types.items()]
    return " / ".join(f"{k} {100 * s:.0f}%" for k, s in parts if s >= 0.005)


def collect(params: Params, lay) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per variant (main table) and one row per variant x thread count (speed)."""
    rows, speed_rows = [], []
    gen = params.report.generalization
    for model in params.models:
        for qtype in params.quantization.types:
            v = variant_name(model, qtype)
            g = _read(lay.gguf_record(v), "conversion")
            e = _read(lay.eval_record(v), "evaluation")
            p = _read(lay.profile_record(v), "profile")
            ppl = e["perplexity"]
            kl = ppl.get("kl") or {}
            row = {
                "variant": v, "model": model, "type": qtype,
                "file_mb": g["file_bytes"] / 1e6, "bpw": g["bpw"], "n_params": g["n_params"],
                "kquant_eligible_share": g["kquant_eligible_share"],
                "tensor_types": _type_mix(g["tensor_types"], g["n_params"]),
                "ppl": ppl["ppl"], "ppl_stderr": ppl["ppl_stderr"], "ppl_tokens": ppl["n_tokens"],
                "kld": kl.get("kld_mean"), "kld_stderr": kl.get("kld_stderr"),
                "same_top_p": kl.get("same_top_p"),
            }
            for t, s in e["tasks"].items():
                row[f"{t}_acc"] = s["acc"]
                row[f"{t}_acc_stderr"] = s["acc_stderr"]
                if "acc_norm" in s:
                    row[f"{t}_acc_norm"] = s["acc_norm"]
                    row[f"{t}_acc_norm_stderr"] = s["acc_norm_stderr"]
                row[f"{t}_n"] = s["n"]
            row["gen_acc"] = float(np.mean([row[f"{t}_acc"] for t in gen]))
            row["gen_acc_stderr"] = math.sqrt(sum(row[f"{t}_acc_stderr"] ** 2 for t in gen)) / len(gen)
            if "truthfulqa_mc1_acc" in row:
                row["halluc_mc1"] = 1.0 - row["truthfulqa_mc1_acc"]
                row["halluc_mc1_stderr"] = row["truthfulqa_mc1_acc_stderr"]
            if "truthfulqa_mc2_acc" in row:
                row["mc2"] = row["truthfulqa_mc2_acc"]
            row["load_s"] = p["load_seconds"]
            row["peak_rss_mb"] = p["peak_rss_bytes"] / 1e6
            best = max(p["runs"], key=lambda r: r["threads"])
            pp_key = next(k for k in best if k.startswith("pp"))
            tg_key = next(k for k in best if k.startswith("tg"))
            row |= {"threads": best["threads"], "pp_ts": best[pp_key]["avg_ts"], "pp_ts_sd": best[pp_key]["stddev_ts"],
                    "tg_ts": best[tg_key]["avg_ts"], "tg_ts_sd": best[tg_key]["stddev_ts"],
                    "ttft_ms": 1e3 * best["ttft"]["mean_s"], "device": p["device"]["name"],
                    "speed_source": "measured" if p.get("measured", True) else "projected"}
            rows.append(row)
            for r in p["runs"]:
                for test in (k for k in r if k.startswith(("pp", "tg"))):
                    speed_rows.append({"variant": v, "model": model, "type": qtype, "bpw": g["bpw"],
                                       "device": p["device"]["name"], "threads": r["threads"], "test": test,
                                       "avg_ts": r[test]["avg_ts"], "stddev_ts": r[test]["stddev_ts"]})
    return pd.DataFrame(rows), pd.DataFrame(speed_rows)


# --------------------------------------------------------------------------- outputs
def _write_csv(df: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format="%.6g", lineterminator="\n")


def metrics(df: pd.DataFrame) -> dict:
    """A compact view for ``dvc metrics show`` / ``dvc metrics diff``."""
    keep = ["file_mb", "bpw", "ppl", "kld", "same_top_p", "gen_acc", "halluc_mc1", "mc2", "tg_ts", "pp_ts", "peak_rss_mb"]
    out = {}
    for _, r in df.iterrows():
        out[r["variant"]] = {k: (None if pd.isna(r.get(k)) else round(float(r[k]), 6)) for k in keep if k in r}
    return out


def _savefig(fig, stem: Path) -> list[Path]:
    stem.parent.mkdir(parents=True, exist_ok=True)
    outs = []
    for ext, meta in ((".png", {"Software": None}), (".pdf", {"CreationDate": None, "Producer": None, "Creator": None})):
        path = stem.with_suffix(ext)
        with atomic_path(path, suffix=ext) as tmp:
            fig.savefig(tmp, dpi=200, bbox_inches="tight", metadata=meta)
        outs.append(path)
    return outs


def _label_points(ax, df: pd.DataFrame, x: str, y: str) -> None:
    """Type labels, alternately above and below the points so that neighbours stay legible."""
    pts = df[df[x].notna() & df[y].notna()].sort_values(x)
    for i, (_, r) in enumerate(pts.iterrows()):
        ax.annotate(r["type"], (r[x], r[y]), textcoords="offset points", xytext=(4, 5 if i % 2 == 0 else -11),
                    fontsize=7)


def figures(df: pd.DataFrame, speed: pd.DataFrame, out_dir: Path, base_note: str) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="paper")
    written: list[Path] = []
    hue = "model" if df["model"].nunique() > 1 else None
    caption = f"Points are GGUF variants (labels: llama.cpp type). {base_note}"

    def scatter(x, y, yerr, xlabel, ylabel, title, name, logy=False):
        fig, ax = plt.subplots(figsize=(5.2, 3.6))
        sns.lineplot(data=df.sort_values(x), x=x, y=y, hue=hue, marker="o", ax=ax, legend=bool(hue),
                     label=None if hue else df["model"].iloc[0], sort=True)
        if yerr and yerr in df:
            ax.errorbar(df[x], df[y], yerr=df[yerr].fillna(0), fmt="none", ecolor="grey", alpha=0.6, capsize=2)
        _label_points(ax, df, x, y)
        ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
        if logy:
            ax.set_yscale("log")
        ax.legend(title="model", fontsize=7, title_fontsize=7)
        fig.text(0.01, -0.04, caption, fontsize=6, ha="left", va="top", wrap=True)
        written.extend(_savefig(fig, out_dir / name))
        plt.close(fig)

    scatter("file_mb", "gen_acc", "gen_acc_stderr", "GGUF file size (MB)",
            "Generalization accuracy (mean acc, 4 tasks)", "Accuracy vs model size", "accuracy_vs_size")
    scatter("bpw", "ppl", "ppl_stderr", "Bits per weight (all tensors)", "WikiText-2 perplexity",
            "Perplexity vs bits per weight", "perplexity_vs_bpw")
    sub = df[df["kld"].fillna(0) > 0]
    if len(sub):
        fig, ax = plt.subplots(figsize=(5.2, 3.6))
        sns.lineplot(data=sub.sort_values("bpw"), x="bpw", y="kld", hue=hue, marker="o", ax=ax,
                     label=None if hue else sub["model"].iloc[0])
        _label_points(ax, sub, "bpw", "kld")
        ax.set_yscale("log")
        ax.set(xlabel="Bits per weight (all tensors)", ylabel="Mean KL divergence to F16 (nats/token)",
               title="KL divergence vs bits per weight")
        ax.legend(title="model", fontsize=7, title_fontsize=7)
        fig.text(0.01, -0.04, caption, fontsize=6, ha="left", va="top", wrap=True)
        written.extend(_savefig(fig, out_dir / "kl_vs_bpw"))
        plt.close(fig)
    tg = speed[speed["test"].str.startswith("tg")].copy()
    tg["threads"] = tg["threads"].astype(str) + " threads"
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    sns.lineplot(data=tg.sort_values("bpw"), x="bpw", y="avg_ts", hue="threads", style=hue, marker="o", ax=ax)
    ax.errorbar(tg["bpw"], tg["avg_ts"], yerr=tg["stddev_ts"], fmt="none", ecolor="grey", alpha=0.6, capsize=2)
    _label_points(ax, tg[tg["threads"] == tg["threads"].iloc[-1]], "bpw", "avg_ts")
    test = tg["test"].iloc[0]
    ax.set(xlabel="Bits per weight (all tensors)", ylabel=f"Generation speed, {test} (tokens/s)",
           title=f"Generation speed vs bits per weight ({tg['device'].iloc[0]}, measured)")
    ax.legend(fontsize=7)
    fig.text(0.01, -0.04, "Measured like llama-bench (mean ± sd over repetitions). " + caption,
             fontsize=6, ha="left", va="top", wrap=True)
    written.extend(_savefig(fig, out_dir / "speed_vs_bpw"))
    plt.close(fig)

    if "halluc_mc1" in df:
        long = pd.concat([
            df.assign(metric="MC1 error (1 - MC1 acc)", value=df["halluc_mc1"], err=df["halluc_mc1_stderr"]),
            df.assign(metric="1 - MC2 (mass on false answers)", value=1 - df["mc2"],
                      err=df.get("truthfulqa_mc2_acc_stderr")),
        ])
        fig, ax = plt.subplots(figsize=(5.2, 3.6))
        sns.lineplot(data=long.sort_values("bpw"), x="bpw", y="value", hue="metric", style=hue, marker="o", ax=ax)
        ax.errorbar(long["bpw"], long["value"], yerr=long["err"].fillna(0), fmt="none", ecolor="grey", alpha=0.6, capsize=2)
        _label_points(ax, df, "bpw", "halluc_mc1")
        ax.set_ylim(0, 1)
        ax.set(xlabel="Bits per weight (all tensors)", ylabel="Hallucination rate on TruthfulQA",
               title="Hallucination vs bits per weight")
        ax.legend(fontsize=7)
        fig.text(0.01, -0.04, "lm-eval's TruthfulQA prompt; error bars: standard error. " + caption,
                 fontsize=6, ha="left", va="top", wrap=True)
        written.extend(_savefig(fig, out_dir / "hallucination_vs_bpw"))
        plt.close(fig)
    return written


def _fmt(x, nd=3):
    return "--" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{nd}f}"


def _latex_table(header: list[str], rows: list[list[str]], caption: str, label: str, align: str) -> str:
    esc = lambda s: str(s).replace("_", r"\_").replace("%", r"\%")  # noqa: E731
    lines = [r"\begin{table}[t]", r"\centering", r"\small", rf"\caption{{{caption}}}", rf"\label{{{label}}}",
             rf"\begin{{tabular}}{{{align}}}", r"\toprule", " & ".join(header) + r" \\", r"\midrule"]
    lines += [" & ".join(esc(c) for c in r) + r" \\" for r in rows]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(lines)


def tables(df: pd.DataFrame, out_dir: Path, base_note: str) -> list[Path]:
    q_rows = []
    for _, r in df.iterrows():
        q_rows.append([r["variant"], _fmt(r["bpw"], 2), _fmt(r["file_mb"], 1),
                       f"{_fmt(r['ppl'], 2)} $\\pm$ {_fmt(r['ppl_stderr'], 2)}", _fmt(r["kld"], 4),
                       _fmt(100 * r["same_top_p"], 1) if pd.notna(r["same_top_p"]) else "--",
                       f"{_fmt(r['gen_acc'])} $\\pm$ {_fmt(r['gen_acc_stderr'])}",
                       _fmt(r.get("halluc_mc1")), _fmt(r.get("mc2"))])
    quality = _latex_table(
        ["Variant", "BPW", "MB", "PPL", "KLD", "Top-1 \\%", "Gen. acc", "MC1 err", "MC2"], q_rows,
        "Quality of each GGUF variant: WikiText-2 perplexity (llama-perplexity protocol), KL divergence and "
        "top-1 agreement with F16, generalization accuracy (mean acc over ARC-E, ARC-C, HellaSwag, PIQA) and "
        f"TruthfulQA hallucination (MC1 error, MC2). {base_note}",
        "tab:quality", "lrrrrrrrr")
    r_rows = [[r["variant"], _fmt(r["file_mb"], 1), _fmt(r["peak_rss_mb"], 0), _fmt(r["load_s"], 2),
               f"{_fmt(r['pp_ts'], 0)} $\\pm$ {_fmt(r['pp_ts_sd'], 0)}",
               f"{_fmt(r['tg_ts'], 1)} $\\pm$ {_fmt(r['tg_ts_sd'], 1)}", _fmt(r["ttft_ms"], 1)]
              for _, r in df.iterrows()]
    threads = int(df["threads"].iloc[0])
    resources = _latex_table(
        ["Variant", "File MB", "Peak RSS MB", "Load s", "pp512 t/s", "tg128 t/s", "TTFT ms"], r_rows,
        f"Resource consumption measured on {df['device'].iloc[0]} with {threads} threads, as llama-bench measures "
        "(mean $\\pm$ sd over repetitions).", "tab:resources", "lrrrrrr")
    t_rows = [[r["variant"], _fmt(r["bpw"], 2), _fmt(100 * r["kquant_eligible_share"], 0), r["tensor_types"]]
              for _, r in df.iterrows()]
    types = _latex_table(
        ["Variant", "BPW", "K-eligible \\%", "Tensor types actually written (share of parameters)"], t_rows,
        "What each GGUF file really holds. K-quants need rows that are a multiple of 256; llama.cpp silently "
        "falls back to another type for the other tensors.", "tab:tensor-types", "lrrp{7cm}")
    out = []
    for name, text in (("quality", quality), ("resources", resources), ("tensor_types", types)):
        path = out_dir / f"{name}.tex"
        write_text(path, text)
        out.append(path)
    return out


def base_note(params: Params, lay) -> str:
    notes = []
    for m in params.models:
        rec = lay.model_record(m)
        if rec.is_file() and read_json(rec).get("dequantized_from_gguf"):
            notes.append(f"{m}: weights dequantized from a 4-bit GGUF, so F16 is not the original full precision.")
    return " ".join(notes)


def build(params: Params, lay) -> dict:
    df, speed = collect(params, lay)
    root = lay.root
    _write_csv(df, root / "results" / "results.csv")
    _write_csv(speed, root / "results" / "speed.csv")
    write_json(root / "metrics" / "summary.json", metrics(df))
    plot_cols = ["variant", "model", "type", "bpw", "file_mb", "ppl", "kld", "gen_acc", "halluc_mc1", "mc2", "tg_ts", "pp_ts"]
    _write_csv(df[[c for c in plot_cols if c in df]], root / "plots" / "variants.csv")
    note = base_note(params, lay)
    figs = figures(df, speed, root / "figures", note)
    tabs = tables(df, root / "paper" / "tables", note)
    return {"rows": len(df), "figures": [str(p.relative_to(root)) for p in figs],
            "tables": [str(p.relative_to(root)) for p in tabs]}
