"""Findings that must replicate: every finding of the study measured on each base model by a stated rule, and
whether it holds in all of them, in some, or in none.

A finding holds in a model when its rule says so on that model's results alone (the rule names the test and
the direction; "significant" is after Holm within the metric, as everywhere in the study). The paper's abstract
and conclusion claim only the findings that hold in every model (:func:`replicated`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from scipy import stats

from ..config import Params
from ..paths import Layout
from ..config.base import base_type, embedding_type
from .analysis import faster_beyond_noise
from .devices import accessibility_verdict
from .latex import Macro, latex_table, tex_escape

#: Mean KL divergence to FP16 of LLaMA-3-8B per (type, importance matrix), from llama.cpp's own scoreboard
#: (tools/perplexity/README.md, "LLaMA 3 8b Scoreboard", revision f364eb6f, CUDA, WikiText-2; the importance
#: matrices of the "WT 10m" rows). The study's ladder is ranked against it.
PUBLISHED_KLD_LLAMA3_8B: dict[tuple[str, bool], float] = {
    ("Q8_0", False): 0.001355, ("Q6_K", False): 0.005452, ("Q5_K_M", False): 0.010762,
    ("Q4_K_M", False): 0.031273, ("Q4_K_M", True): 0.028152, ("IQ4_NL", True): 0.035742,
    ("IQ4_XS", True): 0.036334, ("Q4_1", False): 0.071683, ("Q4_0", False): 0.071940,
    ("Q3_K_M", False): 0.101913, ("Q3_K_M", True): 0.084358, ("IQ3_S", True): 0.111278,
    ("IQ3_XXS", True): 0.183625, ("Q2_K", False): 0.445132, ("Q2_K", True): 0.332223,
    ("IQ2_XS", True): 0.546290, ("IQ2_XXS", True): 0.812022,
}
PUBLISHED_KLD_SOURCE = "llama.cpp tools/perplexity/README.md, LLaMA 3 8b Scoreboard (revision f364eb6f)"


def table_path(lay: Layout) -> Path:
    """``results/replication.csv``, beside the other results tables."""
    return lay.results_table.with_name("replication.csv")


@dataclass(frozen=True)
class Outcome:
    """A finding on one model: what was measured, and whether the rule holds (None: not measurable there)."""

    value: str
    holds: bool | None


@dataclass(frozen=True)
class Finding:
    key: str
    label: str
    rule: str
    measure: Callable[..., Outcome]


def _recipe(df: pd.DataFrame) -> pd.Series:
    return df["recipe"].fillna("")  # a CSV read back has NaN where the base types have no recipe


def _base_types(df: pd.DataFrame, model: str) -> pd.DataFrame:
    return df[(df["base"] == model) & (_recipe(df) == "")]


def ladder_order(df: pd.DataFrame, model: str, ctx: dict) -> Outcome:
    rows = _base_types(df, model)
    pairs = [(r["type"], r["kld"], PUBLISHED_KLD_LLAMA3_8B[(base_type(r["type"]), bool(r["imatrix"]))])
             for _, r in rows.iterrows() if embedding_type(r["type"]) is None
             and (base_type(r["type"]), bool(r["imatrix"])) in PUBLISHED_KLD_LLAMA3_8B and pd.notna(r["kld"])]
    if len(pairs) < 4:
        return Outcome(f"{len(pairs)} types in the published table", None)
    ours, theirs = [a for _, a, _ in pairs], [b for _, _, b in pairs]
    rho, p = stats.spearmanr(ours, theirs, alternative="greater")
    text = f"Spearman {rho:+.2f} over {len(pairs)} types (p = {p:.2g})"
    origin = ctx["origins"].get(model)
    names = [t for t, _, _ in pairs]
    if origin in names:  # where the weights' own grid bends the order: the origin's rank here and published
        rank = lambda xs, i: 1 + sum(x < xs[i] for x in xs)
        i = names.index(origin)
        text += f"; origin {origin} ranks {rank(ours, i)} here, {rank(theirs, i)} published"
    return Outcome(text, bool(rho > 0 and p < ctx["alpha"]))


def origin_near_zero(df: pd.DataFrame, model: str, ctx: dict) -> Outcome:
    origin = ctx["origins"].get(model)
    rows = _base_types(df, model)
    rows = rows[rows["variant"] != ctx["reference"][model]]
    own = rows[rows["type"] == origin] if origin else rows.iloc[0:0]
    if own.empty:
        return Outcome("no origin type in the ladder", None)
    kld = float(own["kld"].iloc[0])
    others = rows[rows["type"] != origin]["kld"]
    return Outcome(f"{origin}: KL {kld:.4f} (others from {others.min():.4f})", bool(kld < others.min()))


def _mildest_cost(method: str) -> Callable[..., Outcome]:
    def measure(df: pd.DataFrame, model: str, ctx: dict) -> Outcome:
        comp = ctx["comp"]
        pts = df[(df["base"] == model) & (_recipe(df) != "") & df["method"].str.startswith(method)]
        pts = pts[~pts["method"].str.contains("x tokens")]
        if pts.empty:
            return Outcome(f"no {method} point", None)
        r = pts.loc[pts["ppl"].idxmin()]
        c = comp[(comp["variant"] == r["variant"]) & (comp["metric"] == "gen_acc")]
        if c.empty:
            return Outcome(f"{r['point']}: no accuracy comparison", None)
        c = c.iloc[0]
        return Outcome(f"{r['point']}: {c['delta']:+.3f} [{c['ci_low']:+.3f}, {c['ci_high']:+.3f}], n = {int(c['n'])}",
                       bool(c["significant"] and c["direction"] == "worse"))
    return measure


def kd_recovery(df: pd.DataFrame, model: str, ctx: dict) -> Outcome:
    rec = ctx["rec"]
    rows = rec[rec["base"] == model] if len(rec) else rec
    if len(rows) == 0:
        return Outcome("no distilled point", None)
    lowered = int((rows["heldout_kl_after"] < rows["heldout_kl_before"]).sum())
    med = float(rows["kl_recovered_share"].median())
    return Outcome(f"{lowered} of {len(rows)} lowered held-out KL (median {100 * med:.0f} %)", bool(med > 0))


def q4_speed(df: pd.DataFrame, model: str, ctx: dict) -> Outcome:
    rows = _base_types(df, model).set_index("type")
    ref_t = ctx["kl_base"]
    if "Q4_K_M" not in rows.index or ref_t not in rows.index:
        return Outcome("no Q4_K_M or reference speed", None)
    q, f = rows.loc["Q4_K_M"], rows.loc[ref_t]
    return Outcome(f"generation {q['tg_ts'] / f['tg_ts']:.2f}x {ref_t}", faster_beyond_noise(q, f, "tg_ts"))


def pp_slower(df: pd.DataFrame, model: str, ctx: dict) -> Outcome:
    rows = _base_types(df, model).set_index("type")
    ref_t = ctx["kl_base"]
    if ref_t not in rows.index or len(rows) < 2:
        return Outcome("no quantized types or reference speed", None)
    f, quant = rows.loc[ref_t], rows.drop(index=ref_t)
    slower = sum(faster_beyond_noise(f, q, "pp_ts") for _, q in quant.iterrows())
    ratio = quant["pp_ts"] / f["pp_ts"]
    return Outcome(f"{slower} of {len(quant)} slower (pp {ratio.min():.2f}-{ratio.max():.2f}x {ref_t})",
                   bool(slower > len(quant) / 2))


def access_widened(df: pd.DataFrame, model: str, ctx: dict) -> Outcome:
    shares = ctx["access"]
    if shares is None:
        return Outcome("no fleet", None)
    s = shares[shares.index.isin(df.loc[df["base"] == model, "variant"])]
    ref = ctx["reference"][model]
    if ref not in s.index:
        return Outcome("reference not deployed", None)
    verdict = accessibility_verdict(s, ref)
    return Outcome(f"{verdict}: reference {100 * s[ref]:.0f} %, best {100 * s.drop(index=ref).max():.0f} %",
                   verdict == "widened")


FINDINGS = [
    Finding("ladder_order", "The KL ladder is ordered as llama.cpp's LLaMA-3-8B scoreboard",
            "Spearman correlation of the base types' KL with the published KL > 0, one-sided p < alpha", ladder_order),
    Finding("origin_near_zero", "The origin type re-quantizes closest to the reference",
            "the type the weights were dequantized from has the smallest KL of the base types", origin_near_zero),
    Finding("mild_depth_cost", "The mildest depth point costs accuracy",
            "its accuracy change against the base at its type is significant (Holm) and negative",
            _mildest_cost("depth")),
    Finding("mild_width_cost", "The mildest width point costs accuracy",
            "its accuracy change against the base at its type is significant (Holm) and negative",
            _mildest_cost("width")),
    Finding("kd_recovery", "Distillation recovers held-out KL",
            "the median share of the pruning's held-out KL that distillation recovers is positive", kd_recovery),
    Finding("q4_speed", "Q4_K_M generates faster than the reference",
            "tg128 difference above twice its standard error (llama-bench repetitions)", q4_speed),
    Finding("pp_slower", "Most quantized types process prompts more slowly than the reference on this host",
            "more than half of the base types' pp512 below the reference's by over twice the standard error", pp_slower),
    Finding("access_widened", "Compression widens the fleet share",
            "some deployed variant is accessible on a larger share of the fleet than the reference (the band's lower "
            "end, as the paper's accessibility verdict)", access_widened),
]


def _in_sentence(label: str) -> str:
    """A finding's label inside a sentence: its first word lower-cased, unless it is a name (Q4_K_M, KL)."""
    first = label.split(" ", 1)[0]
    return label if first[1:2].isupper() or any(c.isdigit() or c == "_" for c in first) else label[0].lower() + label[1:]


