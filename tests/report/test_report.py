"""The report built from copies of the committed records: tables, figures, numbers, and the analyses."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from edgellm.report import build as build_mod
from edgellm.report.analysis import pareto_front, recovery
from edgellm.report.latex import Tex, latex_table, tex_escape
from edgellm.report.paper import VALUE_COLUMNS

ROOT = Path(__file__).resolve().parents[2]
@pytest.fixture(scope="module")
def built(study):
    params, lay = study
    return params, lay, build_mod.build(params, lay)


def _committed(path: str) -> str:
    """The repository's own copy of a report output (what the last `dvc repro` wrote and git holds)."""
    return (ROOT / path).read_text()


def test_the_report_reproduces_the_committed_tables(built):
    """From the committed records and per-item scores alone, the report rebuilds what the last `dvc repro`
    committed, byte for byte: the tidy tables, the paired comparisons and every LaTeX table of the paper."""
    params, lay, out = built
    assert out["rows"] == len(params.variants())
    for path in (lay.results_table, lay.speed_table, lay.recovery_table, lay.artifacts_table, lay.comparisons_table,
                 lay.task_screen_table, *sorted(lay.tables.glob("*.tex"))):
        assert path.read_text() == _committed(path.relative_to(lay.root).as_posix()), path.name


def test_every_figure_exists_and_has_its_function(built):
    """The variants' figures once per base model (figures/<model>/), the fleet's once."""
    params, lay, out = built
    assert {Path(p).stem for p in out["figures"]} == set(build_mod.FIGURES)
    assert set(build_mod.PER_MODEL) < set(build_mod.FIGURES)
    for stem, fn in build_mod.FIGURES.items():
        assert fn.__name__ == stem
        dirs = [lay.figures / m for m in params.models] if stem in build_mod.PER_MODEL else [lay.figures]
        for d in dirs:
            png, pdf = d / f"{stem}.png", d / f"{stem}.pdf"
            assert str(png.relative_to(lay.root)) in out["figures"]
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000
            assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 1000


def test_tables_escape_underscores(built):
    _, lay, out = built
    assert {Path(p).stem for p in out["tables"] if "tables/" in p} == set(build_mod.TABLES)
    for name in ("quality", "resources", "compression", "hallucination", "accessibility", "bundles"):
        text = (lay.tables / f"{name}.tex").read_text()
        body = [ln for ln in text.splitlines() if ln.endswith(r"\\")]
        assert body and all(not re.search(r"(?<!\\)_", ln) for ln in body), name
        assert r"Q4\_K\_M" in text


def test_every_macro_is_defined_and_traced(built):
    _, lay, _ = built
    text = (lay.generated / "numbers.tex").read_text()
    macros = re.findall(r"^\\newcommand\{\\([A-Za-z]+)\}\{.*\} % (edgellm\.report\.[a-z_.]+) <- (.+)$", text, re.MULTILINE)
    defined = re.findall(r"^\\newcommand\{\\([A-Za-z]+)\}", text, re.MULTILINE)
    assert len(macros) == len(defined) - 5 > 40  # \val, \cfg, \quoted, \claim and \range carry no value themselves
    for name, origin, source in macros:
        assert origin in ("edgellm.report.paper.study_numbers", "edgellm.report.paper.power_numbers",
                          "edgellm.report.devices.device_numbers", "edgellm.report.claims.claims_numbers",
                          "edgellm.report.replication.replication_numbers",
                          "edgellm.report.context.context_numbers", "edgellm.report.kv_tables.kv_numbers"), name
        assert source.strip()
    assert ("recShareMin", "edgellm.report.paper.study_numbers", "results/recovery.csv: kl_recovered_share (min)") in macros
    # every macro the paper uses is defined
    used = set(re.findall(r"\\([A-Za-z]+)", (ROOT / "paper" / "main.tex").read_text()))
    claims = {n for n, o, _ in macros if o == "edgellm.report.claims.claims_numbers"}
    assert {"originKld", "baseQtwoKFallbackShare", "niHeadline", "nPpSlower", "agreeSame", "kdHighKl"} <= claims & used
    vals = re.findall(r"^\\@namedef\{edgellm@([^@]+)@([a-zA-Z_]+)\}\{[^}]*\} % (edgellm\.report\.results\.\w+)"
                      r"[^<]* <- results/results\.csv: (\w+)", text, re.MULTILINE)
    assert vals and all(col == src for _, col, _, src in vals)
    assert {fn for _, _, fn, _ in vals} == {"edgellm.report.results.variant_row", "edgellm.report.results.collect",
                                            "edgellm.report.results.add_speed"}
    assert {c for _, c, _, _ in vals} <= set(VALUE_COLUMNS)
    used = set(re.findall(r"\\([A-Za-z]+)", (ROOT / "paper" / "main.tex").read_text()))
    assert {n for n, _, _ in macros} & used


