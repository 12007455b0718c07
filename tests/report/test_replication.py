"""The replication table: each finding measured on every base model by its rule, and the verdict over models.

Built from the committed results of the default study, with a second base model made from the first's rows
(its name changed) where one finding is made to fail: the verdicts must follow."""

from __future__ import annotations

import pandas as pd
import pytest

from edgellm.report import claims, replication
from edgellm.report.replication import verdict


@pytest.fixture(scope="module")
def tables(study):
    params, lay = study
    from edgellm.report.build import build, deployed_shares

    build(params, lay)
    df, comp, rec = (pd.read_csv(p) for p in (lay.results_table, lay.comparisons_table, lay.recovery_table))
    return params, lay, df, comp, rec, deployed_shares(pd.read_csv(lay.verdict_shares), df)


def _twin(params, df, comp, rec, access, break_speed: bool):
    """A second model "twin" whose rows are the first's; its Q4_K_M as slow as its reference when asked."""
    m = next(iter(params.models))
    ren = lambda s: s.replace(m, "twin")
    d2, c2, r2, a2 = (t.copy() for t in (df, comp, rec, access))
    for t, cols in ((d2, ["variant", "base", "model", "reference"]), (c2, ["variant", "reference"]),
                    (r2, ["variant", "base", "base_variant"]), (a2, ["variant"])):
        for c in cols:
            if c in t:
                t[c] = t[c].map(lambda x: ren(x) if isinstance(x, str) else x)
    if break_speed:
        ref = d2["variant"] == f"twin-{params.evaluate.kl_base}"
        d2.loc[d2["variant"] == "twin-Q4_K_M", "tg_ts"] = float(d2.loc[ref, "tg_ts"].iloc[0])
    twin_params = params.model_copy(update={"models": {**params.models, "twin": params.models[m]}})
    return twin_params, pd.concat([df, d2]), pd.concat([comp, c2]), pd.concat([rec, r2]), pd.concat([access, a2])


def test_each_finding_is_measured_on_every_model_and_the_verdicts_follow(tables):
    params, lay, df, comp, rec, access = tables
    m = next(iter(params.models))
    origin = {m: claims.origin_type(params, lay, m)}
    # the first model alone, then beside its twin
    params = params.model_copy(update={"models": {m: params.models[m]}})
    df = df[df["base"] == m]
    one = replication.replication(params, df, comp, rec, access, origin)
    assert set(one["finding"]) == {f.key for f in replication.FINDINGS} and set(one["model"]) == {m}
    held = set(one.loc[one["holds"] == True, "finding"])  # noqa: E712
    assert {"ladder_order", "origin_near_zero", "q4_speed"} <= held  # SmolLM2: a Q4_1 origin, an ordered ladder
    p2, *rest = _twin(params, df, comp, rec, access, break_speed=True)
    two = replication.replication(p2, *rest, origin | {"twin": origin[m]})
    summary = replication.replicated(two).set_index("finding")
    assert summary.loc["q4_speed", "verdict"] == "1 of 2" and summary.loc["q4_speed", "holds_in"] == m
    for key in held - {"q4_speed"}:
        assert summary.loc[key, "verdict"] == "all"
    numbers = replication.replication_numbers(two, "results/replication.csv")
    assert int(numbers["nReplicated"]) == len(held) - 1 and "(1 of 2)" in numbers["notReplicatedList"]
    assert "tab:replication" in replication.replication_tex(two)


def test_the_study_measures_every_finding_on_every_base_model(tables):
    """The default study's own table: a row per finding and base model, and the committed copy is this one."""
    params, lay, df, comp, rec, access = tables
    rep = pd.read_csv(replication.table_path(lay))
    assert len(rep) == len(replication.FINDINGS) * len(params.models) and len(params.models) >= 2
    assert set(zip(rep["finding"], rep["model"])) == {(f.key, m) for f in replication.FINDINGS for m in params.models}


def test_a_finding_not_measurable_in_a_model_does_not_replicate():
    assert verdict([True, True]) == "all" and verdict([True, None]) == "1 of 2"
    assert verdict([False, None]) == "none" and verdict([True, False, True]) == "2 of 3"
