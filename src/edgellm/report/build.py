"""The report stage's orchestration: collect the records, write the tables, figures and the paper's inputs.

:data:`FIGURES` maps every figure's file stem (``figures/<stem>.png`` and ``.pdf``)
to the function that draws it; :data:`TABLES` every table's stem
(``paper/tables/<stem>.tex``) to the function that writes its text.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..config import Params
from ..io import write_csv, write_json, write_text
from ..paths import Layout
from ..provenance import versions
from ..records import BundleRecord, CompressedModelRecord
from . import (answer_energy, claims, compression_figures, context, devices, figures, kv_tables, paper,
               projection, replication, significance, tables)
from .analysis import recovery, recovery_summary
from .latex import generated_by
from .results import (
    add_significance,
    base_note,
    collect,
    comparisons,
    mark_claims,
    metrics,
)
from .judged import corrected_hallucination, judge_audit, judge_labels
from .screen import metrics_at_chance

#: figure stem -> the function that draws it
FIGURES = {
    "quant_ladder": figures.quant_ladder,
    "speed_vs_bpw": figures.speed_vs_bpw,
    "hallucination_main": figures.hallucination_main,
    "pareto_size": compression_figures.pareto_size,
    "distillation_recovery": compression_figures.distillation_recovery,
    "quality_significance": significance.quality_significance,
    "energy_per_token": devices.energy_per_token,
    "projection_validation": devices.projection_validation,
    "accessibility_verdicts": devices.accessibility_verdicts,
    "context_memory": context.context_memory,
}
#: the figures drawn once per base model, as ``figures/<model>/<stem>`` (the others, the fleet's, once)
PER_MODEL = ("quant_ladder", "speed_vs_bpw", "hallucination_main", "pareto_size", "distillation_recovery",
             "quality_significance")
#: table stem -> the function that writes its LaTeX
TABLES = {
    "quality": tables.quality, "resources": tables.resources, "tensor_types": tables.tensor_types,
    "compression": tables.compression, "hallucination": tables.hallucination, "tasks": tables.tasks,
    "comparisons": tables.comparisons, "comparisons_generated": tables.comparisons_generated,
    "judges": tables.judges, "corrected": tables.corrected, "audit": tables.audit,
    "devices": devices.devices_table, "accessibility": devices.accessibility_table, "bundles": devices.bundles_table,
    "backends": devices.backends_table, "validation": projection.validation_table,
    "validation_sizes": projection.size_table, "context": context.context_table,
    "answer_energy": answer_energy.answer_energy_table,
    "kv_cache": kv_tables.kv_table, "depth": kv_tables.depth_table,
    "measured": devices.measured_table, "replication": replication.replication_tex,
}
#: the columns of plots/variants.csv (``dvc plots``)
PLOT_COLUMNS = ["variant", "model", "tier", "method", "kind", "type", "bpw", "file_mb", "ppl", "kld", "gen_acc", "halluc_mc1", "mc2",
                "halluc_gen_rougeL", "halluc_gen_embed", "tg_ts", "pp_ts"]


def distill_histories(params: Params, lay: Layout, model: str) -> dict[str, list[dict]]:
    """recipe -> its distillation curve, for every distilled checkpoint of ``model``."""
    return {r: CompressedModelRecord.load(lay.model_record(ck)).history for ck, (m, r) in params.checkpoints().items()
            if r and m == model and params.compress.recipes[r].distill is not None}


def variant_figures(params: Params, lay: Layout, df: pd.DataFrame, speed: pd.DataFrame, rec: pd.DataFrame,
                    comp: pd.DataFrame) -> list[Path]:
    """Every figure of the variants, drawn once per base model from its own variants only
    (``figures/<model>/<stem>``: one model's ladder, Pareto front or tests never share axes with another's).
    The fleet's figures are drawn by :func:`devices.build_devices`."""
    out: list[Path] = []
    for m in params.models:
        d, mine = lay.figures / m, df[df["base"] == m]
        names = set(mine["variant"])
        out += [*figures.quant_ladder(mine, d), *figures.speed_vs_bpw(mine, speed[speed["variant"].isin(names)], d),
                *figures.hallucination_main(mine, d), *compression_figures.pareto_size(mine, d),
                *compression_figures.distillation_recovery(rec[rec["base"] == m], distill_histories(params, lay, m), d),
                *significance.quality_significance(mine, comp[comp["variant"].isin(names)], d)]
    return out


