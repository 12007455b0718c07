"""The paper's verdict words come from the results by the rules its text states; synthetic results flip each."""

from __future__ import annotations

import pandas as pd

from edgellm.report.claims import improvement_verdict
from edgellm.report.devices import accessibility_verdict


def test_improvement_verdict_flips_with_one_significantly_better_variant():
    assert improvement_verdict(0) == "not improved"
    assert improvement_verdict(1) == "improved"


def test_accessibility_verdict_compares_the_best_other_variant_with_the_reference():
    ref = "m-F16"
    shares = lambda **kw: pd.Series({ref: 0.6, **kw})
    assert accessibility_verdict(shares(a=0.8, b=0.4), ref) == "widened"
    assert accessibility_verdict(shares(a=0.6, b=0.4), ref) == "unchanged"
    assert accessibility_verdict(shares(a=0.4, b=0.2), ref) == "narrowed"


def test_the_papers_accessibility_rule_names_each_word_the_verdict_can_take():
    from pathlib import Path

    from edgellm.report.devices import accessibility_rule

    ref = "m-F16"
    words = {accessibility_verdict(pd.Series({ref: 0.6, "a": a}), ref) for a in (0.8, 0.4, 0.6)}
    assert len(words) == 3 and all(f"``{w}''" in accessibility_rule() for w in words)
    main = (Path(__file__).resolve().parents[2] / "paper" / "main.tex").read_text()
    assert r"\accessRule" in main and not any(f'"{w}"' in main or f"``{w}''" in main for w in words)


def test_noninferiority_verdict_and_headline_flip_with_the_tests():
    """Synthetic comparisons: the verdict follows the Holm-adjusted one-sided tests, and the headline is the
    smallest file non-inferior on every margin metric, never the reference and never the origin type."""
    from edgellm.report.claims import noninferiority_claims
    from edgellm.report.noninferiority import MARGINS, ni_verdict

    row = lambda ni, inf: pd.Series({"ni_p_holm": ni, "inferior_p_holm": inf})
    assert ni_verdict(row(0.01, 0.9), 0.05) == "non-inferior"
    assert ni_verdict(row(0.9, 0.01), 0.05) == "inferior"
    assert ni_verdict(row(0.2, 0.3), 0.05) == "inconclusive"
    assert ni_verdict(row(float("nan"), float("nan")), 0.05) is None

    sizes = {"m-F16": 100.0, "m-Q8_0": 60.0, "m-Q4_1": 30.0, "m-Q2_K": 20.0}
    df = pd.DataFrame([{"variant": v, "file_mb": mb, "tg_ts": 1000 / mb, "recipe": ""} for v, mb in sizes.items()])
    ref = df.set_index("variant").loc["m-F16"]

    def comp(verdicts: dict[str, str], delta: float = -0.01) -> pd.DataFrame:
        return pd.DataFrame([{"variant": v, "reference": "m-F16", "metric": m, "ni_verdict": verdicts[v], "delta": delta,
                              "ni_delta": delta, "ni_lower": delta - 0.005, "carries_claim": True}
                             for v in verdicts for m in MARGINS])

    claims = lambda c: noninferiority_claims(df, c, ref, "m-F16", "Q4_1", "m", "results.csv", "comparisons.csv")
    # Q4_1 (the origin) is the smallest non-inferior file, but the headline is the next one
    n = claims(comp({"m-Q8_0": "non-inferior", "m-Q4_1": "non-inferior", "m-Q2_K": "inferior"}))
    assert n["niVariantId"][0] == "m-Q8_0" and "smallest variant shown non-inferior" in n["niHeadline"][0]
    assert n["originNiVerdict"][0] == "non-inferior" and (n["niAccNonInferior"][0], n["niAccInferior"][0]) == (2, 1)
    # Q2_K flips to non-inferior: it is the headline
    assert claims(comp({"m-Q8_0": "non-inferior", "m-Q4_1": "inconclusive", "m-Q2_K": "non-inferior"})
                  )["niVariantId"][0] == "m-Q2_K"
    # a compressed variant (tested against the base at its type) is never the headline, however small
    c = comp({"m-Q8_0": "non-inferior", "m-Q4_1": "inconclusive", "m-Q2_K": "non-inferior"})
    c.loc[c["variant"] == "m-Q2_K", "reference"] = "m-Q4_1"
    assert claims(c)["niVariantId"][0] == "m-Q8_0"
    # none but the origin: the headline says so
    n = claims(comp({"m-Q8_0": "inconclusive", "m-Q4_1": "non-inferior", "m-Q2_K": "inferior"}))
    assert n["niVariantId"][0] == "" and n["niHeadline"][0].startswith("no variant other than the origin")
    n = claims(comp({"m-Q8_0": "inconclusive", "m-Q4_1": "inconclusive", "m-Q2_K": "inferior"}))
    assert n["niHeadline"][0] == "no variant is shown non-inferior"
    # every type has a negative difference: 2 of 2 (the origin excluded)
    assert (n["ladderNeg"][0], n["ladderNonzero"][0]) == (2, 2)


def test_a_hallucination_metric_not_above_chance_carries_no_claim():
    """The task screen tests MC1 and MC2 against chance; a metric whose task is not shown above chance is marked,
    and the hallucination verdict, which counts only metrics that carry a claim, flips with it."""
    from edgellm.report.results import mark_claims
    from edgellm.report.screen import metrics_at_chance

    screen = pd.DataFrame([{"model": "m", "task": "truthfulqa_mc1", "role": "hallucination", "above_chance": True},
                           {"model": "m", "task": "truthfulqa_mc2", "role": "hallucination", "above_chance": False},
                           {"model": "m", "task": "piqa", "role": "generalization", "above_chance": False}])
    assert metrics_at_chance(screen) == {"m": {"mc2"}}
    comp = pd.DataFrame([{"family": "m/mc2", "metric": "mc2", "significant": True, "direction": "better"},
                         {"family": "m/halluc_mc1", "metric": "halluc_mc1", "significant": False, "direction": "worse"}])
    marked = mark_claims(comp, metrics_at_chance(screen))
    assert list(marked["carries_claim"]) == [False, True]
    better = lambda c: int((c["significant"] & (c["direction"] == "better")).sum())
    assert improvement_verdict(better(comp)) == "improved"
    assert improvement_verdict(better(marked[marked["carries_claim"]])) == "not improved"
    screen.loc[1, "above_chance"] = True
    assert mark_claims(comp, metrics_at_chance(screen))["carries_claim"].all()
