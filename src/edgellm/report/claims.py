"""The numbers of the paper's Discussion: the seed paper's four claims, the Q4_1 origin, the K-quant fallback,
the frontier's mildest points and the distillation budget, and the agreement with lm-evaluation-harness.

Each value is a :class:`~edgellm.report.latex.Macro` whose trace names this function and the results file and
column it came from. The values are defined by roles (the reference, the origin type, the mildest point of a
method, the smallest variant shown non-inferior), so the text stays true for another study.
"""

from __future__ import annotations

import re

import pandas as pd

from ..config import Params, variant_name
from ..io import read_json
from ..paths import Layout
from ..records import load_model_record
from .analysis import faster_beyond_noise, speed_verdict
from .latex import Macro, fmt_grouped, tex_escape
from .noninferiority import MARGINS
from .results import short_name

#: the llama.cpp commit vendored by each llama-cpp-python release the project pins (git ls-tree <tag>
#: vendor/llama.cpp in abetlen/llama-cpp-python; the sdist's tree is byte-identical to it). Its CMake build cannot
#: see the commit (the sdist carries no .git for the vendored tree), so the tools report "commit unknown".
VENDORED_LLAMA_CPP = {"0.3.36": "0c1e57098bba43ac29e6e3b677cdceebdd22334f"}

#: the generalization-accuracy comparisons a claim counts
ACC = "gen_acc"
#: hallucination metrics of the claims (rates: lower is better; T&I: higher is better)
HALLUCINATION = ("halluc_mc1", "mc2", "informative", "halluc_gen_rougeL", "ti_rougeL", "halluc_gen_embed", "ti_embed")


def pct(x: float, nd: int = 0) -> str:
    return fmt_grouped(100 * x, nd) if pd.notna(x) else "--"


def signed(x: float, nd: int = 3) -> str:
    return "--" if pd.isna(x) else f"${x:+.{nd}f}$"


def origin_type(params: Params, lay: Layout, model: str | None = None) -> str | None:
    """The GGUF type a base model's weights were dequantized from (``...Q4_1.gguf``, ``...q4_k_m.gguf``), if they
    were (the first base model by default)."""
    m = model or next(iter(params.models))
    path = lay.model_record(m)
    if not path.is_file():
        return None
    rec = load_model_record(path)
    if not getattr(rec, "dequantized_from_gguf", False):
        return None
    found = re.search(r"[.-](Q\d_[A-Z0-9_]+|F16|BF16|Q\d_\d)\.gguf$", str(getattr(rec, "file", "")), re.IGNORECASE)
    return found.group(1).upper() if found else None


def type_mix(mix: str) -> list[tuple[str, float]]:
    """``"Q4_0 59% / Q2_K 30%"`` (results.csv's tensor_types) -> [(type, share)], largest first."""
    out = [(t, float(s) / 100) for t, s in re.findall(r"([A-Z0-9_]+)\s+(\d+(?:\.\d+)?)%", str(mix))]
    return sorted(out, key=lambda x: -x[1])


def improvement_verdict(n_better: int) -> str:
    """The paper's verdict on a metric, by the rule its Methods state: "improved" when at least one variant is
    significantly better than its reference after Holm, else "not improved"."""
    return "improved" if n_better > 0 else "not improved"


def ni_rule(margins: dict[str, float]) -> str:
    """The headline's rule in words (the Methods and the traces quote it)."""
    return ("the smallest file, other than the reference and the origin type, that is non-inferior on "
            + " and ".join(f"{m} (margin {v:g})" for m, v in margins.items()) + " after Holm")


