"""The KV-cache measurements in the report: what q8_0 and q4_0 caches cost against f16, speed at context depth,
and time to first token (the ``kv_cache`` stage's ``results/kv_cache/<variant>.json``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..devices.memory import KV_TYPES
from ..io import read_json
from .latex import Macro, Tex, latex_table, tex_escape

KV_DIR = "results/kv_cache"


def load_kv_records(root: Path) -> list[dict]:
    return [read_json(p) for p in sorted((Path(root) / KV_DIR).glob("*.json"))]


def kv_quality_frame(records: list[dict]) -> pd.DataFrame:
    """One row per variant and cache type: perplexity, and against the f16 cache KL divergence, same top token and
    the RMS of the probability change."""
    rows = []
    for r in records:
        base = r["quality"][KV_TYPES[0]]["ppl"]
        for kv in [k for k in KV_TYPES if k in r["quality"]]:   # the record's keys are sorted: f16, q4_0, q8_0
            q = r["quality"][kv]
            rows.append({"variant": r["variant"], "kv_type": kv, "ppl": q["ppl"], "ppl_change": q["ppl"] / base - 1,
                         "kld": q.get("kld", 0.0), "kld_se": q.get("kld_se", 0.0),
                         "same_top_pct": q.get("same_top_pct", 100.0), "dp_rms_pct": q.get("dp_rms_pct", 0.0)})
    return pd.DataFrame(rows)


def depth_frame(records: list[dict]) -> pd.DataFrame:
    """One row per variant, cache type and depth: pp and tg tokens/s (mean, standard deviation)."""
    rows = []
    for r in records:
        for s in r["speeds"]:
            rows.append({"variant": r["variant"], **s})
    df = pd.DataFrame(rows)
    return df.pivot_table(index=["variant", "kv_type", "depth"], columns="test", values=["avg_ts", "stddev_ts"],
                          sort=False)


def kv_table(records: list[dict]) -> str:
    """Per variant and cache type: quality against f16, and speed at the deepest context measured."""
    q = kv_quality_frame(records)
    sp = depth_frame(records)
    body = []
    for r in q.itertuples():
        deep = max(d for (v, k, d) in sp.index if v == r.variant and k == r.kv_type)
        s = sp.loc[(r.variant, r.kv_type, deep)]
        body.append([r.variant, r.kv_type, f"{r.ppl:.3f}", f"{100 * r.ppl_change:+.2f}",
                     "--" if r.kv_type == KV_TYPES[0] else Tex(f"{r.kld:.5f} $\\pm$ {r.kld_se:.5f}"),
                     "--" if r.kv_type == KV_TYPES[0] else f"{r.same_top_pct:.2f}",
                     f"{s[('avg_ts', 'pp')]:.0f} $\\pm$ {s[('stddev_ts', 'pp')]:.0f}",
                     f"{s[('avg_ts', 'tg')]:.1f} $\\pm$ {s[('stddev_ts', 'tg')]:.1f}"])
    n_ctx, chunks = records[0]["n_ctx"], records[0]["chunks"]
    return latex_table(
        ["Variant", "KV cache", "PPL", "PPL change %", "KL to f16", "Same top %", "pp t/s", "tg t/s"],
        [[c if isinstance(c, Tex) else (Tex(c) if "$" in str(c) else c) for c in row] for row in body],
        f"What a quantized KV cache costs, measured with llama.cpp's own tools on this host: llama-perplexity on the "
        f"same WikiText-2 tokens ({chunks} chunks of {n_ctx:,}, flash attention), each quantized cache against the "
        f"file's own f16 cache (KL divergence with its standard error, share of tokens with the same most probable "
        f"next token); speed: llama-bench's pp and tg after {max(d for (_, _, d) in sp.index):,} tokens in the cache "
        f"(mean $\\pm$ standard deviation of its repetitions).",
        "tab:kv-cache", "llrrrrrr")


def depth_table(records: list[dict]) -> str:
    """Speed of the f16 cache at every depth, and the time to first token."""
    sp = depth_frame(records)
    body = []
    for r in records:
        v = r["variant"]
        depths = sorted(d for (vv, k, d) in sp.index if vv == v and k == KV_TYPES[0])
        cells = [f"{sp.loc[(v, KV_TYPES[0], d)][('avg_ts', t)]:.0f}" if t == "pp" else
                 f"{sp.loc[(v, KV_TYPES[0], d)][('avg_ts', t)]:.1f}" for d in depths for t in ("pp", "tg")]
        body.append([v, *cells, f"{1e3 * r['ttft_s']:.0f}"])
    depths = sorted({d for (_, k, d) in sp.index if k == KV_TYPES[0]})
    return latex_table(
        ["Variant", *[Tex(f"{t} @{d:,}") for d in depths for t in ("pp", "tg")],
         Tex(f"TTFT ms ({records[0]['ttft_prompt']} tok.)")], body,
        "Speed at context depth on this host (llama-bench \\texttt{-d}: tokens already in the f16 cache, tokens/s), "
        "and "
        "the time to first token of a prompt at depth 0 (the prompt at pp speed, then one token).",
        "tab:depth", "l" + "r" * (2 * len(depths) + 1))


def kv_numbers(records: list[dict]) -> dict[str, Macro]:
    """The paper's numbers about the caches: the largest KL divergence and perplexity change of each quantized
    type over the measured variants, and the range of tg lost at the deepest context."""
    q = kv_quality_frame(records)
    sp = depth_frame(records)
    out = {}
    names = {KV_TYPES[1]: "Eight", KV_TYPES[2]: "Four"}
    for kv, word in names.items():
        g = q[q.kv_type == kv]
        out[f"kvKld{word}Max"] = (f"{g.kld.max():.4f}", f"{KV_DIR}/*.json: quality.{kv}.kld (max)")
        out[f"kvPpl{word}Max"] = (f"{100 * g.ppl_change.max():.2f}", f"{KV_DIR}/*.json: quality.{kv}.ppl / f16 - 1 "
                                                                      "(max, %)")
        out[f"kvTop{word}Min"] = (f"{g.same_top_pct.min():.1f}", f"{KV_DIR}/*.json: quality.{kv}.same_top_pct (min)")
    ratios, quantized = {"tg": [], "pp": []}, []
    for r in records:
        depths = sorted(d for (v, k, d) in sp.index if v == r["variant"] and k == KV_TYPES[0])
        for test, got in ratios.items():
            at = [sp.loc[(r["variant"], KV_TYPES[0], d)][("avg_ts", test)] for d in (depths[0], depths[-1])]
            got.append(at[1] / at[0])
        pp = [sp.loc[(r["variant"], kv, depths[-1])][("avg_ts", "pp")] for kv in KV_TYPES]
        quantized.append(pp[-1] / pp[0])
    for test, word in (("tg", "Tg"), ("pp", "Pp")):
        for how, f in (("Min", min), ("Max", max)):
            out[f"depth{word}Ratio{how}"] = (f"{f(ratios[test]):.2f}", f"{KV_DIR}/*.json: {test} at the deepest "
                                             f"depth / at depth 0, f16 cache ({how.lower()})")
    out["kvPpRatioMax"] = (f"{max(quantized):.2f}", f"{KV_DIR}/*.json: pp of the {KV_TYPES[-1]} cache / of "
                                                        f"the f16 cache at the deepest depth (max)")
    out["kvVariants"] = (tex_escape(", ".join(r["variant"] for r in records)), f"{KV_DIR}/*.json: variant")
    origin = f"{__name__}.{kv_numbers.__qualname__}"
    return {k: Macro(v, origin, src) for k, (v, src) in out.items()}
