"""The paper's LaTeX tables of the variants: quality, resources, tensor types, compression and hallucination.

One function per table, named after the table's file stem (``paper/tables/<stem>.tex``);
cells are plain text (escaped) unless marked :class:`~edgellm.report.latex.Tex`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..eval.judge import HALLUCINATION_RULE
from ..io import write_text
from .latex import Tex, fmt, generated_by, latex_table, tex_escape
from .results import HEADLINE, TASK_LABELS


def pm(x, sd, nd: int) -> Tex:
    """``x $\\pm$ sd``."""
    return Tex(f"{fmt(x, nd)} $\\pm$ {fmt(sd, nd)}")


def quality(df: pd.DataFrame, base_note: str, gen: list[str]) -> str:
    rows = []
    for _, r in df.iterrows():
        rows.append([r["variant"], fmt(r["bpw"], 2), fmt(r["file_mb"], 1), pm(r["ppl"], r["ppl_stderr"], 2),
                     fmt(r["kld"], 4), fmt(100 * r["same_top_p"], 1) if pd.notna(r["same_top_p"]) else "--",
                     pm(r["gen_acc"], r["gen_acc_stderr"], 3), fmt(r.get("halluc_mc1")), fmt(r.get("mc2"))])
    return latex_table(
        ["Variant", "BPW", "MB", "PPL", "KLD", "Top-1 %", "Gen. acc", "MC1 err", "MC2"], rows,
        "Quality of each GGUF variant: WikiText-2 perplexity (llama-perplexity protocol), KL divergence and "
        "top-1 agreement with F16, generalization accuracy (mean acc over "
        + ", ".join(TASK_LABELS.get(t, t) for t in gen) + ") and "
        f"TruthfulQA hallucination (MC1 error, MC2). {base_note}",
        "tab:quality", "lrrrrrrrr")


def resources(df: pd.DataFrame) -> str:
    rows = [[r["variant"], fmt(r["file_mb"], 1), fmt(r["peak_rss_mb"], 0), fmt(r["load_s"], 2),
             Tex(f"{fmt(r['pp_ts'], 0)} $\\pm$ {fmt(r['pp_ts_sd'], 0)}"),
             Tex(f"{fmt(r['tg_ts'], 1)} $\\pm$ {fmt(r['tg_ts_sd'], 1)}"), fmt(r["ttft_ms"], 1)]
            for _, r in df.iterrows()]
    threads = int(df["threads"].iloc[0])
    return latex_table(
        ["Variant", "File MB", "Peak RSS MB", "Load s", "pp512 t/s", "tg128 t/s", "TTFT ms"], rows,
        f"Resource consumption measured on {df['device'].iloc[0]} with {threads} threads, as llama-bench measures "
        "(mean $\\pm$ sd over repetitions).", "tab:resources", "lrrrrrr")


def tensor_types(df: pd.DataFrame) -> str:
    rows = [[r["variant"], fmt(r["bpw"], 2), fmt(100 * r["kquant_eligible_share"], 0), r["tensor_types"]]
            for _, r in df.iterrows()]
    return latex_table(
        ["Variant", "BPW", "K-eligible %", "Tensor types actually written (share of parameters)"], rows,
        "What each GGUF file really holds. K-quants need rows that are a multiple of 256; llama.cpp silently "
        "falls back to another type for the other tensors.", "tab:tensor-types", "lrrp{7cm}")


def compression(df: pd.DataFrame, base_note: str) -> str:
    rows = [[r["variant"], Tex(r" $\rightarrow$ ".join(tex_escape(s) for s in r["lineage"].split(" -> "))),
             fmt(r["hf_params"] / 1e6, 1), fmt(100 * r["nonzero_share"], 0), fmt(r["file_mb"], 1), fmt(r["ppl"], 2),
             fmt(r["kld"], 3), fmt(r["gen_acc"]), fmt(r["tg_ts"], 1)] for _, r in df.iterrows()]
    return latex_table(
        ["Variant", "Lineage", "Params (M)", "Non-zero %", "MB", "PPL", "KLD", "Gen. acc", "tg t/s"], rows,
        "Every variant's lineage (base $\\rightarrow$ pruned $\\rightarrow$ distilled $\\rightarrow$ quantized). "
        "KL divergence is measured against the base model's F16 file. Unstructured and 2:4 sparse models keep "
        "their zeros in the GGUF file (llama.cpp has no sparse storage), so they are neither smaller nor faster. "
        + base_note, "tab:compression", "lp{5.2cm}rrrrrrr")


def with_ci(r, m, nd=3) -> str:
    """``value [low, high]`` of a metric, ``--`` when the variant has none."""
    if m not in r or pd.isna(r.get(m)):
        return "--"
    return f"{fmt(r[m], nd)} [{fmt(r[f'{m}_ci_low'], 2)}, {fmt(r[f'{m}_ci_high'], 2)}]"


def hallucination(df: pd.DataFrame, gen: list[str], confidence: float, alpha: float, note: str) -> str:
    rows = []
    for _, r in df.iterrows():
        cells = [r["variant"]]
        for m in HEADLINE:
            cell = with_ci(r, m)
            sig = r.get(f"{m}_significant")
            if sig is not None and not pd.isna(sig) and bool(sig):
                cell = Tex(tex_escape(cell) + r"$^\dagger$")
            cells.append(cell)
        rows.append(cells)
    tasks = ", ".join(TASK_LABELS.get(t, t) for t in gen)
    caption = (
        f"Generalization accuracy (mean acc over {tasks}) and hallucination rates with {100 * confidence:.0f}\\% "
        r"bootstrap intervals. Generated answers (lm-eval's truthfulqa\_gen prompt, greedy) are judged by ROUGE-L, "
        f"BLEU (lm-eval's metrics) or all-MiniLM-L6-v2 embedding similarity: {tex_escape(HALLUCINATION_RULE)} "
        r"(ties count as hallucinated). $\dagger$: significantly different from the "
        r"variant's reference on the same items (McNemar exact test / paired bootstrap, $\alpha = "
        + f"{alpha}$). " + note)
    return latex_table(["Variant", "Gen. acc", "MC1 err", "MC2", "Gen. halluc. ROUGE-L", "BLEU", "Embedding"],
                       rows, caption, "tab:hallucination", "lllllll", wide=True)


def write_tables(df: pd.DataFrame, out_dir: Path, base_note: str, gen: list[str], confidence: float,
                 alpha: float) -> list[Path]:
    """Every table above, as ``out_dir/<stem>.tex``."""
    texts = {quality: quality(df, base_note, gen), resources: resources(df), tensor_types: tensor_types(df),
             compression: compression(df, base_note), hallucination: hallucination(df, gen, confidence, alpha, base_note)}
    out = []
    for func, text in texts.items():
        path = out_dir / f"{func.__name__}.tex"
        write_text(path, generated_by(func, "results/results.csv") + text)
        out.append(path)
    return out