def test_claims_are_computed_per_base_model(built):
    """Every base model has the same claims, \\claim{<model>}{<name>}, each traced to the function that computed
    it from that model's variants alone; the first model's are the plain macros the text quotes."""
    params, lay, _ = built
    text = (lay.generated / "numbers.tex").read_text()
    plain = dict(re.findall(r"^\\newcommand\{\\([A-Za-z]+)\}\{(.*)\} % edgellm\.report\.claims\.claims_numbers <- ",
                            text, re.MULTILINE))
    per: dict[str, dict[str, str]] = {}
    for m, k, v, src in re.findall(r"^\\@namedef\{edgellm@claim@([^@]+)@([A-Za-z]+)\}\{(.*)\} "
                                   r"% edgellm\.report\.claims\.model_claims <- (.+)$", text, re.MULTILINE):
        per.setdefault(m, {})[k] = v
        assert m in src or src.startswith("params.yaml"), (m, k, src)  # the model's own results
    assert list(per) == list(params.models)
    first = per[next(iter(params.models))]
    assert len(first) > 40 and all(plain[k] == v for k, v in first.items())
    assert all(set(d) == set(first) for d in per.values())
    tex = (ROOT / "paper" / "main.tex").read_text()
    used = set(re.findall(r"\\claim\{([^}]+)\}\{([A-Za-z]+)\}", tex))
    # and through a shorthand the paper defines for one model: \newcommand{\gem}[1]{\claim{<model>}{#1}}
    for short, model in re.findall(r"\\newcommand\{\\([A-Za-z]+)\}\[1\]\{\\claim\{([^}]+)\}\{#1\}\}", tex):
        used |= {(model, k) for k in re.findall(rf"\\{short}\{{([A-Za-z]+)\}}", tex)}
    assert used and all(k in per[m] for m, k in used), sorted((m, k) for m, k in used if k not in per.get(m, {}))


def test_power_columns_and_holm_families(built):
    """Every headline comparison has n, chance (where guessing means something), MDE and a Holm-adjusted p
    within its family (one base model, one metric); significance is the adjusted p's, and the task screen decides the headline."""
    params, lay, _ = built
    comp = pd.read_csv(lay.comparisons_table)
    assert len(comp) and comp[["n", "mde", "p", "p_holm"]].notna().all().all()
    assert (comp["p_holm"] >= comp["p"] - 1e-12).all()
    assert (comp["significant"] == (comp["p_holm"] < params.report.alpha)).all()
    # a family per base model and metric: the reference names the model
    assert (comp["family"] == comp["reference"].str.rsplit("-", n=1).str[0] + "/" + comp["metric"]).all()
    for _, g in comp.groupby("family"):  # Holm: the smallest p is multiplied by the family's size
        i = g["p"].idxmin()
        assert g.loc[i, "p_holm"] == pytest.approx(min(1.0, g.loc[i, "p"] * len(g)), rel=1e-4)  # CSV: 6 digits
    gen = comp[comp["metric"] == "gen_acc"]
    assert gen["chance"].notna().all() and (gen["chance"] < 0.6).all()
    screen = pd.read_csv(lay.task_screen_table)
    assert set(screen.loc[screen["role"] == "generalization", "task"]) == set(params.report.generalization)
    assert set(screen.loc[screen["role"] == "hallucination", "task"]) <= {"truthfulqa_mc1", "truthfulqa_mc2"}
    df = pd.read_csv(lay.results_table)
    headline = set(str(df["gen_tasks"].iloc[0]).split())
    assert headline == set(screen.loc[screen["in_headline"], "task"])
    assert all(screen.loc[screen["task"].isin(headline), "p_holm"] < params.report.alpha)


