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