def replication(params: Params, df: pd.DataFrame, comp: pd.DataFrame, rec: pd.DataFrame,
                access: pd.DataFrame | None, origins: dict[str, str | None]) -> pd.DataFrame:
    """One row per finding and model: the value, whether it holds; then per finding the verdict over models."""
    kl = params.evaluate.kl_base
    ctx = {"alpha": params.report.alpha, "kl_base": kl, "comp": comp, "rec": rec, "origins": origins,
           "reference": {m: f"{m}-{kl}" for m in params.models},
           "access": access.set_index("variant")["accessible_share"] if access is not None and len(access) else None}
    rows = []
    for f in FINDINGS:
        for m in params.models:
            o = f.measure(df, m, ctx)
            rows.append({"finding": f.key, "label": f.label, "rule": f.rule, "model": m, "value": o.value,
                         "holds": o.holds})
    return pd.DataFrame(rows)


def verdict(holds: list[bool | None]) -> str:
    """"all" when the finding holds in every model, "none" when in none, else "k of n"; a model where it could
    not be measured counts as not holding (absence of a measurement is not a replication)."""
    k, n = sum(h is True for h in holds), len(holds)
    return "all" if k == n else "none" if k == 0 else f"{k} of {n}"


def replicated(table: pd.DataFrame) -> pd.DataFrame:
    """Per finding: its label, rule, the models it holds in, and the verdict."""
    out = []
    for key, g in table.groupby("finding", sort=False):
        out.append({"finding": key, "label": g["label"].iloc[0], "rule": g["rule"].iloc[0],
                    "holds_in": " ".join(g.loc[g["holds"] == True, "model"]),  # noqa: E712 (None is not True)
                    "verdict": verdict(list(g["holds"]))})
    return pd.DataFrame(out)


