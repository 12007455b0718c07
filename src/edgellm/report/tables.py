"""The paper's LaTeX tables of the variants: quality, resources, tensor types, compression, hallucination,
the task screen, the paired comparisons with their power, the judges' agreement and the answer audit.

One function per table, named after the table's file stem (``paper/tables/<stem>.tex``);
cells are plain text (escaped) unless marked :class:`~edgellm.report.latex.Tex`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..config.schema import Report
from ..eval.judge import HALLUCINATION_RULE
from ..io import write_text
from .latex import Tex, fmt, generated_by, header_lines, latex_table, tex_escape
from .judged import JUDGE_NAMES
from .noninferiority import MARGINS
from .results import HEADLINE, TASK_LABELS, short_name


def pm(x, sd, nd: int) -> Tex:
    """``x $\\pm$ sd``."""
    return Tex(f"{fmt(x, nd)} $\\pm$ {fmt(sd, nd)}")


def task_list(df: pd.DataFrame) -> str:
    """The tasks generalization accuracy averages (those above chance), as readers know them."""
    tasks = str(df["gen_tasks"].iloc[0]).split() if len(df) else []
    return ", ".join(TASK_LABELS.get(t, t) for t in tasks) or "none"


def short(r) -> str:
    return short_name(str(r["variant"]), r["base"])


def quality(df: pd.DataFrame, base_note: str) -> str:
    rows = []
    for _, r in df.iterrows():
        rows.append([short(r), r["tier"], fmt(r["bpw"], 2), fmt(r["file_mb"], 1), pm(r["ppl"], r["ppl_stderr"], 2),
                     fmt(r["kld"], 4), fmt(100 * r["same_top_p"], 1) if pd.notna(r["same_top_p"]) else "--",
                     with_ci(r, "gen_acc"), fmt(r.get("gen_acc_n"), 0), fmt(r.get("halluc_mc1")), fmt(r.get("mc2"))])
    return latex_table(
        ["Variant", "Tier", "BPW", "MB", "PPL", "KLD", "Top-1 %", "Gen. acc [CI]", "n", "MC1 err", "MC2"], rows,
        f"Quality of every variant of {', '.join(sorted(set(df['base'])))}: WikiText-2 perplexity (llama-perplexity "
        f"protocol; {int(df['ppl_tokens'].iloc[0]):,} scored tokens, the same for every variant), KL divergence and "
        f"top-1 agreement with the reference (F16), generalization accuracy (mean acc over the tasks on which the "
        f"base model is above chance: {task_list(df)}; n items: all of them for the reference and the main tier, a "
        f"seeded subset for the frontier tier) and TruthfulQA hallucination (MC1 error, MC2; main tier). "
        f"{base_note}", "tab:quality", "llrrrrrlrrr", wide=True)


def resources(df: pd.DataFrame) -> str:
    rows = [[short(r), fmt(r["file_mb"], 1), fmt(r["peak_rss_mb"], 0), fmt(r["load_s"], 2),
             Tex(f"{fmt(r['pp_ts'], 0)} $\\pm$ {fmt(r['pp_ts_sd'], 0)}"),
             Tex(f"{fmt(r['tg_ts'], 1)} $\\pm$ {fmt(r['tg_ts_sd'], 1)}"), fmt(r["ttft_ms"], 1)]
            for _, r in df.iterrows()]
    threads = int(df["threads"].iloc[0])
    return latex_table(
        ["Variant", "File MB", "Peak RSS MB", "Load s", "pp512 t/s", "tg128 t/s", "TTFT ms"], rows,
        f"Resource consumption of every variant, measured on {df['device'].iloc[0]} with {threads} threads as "
        f"llama-bench measures (mean $\\pm$ sd over {int(df['repetitions'].iloc[0])} repetitions); TTFT: time to "
        "the first generated token of a 128-token prompt.", "tab:resources", "lrrrrrr")


def tensor_types(df: pd.DataFrame) -> str:
    sub = df[(df["recipe"] == "") | df["ladder"]]
    rows = [[short(r), fmt(r["bpw"], 2), fmt(100 * r["kquant_eligible_share"], 0), r["tensor_types"]]
            for _, r in sub.iterrows()]
    return latex_table(
        ["Variant", "BPW", "K-eligible %", "Tensor types actually written (share of parameters)"], rows,
        "What each GGUF file of the two quantization ladders really holds: the base model and the K-aligned "
        "checkpoint (width-k256-kd, every row a multiple of 256). K-quants need rows that are a multiple of 256; "
        "llama.cpp silently falls back to another type (Q4\\_0, Q5\\_0, Q5\\_1, Q8\\_0) for the other tensors, so "
        "a K-type name says little about the base model's file.", "tab:tensor-types", "lrrp{10.5cm}", wide=True)


def compression(df: pd.DataFrame, base_note: str) -> str:
    df = df[(df["recipe"] != "") & ~df["method"].str.endswith("GGUF type")]
    rows = [[short(r), r["tier"], Tex(r" $\rightarrow$ ".join(tex_escape(s) for s in r["lineage"].split(" -> "))),
             fmt(r["hf_params"] / 1e6, 1), fmt(100 * r["nonzero_share"], 0), fmt(r["file_mb"], 1), fmt(r["ppl"], 2),
             fmt(r["kld"], 3), fmt(r["gen_acc"]), fmt(r["tg_ts"], 1)] for _, r in df.iterrows()]
    return latex_table(
        ["Variant", "Tier", "Lineage", "Params (M)", "Non-zero %", "MB", "PPL", "KLD", "Gen. acc", "tg t/s"], rows,
        "Every variant's lineage (base $\\rightarrow$ pruned $\\rightarrow$ distilled $\\rightarrow$ quantized). "
        "KL divergence is measured against the base model's F16 file. Unstructured and 2:4 sparse models keep "
        "their zeros in the GGUF file (llama.cpp has no sparse storage), so they are neither smaller nor faster. "
        + base_note, "tab:compression", "llp{5.8cm}rrrrrrr", wide=True)


def with_ci(r, m, nd=3) -> str:
    """``value [low, high]`` of a metric, ``--`` when the variant has none."""
    if m not in r or pd.isna(r.get(m)):
        return "--"
    return f"{fmt(r[m], nd)} [{fmt(r[f'{m}_ci_low'], 2)}, {fmt(r[f'{m}_ci_high'], 2)}]"


#: the generated-answer columns of the hallucination table: column -> header
GENERATED = {"informative": "Informative", "halluc_gen_rougeL": "Not truthful ROUGE-L", "ti_rougeL": "T&I ROUGE-L",
             "halluc_gen_embed": "Not truthful embed.", "ti_embed": "T&I embed."}


def hallucination(df: pd.DataFrame, confidence: float, alpha: float, note: str) -> str:
    rows = []
    for _, r in df[df["tier"] != "frontier"].iterrows():
        cells = [short(r)]
        for m in ("halluc_mc1", "mc2", *GENERATED):
            cell = with_ci(r, m)
            sig = r.get(f"{m}_significant")
            if sig is not None and not pd.isna(sig) and bool(sig):
                cell = Tex(tex_escape(cell) + r"$^\dagger$")
            cells.append(cell)
        rows.append(cells)
    n_gen = int(df["informative_n"].iloc[0]) if "informative_n" in df and len(df) else 0
    n_mc = int(df["halluc_mc1_n"].iloc[0]) if "halluc_mc1_n" in df and len(df) else 0
    caption = (
        f"Hallucination with {100 * confidence:.0f}\\% bootstrap intervals: TruthfulQA MC1 error and MC2 "
        f"(n = {n_mc} questions), and {n_gen} generated answers per variant (lm-eval's truthfulqa\\_gen prompt, "
        r"greedy) classified as TruthfulQA defines it: \emph{informative} (not empty, not a non-answer such as "
        r"``I have no comment'', not a degenerate repetition loop) and \emph{truthful} by ROUGE-L (lm-eval's "
        f"metric) or all-MiniLM-L6-v2 embedding similarity: {tex_escape(HALLUCINATION_RULE)}. T\\&I: truthful and "
        r"informative. $\dagger$: significantly different from the variant's reference on the same items "
        r"(McNemar exact / sign-flip permutation test, Holm-adjusted within each metric, $\alpha = "
        + f"{alpha}$). " + note)
    header = ["Variant", "MC1 err", "MC2", *(header_lines(h, 11) for h in GENERATED.values())]
    return latex_table(header, rows, caption, "tab:hallucination", "l" * (len(header)), wide=True)


def tasks(screen: pd.DataFrame, confidence: float, alpha: float) -> str:
    """The task screen: each candidate's base accuracy against chance, and whether it enters the headline; the
    hallucination metrics' tasks, and whether they carry a claim."""
    def use(r: pd.Series) -> str:
        if r["role"] == "hallucination":
            return "claims (above chance)" if r["above_chance"] else "no claim (not shown above chance)"
        return "headline" if r["in_headline"] else "not averaged (not shown above chance)"

    rows = [[TASK_LABELS.get(r["task"], r["task"]), r["reference"], r["n"], fmt(r["acc"]),
             f"[{fmt(r['ci_low'], 3)}, {fmt(r['ci_high'], 3)}]", fmt(r["chance"]), fmt(r["chance"] + r["mde_vs_chance"]),
             f"{r['p_holm']:.1e}", use(r)] for _, r in screen.iterrows()]
    return latex_table(
        ["Task", "Base variant", "n", "Acc", f"{100 * confidence:.0f}% CI", "Chance", "Detectable", "p (Holm)",
         "Use"], rows,
        "Which tasks generalization accuracy averages: each candidate task's accuracy for the base model against "
        "the accuracy of uniform guessing (1/k per item; 0 for LAMBADA, whose target word is one of the whole "
        "vocabulary), one-sided exact test (binomial or Poisson-binomial), Holm-adjusted across the candidates. "
        f"A task enters the headline when the adjusted p is below {alpha}; a task not shown above chance is "
        "reported but not averaged, and at its n it may still be above chance by less than the detectable margin. "
        "TruthfulQA MC1 and MC2 (the mass on the true answers against each item's share of true answers; sign-flip "
        "permutation test) are their own Holm family: a metric not shown above chance carries no claim. "
        "Detectable: the smallest accuracy this n tells from chance (power 0.8).",
        "tab:tasks", "llrrlrrrl")


