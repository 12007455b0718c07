"""Stage ``block_kl@<model>``: what dropping each block of a base model costs, once for every depth recipe.

``python -m edgellm.stages.block_kl <model>``. Depth pruning by ``kl`` drops the blocks whose removal alone
costs the least KL divergence on the calibration rows: one model pass per block (~2.5 minutes for the 30
blocks of SmolLM2-135M on 2 cores). The scores do not depend on how many blocks a recipe drops, so every
depth recipe of the model that ranks blocks by ``kl`` reads them from this stage's record instead of computing
them again (every compress stage depends on the record; the others do not read it). The record names the
calibration settings and base weights it was computed on; the calibration text itself is a DVC dependency of
this stage, not checked by :func:`edgellm.compress.block_scores.scores_for`.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from ..compress.recipe import block_kl_scores
from ..config.base import READS_ENV
from ..eval.prepared import calibration_text
from ..models import load_checkpoint
from ..paths import Layout, project_root
from ..provenance import versions
from ..records import BlockKLRecord, base_files
from .common import context, study_model


def run(model: str, params_path: str | Path | None = None) -> dict:
    params, lay = context(params_path)
    study_model(lay, model)
    torch.manual_seed(params.seed)
    torch.set_num_threads(params.threads)
    t0 = time.perf_counter()
    tokenizer, base = load_checkpoint(lay.checkpoint(model))
    calib = params.compress.calibration
    scores = block_kl_scores(base, tokenizer(calibration_text(lay))["input_ids"], calib)
    record = {"model": model, "scores": scores, "calibration": calib.model_dump(),
              "base_files": base_files(lay.model_record(model)),
              "seconds": time.perf_counter() - t0, "versions": versions()}
    BlockKLRecord.model_validate(record).write(lay.block_kl(model))
    return record


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m edgellm.stages.block_kl",
                                 description="Per block of a base model, the KL divergence dropping it costs.")
    ap.add_argument("model", help="a base model of params.yaml's models")
    a = ap.parse_args(argv)
    reads = Layout(project_root()).params_reads(f"block_kl-{a.model}")
    reads.parent.mkdir(parents=True, exist_ok=True)
    reads.write_text("")
    os.environ[READS_ENV] = str(reads)  # the parameters it reads, for the check of dvc.yaml's params deps
    rec = run(a.model)
    s = rec["scores"]
    order = sorted(range(len(s)), key=lambda i: (s[i], i))
    print(f"{a.model}: {len(s)} blocks in {rec['seconds']:.0f} s; cheapest {order[:4]} "
          f"({', '.join(f'{s[i]:.3f}' for i in order[:4])})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
