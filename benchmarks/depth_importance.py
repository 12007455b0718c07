"""Which blocks to drop: ShortGPT's block influence against the measured cost of dropping each block.

For each number of blocks, both criteria choose their blocks on the calibration text (the first
``compress.calibration.tokens`` of the LAMBADA development text, as the compress stage does), and the
pruned model's KL to the base is printed on the calibration text and on the rows the distillation holds
out. This is the measurement behind each depth recipe's ``importance`` in ``params.yaml``: the study uses,
per strength, the criterion with the lower calibration KL (the held-out rows are only reported). The ``kl``
scores are the ``block_kl`` stage's (run `dvc repro block_kl` first; a stale record is refused), so only
block influence is computed here.

    python benchmarks/depth_importance.py            # 1, 4 and 8 blocks of the default base model
    python benchmarks/depth_importance.py --blocks 2 6
"""

from __future__ import annotations

import argparse

import torch
from _common import LAYOUT, ROOT

from edgellm.compress.distill import heldout_kl
from edgellm.compress.prune import cheapest, drop_layers, layer_importance
from edgellm.compress.recipe import calibration_batches, split_text
from edgellm.config import load_params
from edgellm.eval.prepared import calibration_text
from edgellm.models import load_checkpoint
from edgellm.records import base_files
from edgellm.compress.block_scores import scores_for


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--blocks", type=int, nargs="+", default=[1, 4, 8])
    a = ap.parse_args()
    params = load_params(ROOT / "params.yaml")
    torch.manual_seed(params.seed)
    torch.set_num_threads(params.threads)
    tok, base = load_checkpoint(LAYOUT.checkpoint(a.model))
    calib = params.compress.calibration
    distill = next((r.distill for r in params.compress.recipes.values() if r.distill is not None), None)
    ids = tok(calibration_text(LAYOUT))["input_ids"]
    split = split_text(ids, calib, distill)
    batches = calibration_batches(ids, calib)
    calib_rows = torch.cat(batches)
    weights = base_files(LAYOUT.model_record(a.model))
    scores = {"block_influence": layer_importance(base, batches, 1, "block_influence")["scores"],
              "kl": scores_for(LAYOUT, a.model, calib.model_dump(), weights)}
    print(f"{len(scores['kl'])} blocks; calibration {len(calib_rows)} x {calib.seq_len} tokens, "
          f"held out {len(split['heldout'])} x {split['heldout'].shape[1]}")
    print(f"{'blocks':>6}  {'criterion':<16}{'dropped':<34}{'KL calibration':>15}{'KL held out':>13}")
    for n in a.blocks:
        for metric, s in scores.items():
            removed = cheapest(s, n)
            model = drop_layers(base, removed)
            print(f"{n:>6}  {metric:<16}{str(removed):<34}{heldout_kl(model, base, calib_rows, 4):>15.4f}"
                  f"{heldout_kl(model, base, split['heldout'], 2):>13.4f}", flush=True)


if __name__ == "__main__":
    main()
