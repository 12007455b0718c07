"""Every committed stage record parses into its typed class and dumps back to the identical JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgellm.records import (
    BundleRecord,
    CompressedModelRecord,
    EvalRecord,
    FleetSummary,
    GgufRecord,
    ProfileRecord,
    RecordMissing,
    load_model_record,
)

RESULTS = Path(__file__).resolve().parents[2] / "results"
KINDS = {"gguf": GgufRecord, "eval": EvalRecord, "profile": ProfileRecord, "bundles": BundleRecord}
CASES = [(cls, p) for d, cls in KINDS.items() for p in sorted((RESULTS / d).glob("*.json"))]


def _same(path: Path, dumped: dict) -> None:
    raw = json.loads(path.read_text())
    assert dumped == raw
    # the same text too: an int stays an int, a float a float
    assert json.dumps(dumped, sort_keys=True) == json.dumps(raw, sort_keys=True)


@pytest.mark.parametrize("cls, path", CASES, ids=[p.name for _, p in CASES])
def test_variant_records_round_trip(cls, path):
    assert len(CASES) >= 4 * 7
    _same(path, cls.load(path).dump())


@pytest.mark.parametrize("path", sorted((RESULTS / "models").glob("*.json")), ids=lambda p: p.name)
def test_model_records_round_trip(path):
    _same(path, load_model_record(path).dump())


def test_fleet_summary_round_trips():
    _same(RESULTS / "fleet.json", FleetSummary.load(RESULTS / "fleet.json").dump())


def test_fields_consumers_read():
    ck = CompressedModelRecord.load(RESULTS / "models" / "smollm2-135m-depth-8-kd.json")
    raw = json.loads((RESULTS / "models" / "smollm2-135m-depth-8-kd.json").read_text())
    assert ck.distill_tokens == (raw["distill"]["steps_done"] * raw["recipe_spec"]["distill"]["batch_size"]
                                 * raw["recipe_spec"]["distill"]["seq_len"])
    four = CompressedModelRecord.load(RESULTS / "models" / "smollm2-135m-depth-8-kd-4x.json")
    assert four.distill_tokens == 4 * ck.distill_tokens  # the budget point: four times the default tokens
    p = ProfileRecord.load(RESULTS / "profile" / "smollm2-135m-F16.json")
    raw = json.loads((RESULTS / "profile" / "smollm2-135m-F16.json").read_text())
    best = max(raw["runs"], key=lambda r: r["threads"])
    assert p.best.pp_name.startswith("pp") and p.best.tg_name.startswith("tg")
    assert p.best.pp.avg_ts == best[p.best.pp_name]["avg_ts"]
    assert p.best.tg.stddev_ts == best[p.best.tg_name]["stddev_ts"]
    assert list(p.best.tests) == [k for k in best if k.startswith(("pp", "tg"))]


def test_missing_record_names_file_and_stage(tmp_path):
    with pytest.raises(RecordMissing, match=r"nothing\.json.*dvc repro evaluate"):
        EvalRecord.load(tmp_path / "nothing.json")
