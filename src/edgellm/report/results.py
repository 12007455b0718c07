"""The results table: one row per variant from the stage records, per-item scores and paired comparisons.

Everything a reader sees is regenerated from the per-variant JSON records
(:mod:`edgellm.records`), so a figure can never disagree with the metrics files
it was drawn from.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..config import Params
from ..eval import stats
from ..io import read_json
from ..paths import Layout
from ..records import (
    BaseModelRecord,
    CompressedModelRecord,
    EvalRecord,
    GgufRecord,
    ProfileRecord,
    RecordMissing,
    load_model_record,
)
from .noninferiority import MARGINS, ni_verdict
from .screen import headline_tasks, screen

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
    "lambada_openai": "LAMBADA",
    "sciq": "SciQ",
    "winogrande": "WinoGrande",
    "openbookqa": "OpenBookQA",
}
#: Headline quality metrics: name -> (label, higher is better, 0/1 per item). Each, per base model, is one family
#: of paired tests (every variant of the model against its reference), Holm-adjusted within the family.
HEADLINE = {
    "gen_acc": ("Generalization accuracy", True, True),
    "halluc_mc1": ("Hallucination: TruthfulQA MC1 error", False, True),
    "mc2": ("TruthfulQA MC2 (mass on true answers)", True, False),
    "informative": ("Generated answers: informative", True, True),
    "halluc_gen_rougeL": ("Hallucination: generated, not truthful (ROUGE-L)", False, True),
    "ti_rougeL": ("Generated: truthful and informative (ROUGE-L)", True, True),
    "halluc_gen_embed": ("Hallucination: generated, not truthful (embedding)", False, True),
    "ti_embed": ("Generated: truthful and informative (embedding)", True, True),
}
#: per-answer keys of the judge's verdicts -> the metric they give (hallucinated = 1 - truthful)
JUDGED = {"informative": "informative", "halluc_rougeL": "halluc_gen_rougeL", "halluc_bleu": "halluc_gen_bleu",
          "halluc_embed": "halluc_gen_embed", "truthful_informative_rougeL": "ti_rougeL",
          "truthful_informative_bleu": "ti_bleu", "truthful_informative_embed": "ti_embed"}

#: a stage record the report needs is missing (the message names the file and the stage)
ReportError = RecordMissing


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


def lineage(base: str, ck: CompressedModelRecord | None, qtype: str) -> str:
    """base -> pruned -> distilled -> quantized, as one readable string."""
    steps = [base]
    if ck:
        if ck.prune:
            steps.append(describe_prune(ck.prune))
        if ck.distill:
            spec = ck.recipe_spec.distill
            steps.append(f"KD {spec.tokens:,} tok ({spec.text})")
    steps.append(qtype)
    return " -> ".join(steps)


def kind(ck: CompressedModelRecord | None) -> str:
    """The family a variant belongs to in the figures."""
    if not ck:
        return "quantized"
    pr = (ck.prune or {}).get("method")
    structured = pr in ("depth", "width")
    if pr and not structured:
        label = "sparse (dense zeros)"
    elif pr:
        label = f"{pr}-pruned"
    else:
        label = "distilled"
    return label + (" + KD" if pr and ck.distill else "")


def method_of(var, params: Params) -> str:
    """The compression method a variant's point belongs to (one curve per method in the figures)."""
    if var.recipe is None:
        return "GGUF type + imatrix" if var.imatrix else "GGUF type"
    spec = params.compress.recipes[var.recipe]
    if var.qtype not in params.compress.types:
        return ladder_method(var.recipe)
    prune = spec.prune.method if spec.prune else None
    name = {"depth": "depth", "width": "width", "wanda": f"Wanda {getattr(spec.prune, 'pattern', '') or ''}".strip(),
            "magnitude": "magnitude", None: "distillation"}[prune]
    if spec.distill is None:
        return name
    budgets = [r.distill.tokens for r in params.compress.recipes.values() if r.distill]
    default = max(set(budgets), key=budgets.count)
    ratio = spec.distill.tokens / default
    return f"{name} + KD" + (f", {ratio:g}x tokens" if ratio != 1 else "")