def noninferiority_claims(df: pd.DataFrame, comp: pd.DataFrame, ref: pd.Series, ref_name: str, origin: str | None,
                          base: str, res: str, cmp_: str) -> dict[str, tuple]:
    """The headline by non-inferiority: the smallest variant shown non-inferior to the model's reference on every
    margin metric (never the reference, never the origin type, which is reported beside it as a control; a compressed
    variant, tested against the base at its type, is not a candidate), the verdicts' counts, and how many
    base-model types have a negative accuracy difference (a count, not a test: they share the reference's items).

    ``niVariantId`` (the headline's variant name, or "") is for the caller and not a macro."""
    f = fmt_grouped
    # the margin metrics that carry a claim for this model (one at chance decides nothing)
    marg = comp[comp["metric"].isin(MARGINS) & comp["carries_claim"].astype(bool)]
    verdicts = marg.pivot_table(index="variant", columns="metric", values="ni_verdict", aggfunc="first")
    ok = [v for v, r in verdicts.iterrows() if all(r.get(m) == "non-inferior" for m in verdicts.columns)]
    origin_name = variant_name(base, origin) if origin else None
    # only variants tested against the model's own reference: a compressed variant is tested against the base at its
    # type, and two non-inferiority steps do not make one at the same margin
    against_ref = set(marg.loc[marg["reference"] == ref_name, "variant"]) if "reference" in marg else set(ok)
    pool = df[df["variant"].isin(ok) & df["variant"].isin(against_ref) & (df["variant"] != ref_name)
              & (df["variant"] != origin_name)]
    head = pool.loc[pool["file_mb"].idxmin()] if len(pool) else None
    src = f"{cmp_}: ni_verdict; {res}: file_mb ({ni_rule(MARGINS)})"
    acc = comp[comp["metric"] == ACC].set_index("variant")
    short = lambda v: tex_escape(short_name(v, base))
    if head is not None:
        c = acc.loc[head["variant"]]
        headline = (f"{short(head['variant'])} ({f(head['file_mb'], 1)}~MB) is the smallest variant shown non-inferior, "
                    f"{pct(1 - head['file_mb'] / ref['file_mb'])}\\% smaller than the reference "
                    f"(accuracy {signed(c['ni_delta'])}, unadjusted one-sided bound {signed(c['ni_lower'])})")
    else:
        headline = ("no variant other than the origin type is shown non-inferior" if origin_name in ok
                    else "no variant is shown non-inferior")
    n = {"niVariantId": (head["variant"] if head is not None else "", src),
         "niHeadline": (headline, src),
         "niVariant": (short(head["variant"]) if head is not None else "none", src),
         "niSaving": (pct(1 - head["file_mb"] / ref["file_mb"]) if head is not None else "--", src),
         "niTgRatio": (f(head["tg_ts"] / ref["tg_ts"], 2) if head is not None else "--", f"{res}: tg_ts / reference")}
    a = comp[comp["metric"] == ACC]
    for verdict, key in (("non-inferior", "niAccNonInferior"), ("inferior", "niAccInferior"),
                         ("inconclusive", "niAccInconclusive")):
        n[key] = (int((a["ni_verdict"] == verdict).sum()), f"{cmp_}: gen_acc ni_verdict == {verdict} (count)")
    n["niAccN"] = (len(a), f"{cmp_}: gen_acc (count)")
    # the origin type: a control beside the headline, never the headline
    if origin_name is not None and origin_name in acc.index:
        c = acc.loc[origin_name]
        n |= {"originNiVerdict": (c["ni_verdict"], f"{cmp_}: ni_verdict ({origin_name})"),
              "originNiLower": (signed(c["ni_lower"]), f"{cmp_}: ni_lower ({origin_name})")}
    else:
        n |= {"originNiVerdict": ("--", f"{cmp_}: no origin type"), "originNiLower": ("--", f"{cmp_}: no origin type")}
    # direction of the ladder: how many base-model types have a negative point estimate (no test: the types
    # share the reference's items, so their differences are correlated and a sign test would overstate it)
    types = a[a["variant"].isin(df.loc[df["recipe"] == "", "variant"]) & (a["variant"] != origin_name)]
    n |= {"ladderNeg": (int((types["delta"] < 0).sum()),
                        f"{cmp_}: gen_acc delta < 0, base-model types other than the origin (count)"),
          "ladderNonzero": (int((types["delta"] != 0).sum()),
                            f"{cmp_}: gen_acc delta != 0, base-model types other than the origin (count)")}
    return n


