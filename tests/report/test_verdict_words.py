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
