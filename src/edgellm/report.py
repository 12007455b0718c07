"""Results table, DVC metrics and plots, figures and LaTeX tables from the stage records.

Everything a reader sees is regenerated here from the per-variant JSON records,
so a figure can never disagree with the metrics files it was drawn from.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

from . import stats
from .config import Params
from .io import atomic_path, read_json, write_json, write_text

TASK_LABELS = {
    "arc_easy": "ARC-Easy",
    "arc_challenge": "ARC-Challenge",
    "hellaswag": "HellaSwag",
    "piqa": "PIQA",
    "boolq": "BoolQ",
    "mmlu": "MMLU",
    "mmlu_5shot": "MMLU 5-shot",
    "truthfulqa_mc1": "TruthfulQA MC1",
    "truthfulqa_mc2": "TruthfulQA MC2",
    "truthfulqa_gen": "TruthfulQA (generated)",
}
#: Headline quality metrics: name -> (label, higher is better, 0/1 per item)
HEADLINE = {
    "gen_acc": ("Generalization accuracy", True, True),
    "halluc_mc1": ("Hallucination: TruthfulQA MC1 error", False, True),
    "mc2": ("TruthfulQA MC2 (mass on true answers)", True, False),
    "halluc_gen_rougeL": ("Hallucination: generated, ROUGE-L judge", False, True),
    "halluc_gen_bleu": ("Hallucination: generated, BLEU judge", False, True),
    "halluc_gen_embed": ("Hallucination: generated, embedding judge", False, True),
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


def describe_prune(prune: dict | None) -> str:
    """A short human label of a pruning step, from its record."""
    if not prune:
        return ""
    m = prune["method"]
    if m == "depth":
        return f"depth -{len(prune['removed'])} layers ({prune['metric']})"
    if m == "width":
        return (f"width h{prune['hidden_size']} ffn{prune['intermediate_size']} "
                f"heads{prune['num_attention_heads']}/{prune['num_key_value_heads']}")
    return f"{m} {prune['pattern'] or format(prune['sparsity'], '.0%')} (dense zeros)"


def lineage(base: str, ck: dict | None, qtype: str) -> str:
    """base -> pruned -> distilled -> quantized, as one readable string."""
    steps = [base]
    if ck:
        if ck.get("prune"):
            steps.append(describe_prune(ck["prune"]))
        if ck.get("distill"):
            spec = ck["recipe_spec"]["distill"]
            steps.append(f"KD {spec['tokens']:,} tok ({spec['text']})")
    steps.append(qtype)
    return " -> ".join(steps)


def kind(ck: dict | None) -> str:
    """The family a variant belongs to in the figures."""
    if not ck:
        return "quantized"
    pr = (ck.get("prune") or {}).get("method")
    structured = pr in ("depth", "width")
    if pr and not structured:
        label = "sparse (dense zeros)"
    elif pr:
        label = f"{pr}-pruned"
    else:
        label = "distilled"
    return label + (" + KD" if pr and ck.get("distill") else "")


def item_scores(lay, variant: str, gen: list[str], judged: dict) -> dict[str, dict[str, np.ndarray]]:
    """Per-item scores of one variant, metric -> task -> array in the prepared items' order."""
    items = _read(lay.items(variant), "per-item evaluation")
    out: dict[str, dict[str, np.ndarray]] = {}
    for t, rows in items.items():
        if rows and "acc" in rows[0]:
            out[f"{t}_acc"] = {t: np.array([r["acc"] for r in rows], dtype=np.float64)}
    if gen:
        out["gen_acc"] = {t: out[f"{t}_acc"][t] for t in gen}
    if "truthfulqa_mc1_acc" in out:
        out["halluc_mc1"] = {"truthfulqa_mc1": 1.0 - out["truthfulqa_mc1_acc"]["truthfulqa_mc1"]}
    if "truthfulqa_mc2_acc" in out:
        out["mc2"] = {"truthfulqa_mc2": out.pop("truthfulqa_mc2_acc")["truthfulqa_mc2"]}
    for t, res in (judged.get("variants", {}).get(variant) or {}).items():
        for judge in ("rougeL", "bleu", "embed"):
            key = f"halluc_{judge}"
            if res["items"] and key in res["items"][0]:
                out[f"halluc_gen_{judge}"] = {t: np.array([r[key] for r in res["items"]], dtype=np.float64)}
    return out