def short_name(variant: str, base: str) -> str:
    """A variant's name without its base model (captions name the base)."""
    return variant.removeprefix(f"{base}-")


def ladder_method(recipe: str) -> str:
    """The curve of a recipe quantized across ``compress.ladder.types``."""
    return f"{recipe}, GGUF type"


def point_label(var, params: Params) -> str:
    """A point's short label: the type for a base variant, the recipe (and a non-default type) otherwise."""
    if var.recipe is None:
        return var.qtype
    return var.recipe if var.qtype in params.compress.types else f"{var.recipe} {var.qtype}"


def read_items(lay: Layout, variant: str) -> dict:
    path = lay.items(variant)
    if not path.is_file():
        raise RecordMissing(f"{path}: per-item evaluation record missing; run its stage (dvc repro evaluate)")
    return read_json(path)


def item_chance(items: dict) -> dict[str, np.ndarray]:
    """task -> each item's accuracy under uniform guessing (from the evaluate stage's per-item record)."""
    return {t: np.array([r.get("chance", np.nan) for r in rows], dtype=np.float64)
            for t, rows in items.items() if rows and "acc" in rows[0]}


#: the key of :func:`item_scores` that holds each task's dataset indices (the pairing of two variants' items)
INDEX = "_index"


def paired(a: dict[str, np.ndarray], b: dict[str, np.ndarray], a_index: dict, b_index: dict) -> dict[str, np.ndarray]:
    """``a``'s scores on ``b``'s items: a frontier-tier variant scores a seeded subset of the reference's items,
    so the reference is compared on that subset (matched by dataset index)."""
    out = {}
    for t, scores in b.items():
        if t not in a_index or t not in b_index or (
                len(a[t]) == len(scores) and np.array_equal(a_index[t], b_index[t])):
            if len(a[t]) != len(scores):
                raise ValueError(f"{t}: {len(a[t])} reference items against {len(scores)} without their indices")
            out[t] = a[t]
            continue
        pos = {int(i): k for k, i in enumerate(a_index[t])}
        missing = [int(i) for i in b_index[t] if int(i) not in pos]
        if missing:
            raise ValueError(f"{t}: items {missing[:5]} of the variant are not among the reference's")
        out[t] = a[t][[pos[int(i)] for i in b_index[t]]]
    return out


def item_scores(items: dict, variant: str, gen: list[str], judged: dict) -> dict[str, dict[str, np.ndarray]]:
    """Per-item scores of one variant, metric -> task -> array in the prepared items' order."""
    out: dict[str, dict[str, np.ndarray]] = {INDEX: {}}
    for t, rows in items.items():
        out[INDEX][t] = np.array([r["index"] for r in rows], dtype=np.int64)
        if rows and "acc" in rows[0]:
            out[f"{t}_acc"] = {t: np.array([r["acc"] for r in rows], dtype=np.float64)}
    if gen:
        out["gen_acc"] = {t: out[f"{t}_acc"][t] for t in gen}
    if "truthfulqa_mc1_acc" in out:
        out["halluc_mc1"] = {"truthfulqa_mc1": 1.0 - out["truthfulqa_mc1_acc"]["truthfulqa_mc1"]}
    if "truthfulqa_mc2_acc" in out:
        out["mc2"] = {"truthfulqa_mc2": out.pop("truthfulqa_mc2_acc")["truthfulqa_mc2"]}
    for t, res in (judged.get("variants", {}).get(variant) or {}).items():
        for key, metric in JUDGED.items():
            if res["items"] and key in res["items"][0]:
                out[metric] = {t: np.array([r[key] for r in res["items"]], dtype=np.float64)}
    return out


def metric_chance(metric: str, chance: dict[str, np.ndarray], gen: list[str]) -> float:
    """A headline metric's value under uniform guessing on its items (NaN where guessing has no meaning)."""
    if metric == "gen_acc" and gen:
        return float(np.mean([chance[t].mean() for t in gen]))
    if metric == "halluc_mc1" and "truthfulqa_mc1" in chance:
        return float(1 - chance["truthfulqa_mc1"].mean())
    if metric == "mc2" and "truthfulqa_mc2" in chance:
        return float(chance["truthfulqa_mc2"].mean())
    return float("nan")


