"""Energy per truthful answer (``edgellm.report.answer_energy``) on the committed verdicts, answers and judge."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from edgellm.io import read_json
from edgellm.paths import Layout, project_root
from edgellm.report.answer_energy import answer_energy, answer_energy_table, tokens_per_answer
from edgellm.report.devices import priced_answers

LAY = Layout(project_root())
BEST = pd.read_csv(LAY.device_verdicts)


def test_an_answer_costs_its_prompt_and_its_tokens_at_the_devices_speeds():
    df = priced_answers(BEST, LAY)
    assert len(df) and set(df.variant) <= set(BEST.variant)
    r = df.iloc[0]
    v = BEST[(BEST.variant == r.variant) & (BEST.device == r.device)].iloc[0]
    items = read_json(LAY.items(r.variant))["truthfulqa_gen"]
    prompt = np.mean([i["prompt_tokens"] for i in items])
    gen = np.mean([len(i["tokens"]) for i in items])
    assert (r.prompt_tokens, r.generated_tokens) == (pytest.approx(prompt), pytest.approx(gen))
    watts = math.sqrt(v.power_w_low * v.power_w_high)
    assert r.j_per_answer == pytest.approx(watts * (prompt / v.pp_ts + gen / v.tg_ts))
    c = read_json(LAY.judged)["corrected"][r.variant]["truthfulqa_gen"]
    assert r.truthful == pytest.approx(1 - c["corrected"])
    assert r.j_per_correct == pytest.approx(r.j_per_answer / r.truthful)
    # every band holds its point, and the estimate label follows the power's source
    assert (df.j_per_correct_low <= df.j_per_correct).all() and (df.j_per_correct <= df.j_per_correct_high).all()
    assert (df.estimate == df.power_source.str.startswith("estimated")).all()


def test_fewer_truthful_answers_cost_more_per_correct_one():
    best = BEST.head(1)
    v = best.variant.iloc[0]
    tokens = {v: (100.0, 20.0)}
    good = answer_energy(best, tokens, {v: (0.5, 0.4, 0.6)})
    bad = answer_energy(best, tokens, {v: (0.25, 0.2, 0.3)})
    assert bad.j_per_correct.iloc[0] == pytest.approx(2 * good.j_per_correct.iloc[0])
    # a truthful rate whose interval reaches 0 has no upper bound, and the table says so
    none = answer_energy(best, tokens, {v: (0.1, 0.0, 0.3)})
    assert math.isinf(none.j_per_correct_high.iloc[0]) and "--)" in answer_energy_table(none)


def test_tokens_per_answer_reads_the_items():
    items = {"truthfulqa_gen": [{"prompt_tokens": 10, "tokens": [1, 2]}, {"prompt_tokens": 20, "tokens": [1, 2, 3, 4]}]}
    assert tokens_per_answer(items) == (15.0, 3.0)