#: the paired tests in two tables (each fits a page): accuracy and TruthfulQA MC, then the generated answers
ACCURACY_METRICS = ("gen_acc", "halluc_mc1", "mc2")


def comparison_table(comp: pd.DataFrame, rep: Report, metrics: tuple[str, ...], what: str, label: str) -> str:
    """Paired tests of ``metrics``: n, chance, the difference with its interval, the minimum detectable
    difference and the Holm-adjusted p-value."""
    rows = []
    ni = any(m in MARGINS for m in metrics)  # the non-inferiority columns, where a metric has a margin
    for _, c in comp[comp["metric"].isin(metrics)].iterrows():
        verdict = ("significant" if c["significant"] else
                   ("below detectable" if not c["detectable"] else "not significant"))
        has = isinstance(c.get("ni_verdict"), str)
        rows.append([c["variant"], HEADLINE[c["metric"]][0].replace("Hallucination: ", ""), c["n"],
                     fmt(c["chance"]) if pd.notna(c["chance"]) else "--",
                     Tex(f"{c['delta']:+.3f} [{c['ci_low']:+.3f}, {c['ci_high']:+.3f}]"), fmt(c["mde"]),
                     f"{c['p']:.3f}", f"{c['p_holm']:.3f}", verdict]
                    + ([Tex(f"{c['ni_lower']:+.3f}") if has else "--", f"{c['ni_p_holm']:.3f}" if has else "--",
                        c["ni_verdict"] if has else "--"] if ni else []))
    return latex_table(
        ["Variant", "Metric", "n", "Chance", Tex("$\\Delta$ vs reference [CI]"), "MDE", "p", "p (Holm)", "Verdict"]
        + (["NI bound", "NI p (Holm)", "Non-inferiority"] if ni else []),
        rows,
        f"Paired tests, {what}: every variant against its reference on the same items (quantized: the base "
        f"model's F16; compressed: the base model at the same type). $\\Delta$ with its {100 * rep.confidence:.0f}\\% "
        f"paired bootstrap interval; MDE: the minimum detectable difference at $\\alpha={rep.alpha}$ and power "
        f"{rep.power} from the observed discordance (statsmodels); p: McNemar exact (0/1 scores; stratified "
        "by task, as a sign-flip permutation, for accuracy averaged over tasks of unequal size) or sign-flip "
        "permutation (MC2); each metric is one family, Holm-adjusted across its variants. A difference smaller "
        "than its MDE is reported as below the detectable size, whatever its p."
        + (" Non-inferiority (metrics with a margin: "
           + ", ".join(f"{HEADLINE[m][0]} {v:g}" for m, v in MARGINS.items())
           + "): NI bound, the unadjusted one-sided bound at level $1-\\alpha$ of the change oriented so that positive is better; "
           "NI p, the one-sided test that the variant loses at least the margin, Holm-adjusted; verdict non-inferior, "
           "inferior or inconclusive." if ni else ""), label, "llrrlrrrl" + ("rrl" if ni else ""), wide=True)