def claims_numbers(params: Params, lay: Layout, df: pd.DataFrame,
                   per_model: dict[str, dict[str, Macro]]) -> dict[str, Macro]:
    """The study's claims: the first base model's (of ``per_model``, :func:`per_model_claims`) as plain macros
    (``\\accQuantDeltaMin``: a number of the text that names no model is the first model's), and what concerns
    the whole study (tiers, origins, agreement)."""
    first = next(iter(params.models))
    n = {k: (str(v), v.source) for k, v in per_model[first].items()}
    tiers = df["tier"].value_counts()
    res = lay.results_table.relative_to(lay.root).as_posix()
    f = fmt_grouped
    n |= {"nMain": (int(tiers.get("main", 0) + tiers.get("reference", 0)), f"{res}: tier main or reference (count)"),
          "nFrontier": (int(tiers.get("frontier", 0)), f"{res}: tier frontier (count)"),
          "frontierItems": (f(df.loc[df["tier"] == "frontier", "gen_acc_n"].max(), 0) if tiers.get("frontier") else "--",
                            f"{res}: gen_acc_n (frontier tier)"),
          # which variants the full evaluation went to: the base model's types, then compressed points at their type
          # the base model named where the study has several (their points share names)
          "mainList": (", ".join(tex_escape((f"{r['base']} " if len(params.models) > 1 else "")
                                            + (r["point"] if not r["recipe"] else f"{r['point']} at {r['type']}"))
                                 for _, r in df[df["tier"] == "main"].iterrows()) or "none",
                       f"{res}: base, point and type (tier main)"),
          "originTypes": ("; ".join(f"{tex_escape(m)} {tex_escape(origin_type(params, lay, m) or 'none')}"
                                    for m in params.models), "results/models/<model>.json: file (each base model)"),
          "refModel": (tex_escape(first), "params.yaml: models (first)"),
          "niMarginAcc": (f(MARGINS[ACC], 2), "edgellm.report.noninferiority.MARGINS: gen_acc"),
          "niMarginMc": (f(MARGINS["mc2"], 2), "edgellm.report.noninferiority.MARGINS: mc2")}
    n |= agreement_numbers(lay, params)
    origin_fn = f"{__name__}.{claims_numbers.__qualname__}"
    return {k: Macro(v, origin_fn, s) for k, (v, s) in n.items()}


def per_model_claims(params: Params, lay: Layout, df: pd.DataFrame, comp: pd.DataFrame, rec: pd.DataFrame,
                     fleet: pd.DataFrame | None) -> dict[str, dict[str, Macro]]:
    """Every base model's claims, for ``\\claim{<model>}{<name>}`` in the paper (the same names as the plain
    macros of the first model)."""
    origin_fn = f"{__name__}.{model_claims.__qualname__}"
    return {m: {k: Macro(v, origin_fn, s) for k, (v, s) in model_claims(params, lay, df, comp, rec, fleet, m).items()}
            for m in params.models}