def test_pareto_front_is_non_dominated():
    df = pd.DataFrame({"size": [1, 2, 3, 4, 5, 2.5], "acc": [0.1, 0.5, 0.4, 0.7, 0.6, 0.5]})
    front = pareto_front(df, "size", "acc", True)
    assert front["size"].tolist() == [1, 2, 4]
    for _, r in front.iterrows():
        assert not ((df["size"] <= r["size"]) & (df["acc"] > r["acc"])).any()
    low = pareto_front(df.assign(acc=-df["acc"]), "size", "acc", False)
    assert low["size"].tolist() == [1, 2, 4]


def test_recovery_share(study):
    params, _ = study
    kd = next(n for n, s in params.compress.recipes.items() if s.distill is not None and s.prune is not None)
    qtype = params.compress.types[0]
    rows = [{"variant": "b", "model": "m", "base": "m", "recipe": "", "type": qtype, "ppl": 20.0, "gen_acc": 0.5,
             "kld": 0.0, "method": "GGUF type", "heldout_kl_before": None, "heldout_kl": None},
            {"variant": "k", "model": "m-k", "base": "m", "recipe": kd, "type": qtype, "ppl": 24.0, "gen_acc": 0.45,
             "kld": 0.2, "method": "depth + KD", "heldout_kl_before": 1.25, "heldout_kl": 0.5}]
    df = pd.DataFrame(rows).assign(distill_tokens=4096, distill_seconds=60.0)
    r = recovery(df, params).iloc[0]
    assert r["variant"] == "k" and r["base_variant"] == "b" and r["ppl_base"] == 20.0
    assert r["kl_recovered_share"] == pytest.approx(1 - 0.5 / 1.25)
    assert r["heldout_kl_before"] == 1.25 and r["heldout_kl_after"] == 0.5


def test_frontier_items_are_paired_with_the_references_by_index():
    from edgellm.report.results import paired

    ref = {"piqa": np.array([1.0, 0.0, 1.0, 1.0])}
    sub = {"piqa": np.array([0.0, 1.0])}
    out = paired(ref, sub, {"piqa": np.array([3, 8, 12, 40])}, {"piqa": np.array([12, 3])})
    assert out["piqa"].tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="not among the reference"):
        paired(ref, sub, {"piqa": np.array([3, 8, 12, 40])}, {"piqa": np.array([12, 99])})


def test_latex_table_escapes_plain_text_and_keeps_tex():
    t = latex_table(["Top-1 %", Tex(r"$\alpha$")], [["a_b & c", Tex(r"1 $\pm$ 2")]], "cap", "tab:x", "lr")
    assert r"Top-1 \% & $\alpha$ \\" in t
    assert r"a\_b \& c & 1 $\pm$ 2 \\" in t
    assert tex_escape("50% & {x}") == r"50\% \& \{x\}"


def test_per_model_figures_macro_stacks_every_model_in_order():
    from edgellm.report.paper import per_model_figures_tex

    tex = per_model_figures_tex(["smollm2-135m", "gemma3-270m"])
    assert tex.count(r"\newcommand{\permodel}[2]") == 1
    a, b = tex.index("{smollm2-135m/#1.pdf}"), tex.index("{gemma3-270m/#1.pdf}")
    assert a < b and tex.count(r"\includegraphics[width=#2\linewidth]") == 2