def reference_variant(var, params: Params) -> str | None:
    """What a variant is compared with: a compressed variant with its base model at the same type
    (the effect of compression alone), a quantized base with the base at ``evaluate.kl_base``."""
    types = params.quantization.types
    if var.recipe:
        return f"{var.base}-{var.qtype if var.qtype in types else params.evaluate.kl_base}"
    return None if var.qtype == params.evaluate.kl_base else f"{var.base}-{params.evaluate.kl_base}"


def mark_claims(comp: pd.DataFrame, at_chance: dict[str, set[str]]) -> pd.DataFrame:
    """``carries_claim``: False for a metric whose task the model's reference does not score above chance
    (:func:`~edgellm.report.screen.metrics_at_chance`): its comparisons are reported, but no claim rests on them."""
    base = comp["family"].str.split("/").str[0]
    return comp.assign(carries_claim=[m not in at_chance.get(b, set()) for b, m in zip(base, comp["metric"])])


def comparisons(params: Params, per_item: dict, chance: dict[str, float]) -> pd.DataFrame:
    """Every variant against its reference on the same items, for every headline metric.

    Each metric of each base model is one family (each model's study is its own question): its p-values
    across that model's variants are Holm-adjusted, and a difference is
    called significant only when the adjusted p is below ``report.alpha``. ``mde`` is the minimum detectable
    difference (alpha, ``report.power``) from the observed discordance; ``chance``: "variant/metric" -> level.
    """
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
            a = paired(a, b, per_item[ref][INDEX], per_item[var.name][INDEX])
            c = stats.compare(a, b, binary, rep.bootstrap, rep.confidence, rep.alpha,
                              stats.rng_for(params.seed, var.name, ref, metric), rep.power)
            if metric in MARGINS:
                ta = sorted(a)
                c |= stats.noninferiority([a[t] for t in ta], [b[t] for t in ta], MARGINS[metric], higher,
                                          rep.bootstrap, rep.alpha, stats.rng_for(params.seed, var.name, ref, metric,
                                                                                  "non-inferiority"))
            worse = (c["delta"] < 0) if higher else (c["delta"] > 0)
            out.append({"variant": var.name, "reference": ref, "metric": metric, "label": label, "family": f"{var.base}/{metric}",
                        "n": int(sum(len(x) for x in b.values())), "chance": chance.get(f"{ref}/{metric}"), **c,
                        "direction": "worse" if worse and c["delta"] != 0 else ("better" if c["delta"] else "same")})
    cols = ["variant", "reference", "metric", "label", "family", "n", "chance", "delta", "ci_low", "ci_high",
            "mde", "p", "p_holm", "test", "significant", "detectable", "direction", "only_ref", "only_variant",
            "discordance", "ni_margin", "ni_delta", "ni_lower", "ni_upper", "ni_p", "ni_p_holm", "inferior_p",
            "inferior_p_holm", "ni_verdict"]
    df = pd.DataFrame(out, columns=cols)
    for _, idx in df.groupby("family", sort=False).groups.items():
        df.loc[idx, "p_holm"] = stats.holm(df.loc[idx, "p"].tolist())
        if df.loc[idx, "ni_p"].notna().all():
            df.loc[idx, "ni_p_holm"] = stats.holm(df.loc[idx, "ni_p"].tolist())
            df.loc[idx, "inferior_p_holm"] = stats.holm(df.loc[idx, "inferior_p"].tolist())
    df["significant"] = df["p_holm"] < rep.alpha
    df["ni_verdict"] = [ni_verdict(r, rep.alpha) for _, r in df.iterrows()]
    # a difference at least as large as the study can detect (power report.power); smaller ones are reported
    # as below the detectable size whatever their p
    df["detectable"] = df["delta"].abs() >= df["mde"]
    return df


