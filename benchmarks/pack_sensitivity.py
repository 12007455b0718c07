"""How much a question's log-likelihoods depend on which other questions share its decodes.

llama.cpp's CPU kernels for quantized weights quantize each batch's activations, and the rounding depends on
the batch, so a question scored alone and the same question packed with others give different sums. This is
why the shard plan (``execution.shard_items``) is a parameter the evaluate stages depend on, and why every
backend scores a shard the same way. For each GGUF type given, ARC-Easy items (the study's seed) are scored in
one pack, then a few of them alone, with the study's context and with an F32 KV cache and no flash attention;
it prints the largest difference of a choice's summed log-likelihood and how many predictions change.

    python benchmarks/pack_sensitivity.py F16 Q4_K_M
"""

from __future__ import annotations

import argparse

from _common import LAYOUT, ROOT, study_gguf

from edgellm.config import load_params
from edgellm.eval.batched import BatchScorer
from edgellm.eval.prepared import load_task_items, subset_items
from edgellm.eval.scoring import evaluate_task
from edgellm.eval.tasks import TASKS
from edgellm.llamacpp.runtime import Model
from edgellm.eval.contexts import scoring_context


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("types", nargs="+")
    ap.add_argument("--items", type=int, default=30)
    ap.add_argument("--alone", type=int, default=6)
    a = ap.parse_args()
    params = load_params(ROOT / "params.yaml")
    it = subset_items(load_task_items(LAYOUT, "arc_easy"), a.items, params.seed)
    task = TASKS["arc_easy"]
    print(f"{'type':<8}{'KV/attention':<16}{'max |Δ ll| (nats)':>20}{'predictions changed':>22}")
    for qtype in a.types:
        for label, kw in (("study (F16 KV)", {}), ("F32 KV, no FA", {"kv_f32": True, "flash_attn": 0})):
            with Model(study_gguf(qtype), **scoring_context(params), n_threads=params.threads, **kw) as m:
                sc = BatchScorer(m, params.evaluate.n_batch)
                _, packed = evaluate_task(sc, task, it.docs, it.indices, it.shots, False)
                diff, flips = 0.0, 0
                for k in range(a.alone):
                    _, alone = evaluate_task(sc, task, it.docs[k:k + 1], it.indices[k:k + 1], it.shots[k:k + 1], False)
                    diff = max(diff, max(abs(x - y) for x, y in zip(packed[k].lls, alone[0].lls)))
                    flips += packed[k].acc != alone[0].acc
            print(f"{qtype:<8}{label:<16}{diff:>20.4f}{f'{flips} of {a.alone}':>22}")


if __name__ == "__main__":
    main()