def replication_tex(table: pd.DataFrame) -> str:
    models = list(dict.fromkeys(table["model"]))
    summary = replicated(table).set_index("finding")
    rows = []
    for key, g in table.groupby("finding", sort=False):
        cells = [("\\checkmark\\ " if h is True else "$\\times$ " if h is False else "-- ") + tex_escape(v)
                 for v, h in zip(g["value"], g["holds"])]
        rows.append([tex_escape(g["label"].iloc[0]), *cells, tex_escape(summary.loc[key, "verdict"])])
    return latex_table(["Finding", *[tex_escape(m) for m in models], "Holds in"], rows,
                       "Findings that must replicate. Each is measured on every base model by the rule of its row "
                       "in \\texttt{results/replication.csv}; \\checkmark: the rule holds, $\\times$: it does not, --: "
                       "not measurable. The abstract and the conclusion claim only the findings that hold in all.",
                       "tab:replication", "l" + "p{4.2cm}" * len(models) + "l")


def replication_numbers(table: pd.DataFrame, source: str) -> dict[str, Macro]:
    """The paper's counts of what replicates, with the rule that decides it."""
    summary = replicated(table)
    held = summary[summary["verdict"] == "all"]
    origin = f"{__name__}.{replication_numbers.__qualname__}"
    n = {"nFindings": (len(summary), f"{source}: findings (count)"),
         "nReplicated": (len(held), f"{source}: findings that hold in every base model (replication.verdict)"),
         "replicatedList": ("; ".join(tex_escape(_in_sentence(x)) for x in held["label"]) or "none",
                            f"{source}: labels of the findings that hold in every base model"),
         "notReplicatedList": ("; ".join(f"{tex_escape(_in_sentence(r['label']))} ({r['verdict']})"
                                         for _, r in summary[summary["verdict"] != "all"].iterrows()) or "none",
                               f"{source}: the other findings and their verdicts")}
    return {k: Macro(v, origin, s) for k, (v, s) in n.items()}