def reference_variant(var, params: Params) -> str | None:
    """What a variant is compared with: a compressed variant with its base model at the same type
    (the effect of compression alone), a quantized base with the base at ``evaluate.kl_base``."""
    types = params.quantization.types
    if var.recipe:
        return f"{var.base}-{var.qtype if var.qtype in types else params.evaluate.kl_base}"
    return None if var.qtype == params.evaluate.kl_base else f"{var.base}-{params.evaluate.kl_base}"


def comparisons(params: Params, per_item: dict) -> pd.DataFrame:
    """Every variant against its reference on the same items, for every headline metric."""
    rep = params.report
    out = []
    for var in params.all_variants():
        ref = reference_variant(var, params)
        if ref is None or ref not in per_item:
            continue
        for metric, (label, higher, binary) in HEADLINE.items():
            a, b = per_item[ref].get(metric), per_item[var.name].get(metric)
            if a is None or b is None:
                continue
            c = stats.compare(a, b, binary, rep.bootstrap, rep.confidence, rep.alpha,
                              stats.rng_for(params.seed, var.name, ref, metric))
            worse = (c["delta"] < 0) if higher else (c["delta"] > 0)
            out.append({"variant": var.name, "reference": ref, "metric": metric, "label": label,
                        "n": int(sum(len(x) for x in b.values())), **c,
                        "direction": "worse" if worse and c["delta"] != 0 else ("better" if c["delta"] else "same")})
    cols = ["variant", "reference", "metric", "label", "n", "delta", "ci_low", "ci_high", "p", "test",
            "significant", "direction", "only_ref", "only_variant"]
    return pd.DataFrame(out, columns=cols)


def collect(params: Params, lay) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """One row per variant (main table), one row per variant x thread count (speed), per-item scores."""
    rows, speed_rows = [], []
    gen = params.report.generalization
    judged = read_json(lay.judged) if lay.judged.is_file() else {}
    per_item: dict = {}
    for var in params.all_variants():
        v, model, qtype = var.name, var.checkpoint, var.qtype
        g = _read(lay.gguf_record(v), "conversion")
        e = _read(lay.eval_record(v), "evaluation")
        p = _read(lay.profile_record(v), "profile")
        ck = _read(lay.model_record(model), "compression") if var.recipe else None
        ppl = e["perplexity"]
        kl = ppl.get("kl") or {}
        row = {
            "variant": v, "model": model, "base": var.base, "recipe": var.recipe or "", "type": qtype,
            "kind": kind(ck),
            "lineage": lineage(var.base, ck, qtype),
            "hf_params": ck["params"]["params"] if ck else _read(lay.model_record(model), "model")["n_params"],
            "nonzero_share": (ck["params"]["nonzero_params"] / ck["params"]["params"]) if ck else 1.0,
            "param_reduction": ck["param_reduction"] if ck else 0.0,
            "distill_seconds": ck["distill"]["seconds"] if ck and ck.get("distill") else None,
            "distill_tokens": (ck["distill"]["steps_done"] * ck["recipe_spec"]["distill"]["batch_size"]
                               * ck["recipe_spec"]["distill"]["seq_len"]) if ck and ck.get("distill") else None,
            "heldout_kl": ck.get("heldout_kl") if ck else None,
            "file_mb": g["file_bytes"] / 1e6, "bpw": g["bpw"], "n_params": g["n_params"],
            "kquant_eligible_share": g["kquant_eligible_share"],
            "tensor_types": _type_mix(g["tensor_types"], g["n_params"]),
            "ppl": ppl["ppl"], "ppl_stderr": ppl["ppl_stderr"], "ppl_tokens": ppl["n_tokens"],
            "kld": kl.get("kld_mean"), "kld_stderr": kl.get("kld_stderr"),
            "same_top_p": kl.get("same_top_p"),
        }
        for t, s in e["tasks"].items():
            if "acc" not in s:  # generative: judged in the judge stage
                continue
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
            row["mc2_stderr"] = row["truthfulqa_mc2_acc_stderr"]
        per_item[v] = item_scores(lay, v, gen, judged)
        for metric, groups in per_item[v].items():
            if metric in HEADLINE or metric.endswith("_acc"):
                point, lo, hi = stats.bootstrap_ci(list(groups.values()), params.report.bootstrap,
                                                   params.report.confidence, stats.rng_for(params.seed, v, metric))
                row[metric] = point
                row[f"{metric}_ci_low"], row[f"{metric}_ci_high"] = lo, hi
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
    return pd.DataFrame(rows), pd.DataFrame(speed_rows), per_item