def variant_row(params: Params, lay: Layout, var, gen: list[str]) -> dict:
    """The quality, size and speed columns of one variant, straight from its stage records."""
    v, model, qtype = var.name, var.checkpoint, var.qtype
    g = GgufRecord.load(lay.gguf_record(v))
    e = EvalRecord.load(lay.eval_record(v))
    ck = CompressedModelRecord.load(lay.model_record(model)) if var.recipe else None
    ppl = e.perplexity
    kl = ppl.kl
    row = {
        "variant": v, "model": model, "base": var.base, "recipe": var.recipe or "", "type": qtype,
        "tier": var.tier, "method": method_of(var, params), "point": point_label(var, params),
        "ladder": var.checkpoint in {f"{var.base}-{r}" for r in params.compress.ladder.recipes},
        "imatrix": var.imatrix,
        "kind": kind(ck),
        "lineage": lineage(var.base, ck, qtype),
        "hf_params": ck.params.params if ck else BaseModelRecord.load(lay.model_record(model)).n_params,
        "nonzero_share": ck.nonzero_share if ck else 1.0,
        "param_reduction": ck.param_reduction if ck else 0.0,
        "distill_seconds": ck.distill_seconds if ck else None,
        "distill_tokens": ck.distill_tokens if ck else None,
        "heldout_kl": ck.heldout_kl if ck else None,
        "heldout_kl_before": getattr(ck, "heldout_kl_before_distill", None) if ck else None,
        "file_mb": g.file_mb, "bpw": g.bpw, "n_params": g.n_params,
        "kquant_eligible_share": g.kquant_eligible_share,
        "tensor_types": g.type_mix(),
        "ppl": ppl.ppl, "ppl_stderr": ppl.ppl_stderr, "ppl_tokens": ppl.n_tokens,
        "kld": kl.kld_mean if kl else None, "kld_stderr": kl.kld_stderr if kl else None,
        "same_top_p": kl.same_top_p if kl else None,
    }
    for t, s in e.tasks.items():
        if not s.scored:  # generative: judged in the judge stage
            continue
        row[f"{t}_acc"] = s.acc
        row[f"{t}_acc_stderr"] = s.acc_stderr
        if s.acc_norm is not None:
            row[f"{t}_acc_norm"] = s.acc_norm
            row[f"{t}_acc_norm_stderr"] = s.acc_norm_stderr
        row[f"{t}_n"] = s.n
        if s.perplexity is not None:
            row[f"{t}_ppl"] = s.perplexity
    row["gen_tasks"] = " ".join(gen)
    row["gen_acc"] = float(np.mean([row[f"{t}_acc"] for t in gen])) if gen else float("nan")
    row["gen_acc_stderr"] = (math.sqrt(sum(row[f"{t}_acc_stderr"] ** 2 for t in gen)) / len(gen)) if gen else float("nan")
    if "truthfulqa_mc1_acc" in row:
        row["halluc_mc1"] = 1.0 - row["truthfulqa_mc1_acc"]
        row["halluc_mc1_stderr"] = row["truthfulqa_mc1_acc_stderr"]
    if "truthfulqa_mc2_acc" in row:
        row["mc2"] = row["truthfulqa_mc2_acc"]
        row["mc2_stderr"] = row["truthfulqa_mc2_acc_stderr"]
    return row


def add_speed(row: dict, p: ProfileRecord) -> dict:
    """The speed columns: the run with the most threads."""
    best = p.best
    row["load_s"] = p.load_seconds
    row["repetitions"] = len(getattr(best.pp, "samples_ts", None) or [])
    row["peak_rss_mb"] = p.peak_rss_bytes / 1e6
    row |= {"threads": best.threads, "pp_ts": best.pp.avg_ts, "pp_ts_sd": best.pp.stddev_ts,
            "tg_ts": best.tg.avg_ts, "tg_ts_sd": best.tg.stddev_ts,
            "ttft_ms": 1e3 * best.ttft.mean_s, "device": p.device.name,
            "speed_source": "measured" if p.measured else "projected"}
    return row