def model_claims(params: Params, lay: Layout, df: pd.DataFrame, comp: pd.DataFrame, rec: pd.DataFrame,
                 fleet: pd.DataFrame | None, base: str) -> dict[str, tuple]:
    """The claims of one base model, from its own variants and their comparisons only (each against that model's
    reference or its base at the same type): value and source per name."""
    df = df[df["base"] == base]
    comp = comp[comp["variant"].isin(df["variant"])]
    rec = rec[rec["base"] == base] if len(rec) else rec
    fleet = fleet[fleet["variant"].isin(df["variant"])] if fleet is not None else None
    rel = lambda p: p.relative_to(lay.root).as_posix()
    res, cmp_, recf = rel(lay.results_table), rel(lay.comparisons_table), rel(lay.recovery_table)
    res, cmp_, recf = (f"{x} ({base})" for x in (res, cmp_, recf))
    f = fmt_grouped
    ref_name = variant_name(base, params.evaluate.kl_base)
    rows = df.set_index("variant")
    ref = rows.loc[ref_name]
    n: dict[str, tuple] = {}

    # ---- generalization accuracy
    acc = comp[comp["metric"] == ACC]
    quant = acc[acc["variant"].isin(df.loc[df["recipe"] == "", "variant"])]
    pruned = acc[~acc["variant"].isin(df.loc[df["recipe"] == "", "variant"])]
    src = f"{cmp_}: metric gen_acc"
    n |= {"accN": (len(acc), f"{src} (count)"),
          "accBetter": (int((acc["significant"] & (acc["direction"] == "better")).sum()), f"{src}, significant better"),
          "accWorse": (int((acc["significant"] & (acc["direction"] == "worse")).sum()), f"{src}, significant worse"),
          "accVerdict": (improvement_verdict(int((acc["significant"] & (acc["direction"] == "better")).sum())),
                         f"{src}: improved if any significant better (claims.improvement_verdict)"),
          "accBelowMde": (int((~acc["detectable"]).sum()), f"{src}, |delta| < mde (count)"),
          "accQuantN": (len(quant), f"{src}, base-model types (count)"),
          "accQuantSig": (int(quant["significant"].sum()), f"{src}, base-model types, significant (count)"),
          "accQuantBelowMde": (int((~quant["detectable"]).sum()), f"{src}, base-model types, below mde (count)"),
          "accQuantDeltaMin": (signed(quant["delta"].min()), f"{src}, base-model types: delta (smallest)"),
          "accQuantDeltaMax": (signed(quant["delta"].max()), f"{src}, base-model types: delta (largest)"),
          "accQuantMdeMax": (f(quant["mde"].max(), 3) if len(quant) else "--", f"{src}, base-model types: mde (max)"),
          "accPrunedN": (len(pruned), f"{src}, compressed (count)"),
          "accPrunedWorse": (int((pruned["significant"] & (pruned["direction"] == "worse")).sum()),
                             f"{src}, compressed, significant worse (count)"),
          "accPrunedDeltaMin": (signed(pruned["delta"].min()), f"{src}, compressed: delta (most negative)"),
          "accPrunedDeltaMax": (signed(pruned["delta"].max()), f"{src}, compressed: delta (largest)")}

    # ---- hallucination (main tier)
    # a metric whose task the reference does not score above chance carries no claim (the task screen)
    hal = comp[comp["metric"].isin(HALLUCINATION) & comp["carries_claim"].astype(bool)]
    sig = hal[hal["significant"].astype(bool)]
    src = f"{cmp_}: hallucination metrics ({', '.join(HALLUCINATION)})"
    n |= {"halN": (len(hal), f"{src} (count)"), "halSig": (len(sig), f"{src}, significant (count)"),
          "halBetter": (int((sig["direction"] == "better").sum()), f"{src}, significant better (count)"),
          "halWorse": (int((sig["direction"] == "worse").sum()), f"{src}, significant worse (count)"),
          "halVerdict": (improvement_verdict(int((sig["direction"] == "better").sum())),
                         f"{src}: improved if any significant better (claims.improvement_verdict)"),
          "halBelowMde": (int((~hal["detectable"]).sum()), f"{src}, below mde (count)"),
          "halMdeMin": (f(hal.loc[hal["metric"] == "halluc_mc1", "mde"].min(), 3), f"{src}: mde of halluc_mc1 (min)"),
          "halMdeMax": (f(hal.loc[hal["metric"] == "halluc_mc1", "mde"].max(), 3), f"{src}: mde of halluc_mc1 (max)"),
          "halSigList": ("; ".join(f"{tex_escape(r['label'].replace('Hallucination: ', ''))}, "
                                   f"{tex_escape(short_name(r['variant'], base))} "
                                   f"({signed(r['delta'])}, MDE {r['mde']:.3f})" for _, r in sig.iterrows()) or "none",
                         f"{src}: significant rows")}

    # ---- resources: storage, speed, prompt processing on this host
    bq = df[(df["recipe"] == "") & (df["variant"] != ref_name)]
    # faster or slower than the reference beyond the noise of llama-bench's repetitions (analysis.faster_beyond_noise)
    def beyond(col: str, faster: bool) -> pd.DataFrame:
        return bq[pd.Series([faster_beyond_noise(*((q, ref) if faster else (ref, q)), col) for _, q in bq.iterrows()],
                            index=bq.index, dtype=bool)]

    pp_slower, pp_faster = beyond("pp_ts", False), beyond("pp_ts", True)
    tg_slower, tg_faster = beyond("tg_ts", False), beyond("tg_ts", True)
    ttft_slower = bq[bq["ttft_ms"] > ref["ttft_ms"]]
    src = f"{res}: base-model types vs {ref_name}"
    rule = "more than half faster / slower beyond 2 standard errors (analysis.speed_verdict)"
    n |= {"nQuantBase": (len(bq), f"{src} (count)"),
          "nPpSlower": (len(pp_slower), f"{src}: pp_ts below the reference's beyond noise (count)"),
          "nPpFaster": (len(pp_faster), f"{src}: pp_ts above the reference's beyond noise (count)"),
          "nTgFaster": (len(tg_faster), f"{src}: tg_ts above the reference's beyond noise (count)"),
          "ppVerdict": (speed_verdict(len(pp_faster), len(pp_slower), len(bq)), f"{src}: pp_ts, {rule}"),
          "tgVerdict": (speed_verdict(len(tg_faster), len(tg_slower), len(bq)), f"{src}: tg_ts, {rule}"),
          "nTtftSlower": (len(ttft_slower), f"{src}: ttft_ms above the reference's (count)"),
          "ppRatioMin": (f((bq["pp_ts"] / ref["pp_ts"]).min(), 2), f"{src}: pp_ts / reference (min)"),
          "ppRatioMax": (f((bq["pp_ts"] / ref["pp_ts"]).max(), 2), f"{src}: pp_ts / reference (max)"),
          "tgRatioMin": (f((bq["tg_ts"] / ref["tg_ts"]).min(), 2), f"{src}: tg_ts / reference (min)"),
          "tgRatioMax": (f((bq["tg_ts"] / ref["tg_ts"]).max(), 2), f"{src}: tg_ts / reference (max)"),
          "ppSlowList": (", ".join(tex_escape(t) for t in pp_slower["type"]) or "none", f"{src}: type where slower pp")}
    n |= noninferiority_claims(df, comp, ref, ref_name, origin_type(params, lay, base), base, res, cmp_)
    head = rows.loc[n["niVariantId"][0]] if n["niVariantId"][0] in rows.index else None
    n.pop("niVariantId")
    n["smallestSaving"] = (pct(1 - df["file_mb"].min() / ref["file_mb"]), f"{res}: 1 - min file_mb / reference")
    if fleet is not None and len(fleet):
        # energy per token = the device's power under load / generation speed: on one device and backend the
        # power cancels, and the saving is that of the calibrated speed (its band cancels too: one efficiency)
        e = fleet.pivot_table(index="device", columns="variant", values="tg_ts", aggfunc="first")
        if head is not None and head.name in e and ref_name in e:
            saving = 1 - e[ref_name] / e[head.name]
            src = f"results/devices/device_verdicts.csv: tg_ts ({ref_name} / {head.name}, per device)"
            n |= {"energySavingMin": (pct(saving.min()), src + " (min)"),
                  "energySavingMax": (pct(saving.max()), src + " (max)")}
    for k in ("energySavingMin", "energySavingMax"):
        n.setdefault(k, ("--", f"results/devices/device_verdicts.csv ({base}): no non-inferior variant's energy"))
    if head is not None:
        energy = (f", and its estimated energy per generated token is {n['energySavingMin'][0]}--"
                  f"{n['energySavingMax'][0]}\\% lower across the fleet (estimates, not measurements)"
                  if n["energySavingMin"][0] != "--" else "")
        n["niResource"] = (f"it generates {n['niTgRatio'][0]}$\\times$ as fast as the reference{energy}",
                           f"{res}: tg_ts; results/devices/device_verdicts.csv ({head.name})")
    else:
        n["niResource"] = ("so no size, speed or energy saving is claimed without a loss of accuracy",
                           f"{cmp_}: ni_verdict (no variant non-inferior)")

    # ---- the origin type (the weights' own grid) and the K-quant fallback
    origin = origin_type(params, lay, base)
    o_name = f"{base}-{origin}" if origin else None
    if o_name in rows.index:
        o = rows.loc[o_name]
        others = bq[bq["variant"] != o_name]
        src = f"{res}: {o_name}"
        n |= {"originType": (tex_escape(origin), f"results/models/{base}.json: file"),
              "originKld": (f(o["kld"], 4), src + ": kld"), "originTop": (pct(o["same_top_p"], 1), src + ": same_top_p"),
              "originPpl": (f(o["ppl"], 2), src + ": ppl"),
              "otherKldMin": (f(others["kld"].min(), 4), f"{res}: kld of the other base types (min)"),
              "otherKldMinType": (tex_escape(others.loc[others["kld"].idxmin(), "type"]),
                                  f"{res}: type with the smallest kld besides the origin")}
    else:
        n |= {k: ("--", f"results/models/{base}.json: no origin type") for k in
              ("originType", "originKld", "originTop", "originPpl", "otherKldMin", "otherKldMinType")}
    for key, qtype in (("QtwoK", "Q2_K"), ("QthreeKM", "Q3_K_M"), ("QfourKM", "Q4_K_M")):
        name = f"{base}-{qtype}"
        if name in rows.index:
            r = rows.loc[name]
            mix = type_mix(r["tensor_types"])
            # the largest share in a type that is not a K-quant: what the K-type name falls back to
            main_t, main_s = next(((t, s) for t, s in mix if not t.endswith("_K") and t not in ("F32", "F16")),
                                  ("--", float("nan")))
            n |= {f"base{key}Bpw": (f(r["bpw"], 2), f"{res}: bpw ({name})"),
                  f"base{key}Eligible": (pct(r["kquant_eligible_share"]), f"{res}: kquant_eligible_share ({name})"),
                  f"base{key}Fallback": (tex_escape(main_t), f"{res}: tensor_types ({name}), largest non-K type"),
                  f"base{key}FallbackShare": (pct(main_s), f"{res}: tensor_types ({name}), its share")}
        lad = df[df["ladder"] & (df["type"] == qtype)]
        if len(lad):
            r = lad.iloc[0]
            n |= {f"aligned{key}Bpw": (f(r["bpw"], 2), f"{res}: bpw ({r['variant']})"),
                  f"aligned{key}Eligible": (pct(r["kquant_eligible_share"]), f"{res}: kquant_eligible_share "
                                                                              f"({r['variant']})")}
        # the paper cites these whether or not the study has the type: a dash, never an undefined macro
        for k in ("Bpw", "Eligible", "Fallback", "FallbackShare"):
            n.setdefault(f"base{key}{k}", ("--", f"{res}: no {name} in the study"))
        for k in ("Bpw", "Eligible"):
            n.setdefault(f"aligned{key}{k}", ("--", f"{res}: no {qtype} on compress.ladder"))

    # ---- the mildest point of each pruning method against the reference and the base at the same type
    mild = []
    margin = params.report.mild_ppl_margin
    pruning = df[(df["recipe"] != "") & ~df["method"].str.endswith("GGUF type") & ~df["method"].str.contains("x tokens")]
    for method, sub in pruning.groupby("method"):
        r = sub.loc[sub["ppl"].idxmin()]
        same = df[(df["recipe"] == "") & (df["type"] == r["type"])]
        same_ppl = same["ppl"].iloc[0] if len(same) else float("nan")
        mild.append((method, r, r["ppl"] / ref["ppl"] - 1, r["ppl"] / same_ppl - 1))
    n |= {"mildList": ("; ".join(f"{tex_escape(m)}: {tex_escape(r['point'])}, perplexity {pct(a)}\\% above the reference "
                                 f"({pct(b)}\\% above {tex_escape(r['type'])})" for m, r, a, b in mild) or "none",
                       f"{res}: ppl of the lowest-perplexity point of each method / reference and / base at its type"),
          # the compression's own cost: against the base model at the same type (the type adds its own cost)
          "mildWithinTen": (sum(b <= margin for _, _, _, b in mild),
                            f"{res}: methods whose mildest point is within report.mild_ppl_margin of the base model's "
                            "perplexity at its type (count)"),
          "mildMargin": (pct(margin), "params.yaml: report.mild_ppl_margin"),
          "nMethods": (len(mild), f"{res}: pruning methods (count)")}

    # ---- the distillation budget: the same student at the default budget and at a larger one
    if len(rec):
        bud = rec.sort_values("distill_tokens")
        pairs = [(a, b) for _, a in bud.iterrows() for _, b in bud.iterrows()
                 if a["distill_tokens"] < b["distill_tokens"]
                 and params.compress.recipes[a["recipe"]].prune == params.compress.recipes[b["recipe"]].prune]
        if pairs:
            a, b = pairs[0]
            src = f"{recf}: {a['variant']} and {b['variant']}"
            ra, rb = rows.loc[a["variant"]], rows.loc[b["variant"]]
            n |= {"kdLowTokens": (f(a["distill_tokens"], 0), src + ": distill_tokens"),
                  "kdHighTokens": (f(b["distill_tokens"], 0), src + ": distill_tokens"),
                  "kdLowKl": (f(a["heldout_kl_after"], 3), src + ": heldout_kl_after"),
                  "kdHighKl": (f(b["heldout_kl_after"], 3), src + ": heldout_kl_after"),
                  "kdBeforeKl": (f(a["heldout_kl_before"], 3), src + ": heldout_kl_before"),
                  "kdLowPpl": (f(ra["ppl"], 2), f"{res}: ppl ({a['variant']})"),
                  "kdHighPpl": (f(rb["ppl"], 2), f"{res}: ppl ({b['variant']})"),
                  "kdLowAcc": (f(ra["gen_acc"], 3), f"{res}: gen_acc ({a['variant']})"),
                  "kdHighAcc": (f(rb["gen_acc"], 3), f"{res}: gen_acc ({b['variant']})"),
                  "kdLowSeconds": (f(a["distill_seconds"], 0), src + ": distill_seconds"),
                  "kdHighSeconds": (f(b["distill_seconds"], 0), src + ": distill_seconds"),
                  "kdRecipe": (tex_escape(b["recipe"]), src + ": recipe")}
    for k in ("kdLowTokens", "kdHighTokens", "kdLowKl", "kdHighKl", "kdBeforeKl", "kdLowPpl", "kdHighPpl", "kdLowAcc",
              "kdHighAcc", "kdLowSeconds", "kdHighSeconds", "kdRecipe"):
        n.setdefault(k, ("--", f"{recf}: no pair of distillation budgets"))

    return n