# --------------------------------------------------------------------------- outputs
def _write_csv(df: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format="%.6g", lineterminator="\n")


def metrics(df: pd.DataFrame) -> dict:
    """A compact view for ``dvc metrics show`` / ``dvc metrics diff``."""
    keep = ["hf_params", "param_reduction", "file_mb", "bpw", "ppl", "kld", "same_top_p", "gen_acc",
            "gen_acc_ci_low", "gen_acc_ci_high", "halluc_mc1", "mc2", "halluc_gen_rougeL", "halluc_gen_bleu",
            "halluc_gen_embed", "tg_ts", "pp_ts", "peak_rss_mb"]
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


def figures(df_all: pd.DataFrame, speed_all: pd.DataFrame, out_dir: Path, base_note: str,
            gen: list[str]) -> list[Path]:
    """The quantization curves (base models at every GGUF type), one line per model."""
    df = df_all[df_all["kind"] == "quantized"]
    speed = speed_all[speed_all["variant"].isin(df["variant"])]
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
            f"Generalization accuracy (mean acc, {len(gen)} tasks)", "Accuracy vs model size", "accuracy_vs_size")
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
            df.assign(metric="1 - MC2 (mass on false answers)", value=1 - df["mc2"], err=df.get("mc2_stderr")),
            *[df.assign(metric=f"generated, {label} judge", value=df[col], err=np.nan)
              for col, label in (("halluc_gen_rougeL", "ROUGE-L"), ("halluc_gen_embed", "embedding")) if col in df],
        ])
        fig, ax = plt.subplots(figsize=(5.2, 3.6))
        sns.lineplot(data=long.sort_values("bpw"), x="bpw", y="value", hue="metric", style=hue, marker="o", ax=ax)
        ax.errorbar(long["bpw"], long["value"], yerr=long["err"].fillna(0), fmt="none", ecolor="grey", alpha=0.6, capsize=2)
        _label_points(ax, df, "bpw", "halluc_mc1")
        ax.set_ylim(0, 1)
        ax.set(xlabel="Bits per weight (all tensors)", ylabel="Hallucination rate on TruthfulQA",
               title="Hallucination vs bits per weight")
        ax.legend(fontsize=7)
        fig.text(0.01, -0.04, "lm-eval's TruthfulQA prompts; error bars: standard error (MC metrics); generated "
                 "answers count as hallucinated when closer to an incorrect reference than to every correct one. "
                 + caption,
                 fontsize=6, ha="left", va="top", wrap=True)
        written.extend(_savefig(fig, out_dir / "hallucination_vs_bpw"))
        plt.close(fig)
    return written


def pareto_front(df: pd.DataFrame, x: str, y: str, higher_is_better: bool) -> pd.DataFrame:
    """The variants no other variant beats on both size and quality."""
    pts = df[df[x].notna() & df[y].notna()].sort_values([x, y], ascending=[True, not higher_is_better])
    keep, best = [], None
    for i, r in pts.iterrows():
        if best is None or (r[y] > best if higher_is_better else r[y] < best):
            keep.append(i)
            best = r[y]
    return pts.loc[keep]