def tool_versions(params: Params, lay: Layout) -> dict:
    """This process's tool versions, and the cross builds' the bundle stage recorded."""
    out = versions()
    for v in params.variants():
        if lay.bundle_record(v).is_file():
            out.update({k: x for k, x in BundleRecord.load(lay.bundle_record(v)).versions.items() if x})
    commit = claims.VENDORED_LLAMA_CPP.get(out.get("llama-cpp-python") or "")
    if commit:
        # the sdist's vendored tree has no .git, so llama.cpp's build says "commit unknown": name the commit
        out = {k: (x.replace("commit unknown", f"commit {commit[:9]}") if isinstance(x, str) else x)
               for k, x in out.items()}
        out["llama.cpp commit"] = f"{commit} (vendored by llama-cpp-python {out['llama-cpp-python']})"
    return out


def deployed_shares(shares: pd.DataFrame, df: pd.DataFrame) -> pd.DataFrame:
    """The fleet shares (results/devices/fleet_shares.csv) of the variants that are deployed (not frontier tier)."""
    return shares[shares["variant"].isin(df.loc[df["tier"] != "frontier", "variant"])]


def build(params: Params, lay: Layout) -> dict:
    df, speed, per_item, task_screen, chance = collect(params, lay)
    rec = recovery(df, params)
    comp = mark_claims(comparisons(params, per_item, chance), metrics_at_chance(task_screen))
    df = add_significance(df, comp)
    audit = judge_audit(params, lay)
    write_csv(df, lay.results_table)
    write_csv(task_screen, lay.task_screen_table)
    write_csv(audit, lay.audit_table)
    write_csv(speed, lay.speed_table)
    write_csv(rec, lay.recovery_table)
    write_csv(comp, lay.comparisons_table)
    summary = metrics(df)
    if len(rec):
        summary["distillation_recovery"] = recovery_summary(rec)
    write_json(lay.metrics, summary)
    write_csv(df[[c for c in PLOT_COLUMNS if c in df]], lay.variants_plot)
    note = base_note(params, lay)
    figs = variant_figures(params, lay, df, speed, rec, comp)
    tabs = tables.write_tables(df, comp, task_screen, audit, judge_labels(lay), corrected_hallucination(lay),
                               lay.tables, note, params.report)
    dev_figs, dev_tabs, dev_numbers = devices.build_devices(params, lay)
    figs += dev_figs
    tabs += dev_tabs
    fleet = pd.read_csv(lay.device_verdicts) if lay.device_verdicts.is_file() else None
    per_model = claims.per_model_claims(params, lay, df, comp, rec, fleet)
    dev_numbers |= claims.claims_numbers(params, lay, df, per_model)
    # the deployed variants' shares at the band's lower end: the rule and the data of the paper's accessibility verdict
    access = (deployed_shares(pd.read_csv(lay.verdict_shares), df) if lay.verdict_shares.is_file() else None)
    rep = replication.replication(params, df, comp, rec, access,
                                  {m: claims.origin_type(params, lay, m) for m in params.models})
    rep_csv = replication.table_path(lay)
    write_csv(rep, rep_csv)
    tabs.append(lay.tables / "replication.tex")
    write_text(tabs[-1], generated_by(replication.replication_tex, "results/replication.csv")
               + replication.replication_tex(rep))
    dev_numbers |= replication.replication_numbers(rep, rep_csv.relative_to(lay.root).as_posix())
    tabs += paper.write_paper_inputs(params, lay, df, comp, rec, task_screen, dev_numbers,
                                      tool_versions(params, lay), per_model)
    return {"rows": len(df), "figures": [str(p.relative_to(lay.root)) for p in figs],
            "tables": [str(p.relative_to(lay.root)) for p in tabs]}