def comparisons(comp: pd.DataFrame, rep: Report) -> str:
    return comparison_table(comp, rep, ACCURACY_METRICS, "generalization accuracy and TruthfulQA MC",
                            "tab:comparisons")


def comparisons_generated(comp: pd.DataFrame, rep: Report) -> str:
    return comparison_table(comp, rep, tuple(m for m in HEADLINE if m not in ACCURACY_METRICS),
                            "generated TruthfulQA answers", "tab:comparisons-generated")


def judges(labels: pd.DataFrame) -> str:
    rows = [[r["target"], JUDGE_NAMES.get(r["judge"], r["judge"]) + (" *" if r["chosen"] else ""), r["n"],
             r["positives"], fmt(r["accuracy"]), fmt(r["sensitivity"]), fmt(r["specificity"]),
             fmt(r["kappa"]) if pd.notna(r["kappa"]) else "--"] for _, r in labels.iterrows()]
    return latex_table(["Label", "Judge", "n", "Positive", "Accuracy", "Sensitivity", "Specificity",
                        Tex("Cohen's $\\kappa$")], rows,
                       "Every judge against labelled answers: the study's generated answers labelled truthful and "
                       "informative by TruthfulQA's definitions (\\texttt{data/truthfulqa\\_gold}). Sensitivity: the share of "
                       "answers labelled 1 that the judge calls 1. Likelihood: a language model's likelihood of each "
                       "reference as a restatement of the answer. The calibrated judge (a logistic model on the "
                       "similarity judges' scores and on what the answer adds to its question; an empty answer or a "
                       "loop is truthful unless it finds a falsehood, as TruthfulQA defines it) is measured out of "
                       "fold; rule: empty, degenerate or non-answer. * the judge with the highest kappa, which gives "
                       "the corrected rates (Table~\\ref{tab:corrected}).", "tab:judges", "llrrrrrr")