RECOVERY_COLUMNS = ["variant", "base", "type", "recipe", "distill_tokens", "distill_seconds", "base_variant",
                    "pruned_variant", "ppl_base", "ppl_pruned", "ppl_distilled", "ppl_recovered_share",
                    "gen_acc_base", "gen_acc_pruned", "gen_acc_distilled", "gen_acc_recovered_share",
                    "kld_pruned", "kld_distilled"]


def recovery(df: pd.DataFrame, params: Params) -> pd.DataFrame:
    """How much of the loss from pruning distillation wins back, per distilled variant.

    A distilled recipe is paired with the recipe that applies the same pruning
    without distillation, on the same base model and GGUF type, and with the
    base model at that type where the study has it:
    recovered = (PPL_pruned - PPL_distilled) / (PPL_pruned - PPL_base).
    """
    recipes = params.compress.recipes
    out = []
    for _, r in df[df["recipe"] != ""].iterrows():
        spec = recipes[r["recipe"]]
        if spec.distill is None or spec.prune is None:
            continue
        twins = [n for n, s in recipes.items() if s.distill is None and s.prune == spec.prune]
        pruned = df[(df["recipe"].isin(twins)) & (df["base"] == r["base"]) & (df["type"] == r["type"])]
        base = df[(df["recipe"] == "") & (df["model"] == r["base"]) & (df["type"] == r["type"])]
        row = {"variant": r["variant"], "base": r["base"], "type": r["type"], "recipe": r["recipe"],
               "ppl_distilled": r["ppl"], "gen_acc_distilled": r["gen_acc"], "kld_distilled": r["kld"],
               "distill_tokens": r["distill_tokens"], "distill_seconds": r["distill_seconds"]}
        if len(pruned):
            p = pruned.iloc[0]
            row |= {"pruned_variant": p["variant"], "ppl_pruned": p["ppl"], "gen_acc_pruned": p["gen_acc"],
                    "kld_pruned": p["kld"]}
        if len(base):
            b = base.iloc[0]
            row |= {"base_variant": b["variant"], "ppl_base": b["ppl"], "gen_acc_base": b["gen_acc"]}
        if len(pruned) and len(base):
            lost = row["ppl_pruned"] - row["ppl_base"]
            row["ppl_recovered_share"] = (row["ppl_pruned"] - row["ppl_distilled"]) / lost if lost > 0 else None
            lost_acc = row["gen_acc_base"] - row["gen_acc_pruned"]
            row["gen_acc_recovered_share"] = ((row["gen_acc_distilled"] - row["gen_acc_pruned"]) / lost_acc
                                              if lost_acc > 0 else None)
        out.append(row)
    return pd.DataFrame(out, columns=RECOVERY_COLUMNS)