def collect(params: Params, lay: Layout) -> tuple[pd.DataFrame, pd.DataFrame, dict, pd.DataFrame, dict]:
    """One row per variant (main table), one row per variant x thread count (speed), per-item scores, the
    task screen (which tasks enter generalization accuracy) and each headline metric's chance level."""
    rows, speed_rows = [], []
    judged = read_json(lay.judged) if lay.judged.is_file() else {}
    items = {v: read_items(lay, v) for v in params.variants()}
    chance = {v: item_chance(it) for v, it in items.items()}
    task_screen = screen(params, {v: item_scores(it, v, [], {}) for v, it in items.items()}, chance)
    gen_of = headline_tasks(task_screen)
    per_item: dict = {}
    levels: dict[str, float] = {}
    for var in params.all_variants():
        v = var.name
        gen = gen_of[var.base]
        missing = [t for t in gen if t not in items[v]]
        if missing:
            raise ReportError(f"{lay.items(v)}: {v} ({var.tier} tier) has no items of {missing}, which the task screen "
                              f"put in generalization accuracy: add them to evaluate.tiers.{var.tier} in params.yaml")
        row = variant_row(params, lay, var, gen)
        per_item[v] = item_scores(items[v], v, gen, judged)
        for metric, groups in per_item[v].items():
            if metric == INDEX:
                continue
            if metric in HEADLINE or metric.endswith("_acc") or metric == "ti_bleu":
                point, lo, hi = stats.bootstrap_ci(list(groups.values()), params.report.bootstrap,
                                                   params.report.confidence, stats.rng_for(params.seed, v, metric))
                row[metric] = point
                row[f"{metric}_ci_low"], row[f"{metric}_ci_high"] = lo, hi
            if metric in HEADLINE:
                row[f"{metric}_n"] = int(sum(len(g) for g in groups.values()))
                row[f"{metric}_chance"] = levels[f"{v}/{metric}"] = metric_chance(metric, chance[v], gen)
        p = ProfileRecord.load(lay.profile_record(v))
        rows.append(add_speed(row, p))
        for r in p.runs:
            for test, b in r.tests.items():
                speed_rows.append({"variant": v, "model": var.checkpoint, "type": var.qtype, "bpw": row["bpw"],
                                   "device": p.device.name, "threads": r.threads, "test": test,
                                   "avg_ts": b.avg_ts, "stddev_ts": b.stddev_ts})
    return pd.DataFrame(rows), pd.DataFrame(speed_rows), per_item, task_screen, levels


def metrics(df: pd.DataFrame) -> dict:
    """A compact view for ``dvc metrics show`` / ``dvc metrics diff``."""
    keep = ["hf_params", "param_reduction", "file_mb", "bpw", "ppl", "kld", "same_top_p", "gen_acc",
            "gen_acc_ci_low", "gen_acc_ci_high", "gen_acc_n", "halluc_mc1", "mc2", "informative", "halluc_gen_rougeL",
            "halluc_gen_bleu", "halluc_gen_embed", "ti_rougeL", "ti_embed", "tg_ts", "pp_ts", "peak_rss_mb"]
    out = {}
    for _, r in df.iterrows():
        out[r["variant"]] = {k: (None if pd.isna(r.get(k)) else round(float(r[k]), 6)) for k in keep if k in r}
    return out


def base_note(params: Params, lay: Layout) -> str:
    """A caption's note on base models whose F16 is not the original full precision."""
    notes = []
    for m in params.models:
        path = lay.model_record(m)
        if path.is_file() and load_model_record(path).dequantized_from_gguf:
            notes.append(f"{m}: weights dequantized from a 4-bit GGUF, so F16 is not the original full precision.")
    return " ".join(notes)


def add_significance(df: pd.DataFrame, comp: pd.DataFrame) -> pd.DataFrame:
    """Per variant and headline metric: the reference, the change, its p-value and whether it is significant."""
    df = df.copy()
    df["reference"] = None
    for _, c in comp.iterrows():
        i = df.index[df["variant"] == c["variant"]][0]
        df.loc[i, "reference"] = c["reference"]
        for k in ("delta", "p", "p_holm", "mde", "significant"):
            df.loc[i, f"{c['metric']}_{k}"] = c[k]
    return df