def agreement_numbers(lay: Layout, params: Params) -> dict[str, tuple]:
    """The agreement with lm-evaluation-harness itself (the ``agreement`` stage's records, every base model,
    the ``exact`` context): refused where a record was made with other settings than the study's."""
    recs = {}
    for model in params.models:
        path = lay.lm_eval_agreement(model)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing; run `dvc repro agreement@{model}`")
        d = read_json(path)
        want = params.agreement_settings(model)
        if d.get("settings") != want:
            raise ValueError(f"{path}: made with {d.get('settings')}, the study's settings are {want}; "
                             f"run `dvc repro agreement@{model}`")
        recs[path.relative_to(lay.root).as_posix()] = d
    src = ", ".join(recs)
    runs = [d["runs"]["exact"] if "exact" in d["runs"] else next(iter(d["runs"].values())) for d in recs.values()]
    tasks = [(t, r) for run in runs for t, r in run["tasks"].items()]
    scored = [r for _, r in tasks if "same_prediction" in r]
    gen = [r for t, r in tasks if "same_completion" in r]
    same = sum(round(r["same_prediction"] * r["n"]) for r in scored)
    total = sum(r["n"] for r in scored)
    gen_same = sum(round(r["same_completion"] * r["n"]) for r in gen)
    gen_n = sum(r["n"] for r in gen)
    d0 = next(iter(recs.values()))
    return {"agreeTasks": (len({t for t, _ in tasks}), f"{src}: runs.exact.tasks (count)"),
            "agreeItems": (total, f"{src}: n of the scored tasks (sum)"),
            "agreeSame": (same, f"{src}: same_prediction x n (sum)"),
            "agreeMaxDll": (f"{max(r['max_abs_dll'] for r in scored):.1e}", f"{src}: max_abs_dll (max over tasks)"),
            "agreeGenSame": (pct(gen_same / gen_n) if gen_n else "--", f"{src}: truthfulqa_gen same_completion"),
            "agreeGenMax": (d0["max_new_tokens"], f"{src}: max_new_tokens"),
            "agreeModels": (len(recs), f"{src}: base models (count)"),
            "agreeSetup": (tex_escape(f"lm-eval {d0['versions'].get('lm-eval')}, {d0['lm_eval']}"),
                           f"{src}: versions.lm-eval, lm_eval")}