def compression_figures(df: pd.DataFrame, rec: pd.DataFrame, histories: dict[str, list[dict]], out_dir: Path,
                        base_note: str) -> list[Path]:
    """Every variant on size/quality/speed axes with the Pareto front, and distillation's recovery."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="paper")
    written: list[Path] = []
    kinds = sorted(df["kind"].unique(), key=lambda k: (k != "quantized", k))
    palette = dict(zip(kinds, sns.color_palette("colorblind", len(kinds))))
    note = ("Sparse variants store their zeros densely in GGUF: same size and speed as the dense model. "
            + base_note)

    # drawn at the paper's text width (2 x 2: three panels and the legend), so that it prints legibly
    fig, grid = plt.subplots(2, 2, figsize=(7.2, 5.8))
    axes, legend_ax = grid.flat[:3], grid.flat[3]
    for ax, (y, err, ylabel, better_high, logy) in zip(axes, (
            ("gen_acc", "gen_acc_stderr", "Generalization accuracy (± s.e.)", True, False),
            ("ppl", "ppl_stderr", "WikiText-2 perplexity (± s.e.)", False, True),
            ("tg_ts", "tg_ts_sd", "Generation speed tg (tokens/s, ± sd)", True, False))):
        ax.errorbar(df["file_mb"], df[y], yerr=df[err].fillna(0), fmt="none", ecolor="grey", alpha=0.5, capsize=2)
        sns.scatterplot(data=df, x="file_mb", y=y, hue="kind", style="kind", palette=palette, hue_order=kinds,
                        s=45, ax=ax, legend=ax is axes[0], zorder=3)
        front = pareto_front(df, "file_mb", y, better_high)
        ax.step(front["file_mb"], front[y], where="post", color="black", lw=0.8, alpha=0.7,
                label="Pareto front" if ax is axes[0] else None)
        for _, r in df.iterrows():
            label = r["recipe"] + ("/" if r["recipe"] else "") + r["type"]
            ax.annotate(label, (r["file_mb"], r[y]), textcoords="offset points", xytext=(3, 3), fontsize=6)
        if logy:
            ax.set_yscale("log")
        ax.set_xlabel("GGUF file size (MB)", fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.tick_params(labelsize=7)
    handles, labels = axes[0].get_legend_handles_labels()
    axes[0].get_legend().remove()
    legend_ax.axis("off")
    legend_ax.legend(handles, labels, fontsize=8, title=None, loc="center")
    fig.suptitle("All variants: quality and speed against size (black: Pareto front)", fontsize=10)
    fig.text(0.01, -0.01, note, fontsize=7, ha="left", va="top", wrap=True)
    fig.tight_layout()
    written.extend(_savefig(fig, out_dir / "pareto_size"))
    plt.close(fig)

    if len(rec) and "ppl_pruned" in rec:
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(7.2, 3.3))  # at the paper's text width
        bars = []
        for _, r in rec.iterrows():
            for stage, col in (("base", "ppl_base"), ("pruned", "ppl_pruned"), ("pruned + KD", "ppl_distilled")):
                if pd.notna(r.get(col)):
                    bars.append({"variant": f"{r['recipe']} ({r['type']})", "stage": stage, "ppl": r[col]})
        sns.barplot(data=pd.DataFrame(bars), x="variant", y="ppl", hue="stage", ax=ax1, palette="colorblind")
        for i, (_, r) in enumerate(rec.iterrows()):
            if pd.notna(r.get("ppl_recovered_share")):
                ax1.annotate(f"{100 * r['ppl_recovered_share']:.0f}% of the loss recovered", (i, r["ppl_pruned"]),
                             textcoords="offset points", xytext=(0, 4), ha="center", fontsize=7)
        ax1.set(xlabel="", ylabel="WikiText-2 perplexity", title="Perplexity lost by pruning, won back by KD")
        ax1.legend(fontsize=7)
        for i, (name, hist) in enumerate(histories.items()):
            h = pd.DataFrame(hist)
            color = sns.color_palette("colorblind")[i % 10]
            if "loss" in h:
                train = h.dropna(subset=["loss"])
                ax2.plot(train["tokens"], train["loss"].rolling(4, min_periods=1).mean(), color=color, alpha=0.5,
                         lw=1, label=f"{name}: training loss (running mean of 4 steps)")
            held = h.dropna(subset=["heldout_kl"])
            ax2.plot(held["tokens"], held["heldout_kl"], marker="o", color=color, label=f"{name}: held-out KL")
        ax2.set(xlabel="distillation tokens", ylabel="KL to the teacher (nats/token)",
                title="Distillation: training loss and held-out KL")
        ax2.legend(fontsize=7)
        fig.text(0.01, -0.03, "Recovered share = (PPL_pruned - PPL_KD) / (PPL_pruned - PPL_base) at the same GGUF "
                 "type. " + base_note, fontsize=6.5, ha="left", va="top", wrap=True)
        fig.tight_layout()
        written.extend(_savefig(fig, out_dir / "distillation_recovery"))
        plt.close(fig)
    return written


def _fmt(x, nd=3):
    return "--" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{nd}f}"


def _latex_table(header: list[str], rows: list[list[str]], caption: str, label: str, align: str) -> str:
    esc = lambda s: str(s).replace("_", r"\_").replace("%", r"\%")  # noqa: E731
    # the tabular goes into a box first and is scaled down only when it is wider than the text (graphicx)
    lines = [r"\begin{table}[t]", r"\centering", r"\small", rf"\caption{{{caption}}}", rf"\label{{{label}}}",
             rf"\sbox0{{\begin{{tabular}}{{{align}}}", r"\toprule", " & ".join(header) + r" \\", r"\midrule"]
    lines += [" & ".join(esc(c) for c in r) + r" \\" for r in rows]
    lines += [r"\bottomrule", r"\end{tabular}}",
              r"\ifdim\wd0>\linewidth\resizebox{\linewidth}{!}{\usebox0}\else\usebox0\fi", r"\end{table}", ""]
    return "\n".join(lines)


def tables(df: pd.DataFrame, out_dir: Path, base_note: str, gen: list[str]) -> list[Path]:
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
        "top-1 agreement with F16, generalization accuracy (mean acc over "
        + ", ".join(TASK_LABELS.get(t, t) for t in gen) + ") and "
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
    c_rows = [[r["variant"], r["lineage"].replace(" -> ", r" $\rightarrow$ "), _fmt(r["hf_params"] / 1e6, 1),
               _fmt(100 * r["nonzero_share"], 0), _fmt(r["file_mb"], 1), _fmt(r["ppl"], 2), _fmt(r["kld"], 3),
               _fmt(r["gen_acc"]), _fmt(r["tg_ts"], 1)] for _, r in df.iterrows()]
    compression = _latex_table(
        ["Variant", "Lineage", "Params (M)", "Non-zero \\%", "MB", "PPL", "KLD", "Gen. acc", "tg t/s"], c_rows,
        "Every variant's lineage (base $\\rightarrow$ pruned $\\rightarrow$ distilled $\\rightarrow$ quantized). "
        "KL divergence is measured against the base model's F16 file. Unstructured and 2:4 sparse models keep "
        "their zeros in the GGUF file (llama.cpp has no sparse storage), so they are neither smaller nor faster. "
        + base_note, "tab:compression", "lp{5.2cm}rrrrrrr")
    out = []
    for name, text in (("quality", quality), ("resources", resources), ("tensor_types", types),
                       ("compression", compression)):
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


def add_significance(df: pd.DataFrame, comp: pd.DataFrame) -> pd.DataFrame:
    """Per variant and headline metric: the reference, the change, its p-value and whether it is significant."""
    df = df.copy()
    df["reference"] = None
    for _, c in comp.iterrows():
        i = df.index[df["variant"] == c["variant"]][0]
        df.loc[i, "reference"] = c["reference"]
        for k in ("delta", "p", "significant"):
            df.loc[i, f"{c['metric']}_{k}"] = c[k]
    return df


def significance_figure(df: pd.DataFrame, comp: pd.DataFrame, out_dir: Path, confidence: float, alpha: float,
                        note: str) -> list[Path]:
    """Forest plot: each headline metric per variant with its CI; significant changes vs the reference marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="paper")
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
             f"(red worse, green better; McNemar exact test for 0/1 scores, paired bootstrap for MC2; alpha = {alpha}, "
             "not corrected for multiple comparisons). Black: reference variants. Reference: the base model at the "
             "same GGUF type for compressed variants, the base model's F16 for quantized ones. " + note,
             fontsize=7, ha="left", va="top", wrap=True)
    fig.tight_layout()
    written = _savefig(fig, out_dir / "quality_significance")
    plt.close(fig)
    return written