def corrected(rates: pd.DataFrame, confidence: float) -> str:
    rows = [[r["variant"], JUDGE_NAMES.get(r["judge"], r["judge"]), r["n"], fmt(r["observed"]),
             f"{fmt(r['corrected'])} [{fmt(r['low'])}, {fmt(r['high'])}]"] for _, r in rates.iterrows()]
    return latex_table(["Variant", "Judge", "n", "Observed", f"Corrected [{confidence:.0%}]"],
                       rows,
                       "Hallucination rates of the generated answers (not truthful), as the chosen judge observes them "
                       "and corrected for its error on the labelled answers (Rogan--Gladen); the percentile-bootstrap "
                       "interval resamples the labelled answers with the variant's, so the calibration's uncertainty is "
                       "in it. The labels are SmolLM2's answers: for Gemma's the correction assumes the judge errs alike.",
                       "tab:corrected", "llrrl")


def audit(sample: pd.DataFrame) -> str:
    rows = []
    for _, r in sample.iterrows():
        answer = str(r["answer"]).encode("ascii", "replace").decode()  # pdflatex: no font for every character
        answer = answer if len(answer) <= 90 else answer[:87] + "..."
        verdict = ("informative" if r["informative"] else f"uninformative ({r['reason']})")
        truthful = "/".join("T" if r.get(f"truthful_{j}") else "F" for j in ("rougeL", "embed"))
        rows.append([r["variant"], r["index"], answer, r["stop"], r["tokens"], verdict, truthful])
    return latex_table(["Variant", "Item", "Answer (first 90 characters)", "Stop", "Tokens", "Informative",
                        "Truthful R/E"], rows,
                       "A seeded sample of generated answers, the same questions for every variant, with the judges' "
                       "verdicts (T/F: truthful by ROUGE-L / embedding), so that a reader can check the judge (characters "
                       "outside ASCII shown as ?; every answer in full in results/hallucination.json). "
                       "Stop: end of generation, the blank line that ends an answer, or the length cap.",
                       "tab:audit", "lrp{6.2cm}lrp{2.6cm}l", wide=True)


def write_tables(df: pd.DataFrame, comp: pd.DataFrame, screen: pd.DataFrame, sample: pd.DataFrame,
                 labels: pd.DataFrame, rates: pd.DataFrame, out_dir: Path, base_note: str, rep: Report) -> list[Path]:
    """Every table above, as ``out_dir/<stem>.tex``."""
    texts = {quality: (quality(df, base_note), "results/results.csv"), resources: (resources(df), "results/results.csv"),
             tensor_types: (tensor_types(df), "results/results.csv"),
             compression: (compression(df, base_note), "results/results.csv"),
             hallucination: (hallucination(df, rep.confidence, rep.alpha, base_note), "results/results.csv"),
             tasks: (tasks(screen, rep.confidence, rep.alpha), "results/tasks.csv"),
             comparisons: (comparisons(comp, rep), "results/comparisons.csv"),
             comparisons_generated: (comparisons_generated(comp, rep), "results/comparisons.csv"),
             judges: (judges(labels), "results/hallucination.json"),
             corrected: (corrected(rates, rep.confidence), "results/hallucination.json"),
             audit: (audit(sample), "results/audit.csv")}
    out = []
    for func, (text, source) in texts.items():
        path = out_dir / f"{func.__name__}.tex"
        write_text(path, generated_by(func, source) + text)
        out.append(path)
    return out