def _ci(r, m, nd=3) -> str:
    if m not in r or pd.isna(r.get(m)):
        return "--"
    return f"{_fmt(r[m], nd)} [{_fmt(r[f'{m}_ci_low'], 2)}, {_fmt(r[f'{m}_ci_high'], 2)}]"


def hallucination_table(df: pd.DataFrame, gen: list[str], confidence: float, alpha: float, note: str) -> str:
    rows = []
    for _, r in df.iterrows():
        cells = [r["variant"]]
        for m in HEADLINE:
            cell = _ci(r, m)
            sig = r.get(f"{m}_significant")
            if sig is not None and not pd.isna(sig) and bool(sig):
                cell += r"$^\dagger$"
            cells.append(cell)
        rows.append(cells)
    tasks = ", ".join(TASK_LABELS.get(t, t) for t in gen)
    caption = (
        f"Generalization accuracy (mean acc over {tasks}) and hallucination rates with {100 * confidence:.0f}\\% "
        r"bootstrap intervals. Generated answers (lm-eval's truthfulqa\_gen prompt, greedy) count as hallucinated "
        "when they are not closer to a correct reference answer than to every incorrect one, by ROUGE-L, BLEU (lm-eval's "
        r"metrics) or all-MiniLM-L6-v2 embedding similarity. $\dagger$: significantly different from the "
        r"variant's reference on the same items (McNemar exact test / paired bootstrap, $\alpha = "
        + f"{alpha}$). " + note)
    table = _latex_table(["Variant", "Gen. acc", "MC1 err", "MC2", "Gen. halluc. ROUGE-L", "BLEU", "Embedding"],
                         rows, caption, "tab:hallucination", "lllllll")
    return table.replace(r"\begin{table}[t]", r"\begin{table*}[t]").replace(r"\end{table}", r"\end{table*}")


def build(params: Params, lay) -> dict:
    df, speed, per_item = collect(params, lay)
    root = lay.root
    rec = recovery(df, params)
    comp = comparisons(params, per_item)
    df = add_significance(df, comp)
    _write_csv(df, root / "results" / "results.csv")
    _write_csv(speed, root / "results" / "speed.csv")
    _write_csv(rec, root / "results" / "recovery.csv")
    _write_csv(comp, root / "results" / "comparisons.csv")
    summary = metrics(df)
    if len(rec):
        summary["distillation_recovery"] = {
            r["variant"]: {k: (None if pd.isna(r.get(k)) else round(float(r[k]), 6))
                           for k in ("ppl_base", "ppl_pruned", "ppl_distilled", "ppl_recovered_share",
                                     "gen_acc_base", "gen_acc_pruned", "gen_acc_distilled", "distill_seconds")
                           if k in r} for _, r in rec.iterrows()}
    write_json(root / "metrics" / "summary.json", summary)
    plot_cols = ["variant", "model", "kind", "type", "bpw", "file_mb", "ppl", "kld", "gen_acc", "halluc_mc1", "mc2",
                 "halluc_gen_rougeL", "halluc_gen_embed", "tg_ts", "pp_ts"]
    _write_csv(df[[c for c in plot_cols if c in df]], root / "plots" / "variants.csv")
    note = base_note(params, lay)
    figs = figures(df, speed, root / "figures", note, params.report.generalization)
    histories = {r: read_json(lay.model_record(ck))["history"] for ck, (_, r) in params.checkpoints().items()
                 if r and params.compress.recipes[r].distill is not None}
    figs += compression_figures(df, rec, histories, root / "figures", note)
    figs += significance_figure(df, comp, root / "figures", params.report.confidence, params.report.alpha, note)
    tabs = tables(df, root / "paper" / "tables", note, params.report.generalization)
    path = root / "paper" / "tables" / "hallucination.tex"
    write_text(path, hallucination_table(df, params.report.generalization, params.report.confidence,
                                         params.report.alpha, note))
    tabs.append(path)
    from . import devices_report, paper
    from .pipeline import versions

    dev_figs, dev_tabs, dev_numbers = devices_report.build_devices(params, lay, root / "figures",
                                                                   root / "paper" / "tables")
    figs += dev_figs
    tabs += dev_tabs
    tool_versions = versions()
    for v in params.variants():
        if lay.bundle_record(v).is_file():
            tool_versions.update({k: x for k, x in read_json(lay.bundle_record(v))["versions"].items() if x})
    tabs += paper.write_paper_inputs(params, lay, df, comp, rec, dev_numbers, tool_versions)
    return {"rows": len(df), "figures": [str(p.relative_to(root)) for p in figs],
            "tables": [str(p.relative_to(root)) for p in tabs]}
