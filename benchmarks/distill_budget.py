"""How many distillation tokens the mildest pruning points need to come within 10 % of the reference perplexity.

For each token budget, a recipe of ``params.yaml`` runs as its compress stage runs it (the same pruning, the
same calibration and held-out rows, the same learning-rate schedule stretched over the budget), the student is
converted to an F16 GGUF file, and its perplexity is measured with the study's protocol (WikiText-2 test,
``evaluate.perplexity``) beside the base model's F16 file, the reference. F16 isolates what pruning and
distillation cost: the study quantizes its compressed checkpoints to Q4_K_M, which adds the quantization's
own cost (Q4_K_M alone: about +6 % on this base).

    python benchmarks/distill_budget.py                                  # depth-1-kd at 4k, 16k, 32k tokens
    python benchmarks/distill_budget.py --recipe width-mlp98-kd --tokens 4096 32768
    python benchmarks/distill_budget.py --recipe width-mlp98-kd --tokens 4096 --mlp 1504 1472 1408 1344
    python benchmarks/distill_budget.py --model gemma3-270m --tokens 4096 --lr 1e-5 3e-6   # other learning rates

``--mlp`` reruns a width recipe at other MLP sizes (channels of the base model's 1536; the recipe's ``align``
still applies), to find how mild a width point must be; "held-out KL" is printed pruned -> distilled.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from _common import LAYOUT, ROOT
from transformers import AutoModelForCausalLM, AutoTokenizer

from edgellm.compress.recipe import run_recipe
from edgellm.config import load_params
from edgellm.eval.perplexity import perplexity
from edgellm.eval.prepared import calibration_text, wikitext_text
from edgellm.llamacpp.convert import convert_hf
from edgellm.llamacpp.runtime import Model
from edgellm.records import base_files
from edgellm.compress.block_scores import scores_for
from edgellm.eval.contexts import perplexity_context


def f16_perplexity(gguf: Path, text: str, params) -> float:
    pp = params.evaluate.perplexity
    with Model(gguf, **perplexity_context(params)) as model:
        return perplexity(model, model.tokenize(text), pp.n_ctx, pp.n_batch, pp.max_chunks, progress=False).ppl


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--recipe", default="depth-1-kd")
    ap.add_argument("--tokens", type=int, nargs="+", default=[4096, 16384, 32768])
    ap.add_argument("--mlp", type=int, nargs="+", help="MLP channels to prune to (a width recipe)")
    ap.add_argument("--lr", type=float, nargs="+", help="peak learning rates to try instead of the recipe's")
    a = ap.parse_args()
    params = load_params(ROOT / "params.yaml")
    torch.set_num_threads(params.threads)
    recipe = params.compress.recipes[a.recipe]
    calib = params.compress.calibration
    src = LAYOUT.checkpoint(a.model)
    tok = AutoTokenizer.from_pretrained(src)
    base = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32).eval()
    ids = tok(calibration_text(LAYOUT))["input_ids"]
    text = wikitext_text(LAYOUT)
    ref = f16_perplexity(LAYOUT.gguf(a.model, "F16"), text, params)
    # the block_kl stage's scores, as the compress stage reads them
    kl = getattr(recipe.prune, "importance", None) == "kl"
    weights = base_files(LAYOUT.model_record(a.model))
    kl_scores = scores_for(LAYOUT, a.model, calib.model_dump(), weights) if kl else None
    print(f"{a.model} F16 (the reference): perplexity {ref:.3f}; {a.recipe}: {recipe.prune}")
    if a.mlp and getattr(recipe.prune, "intermediate_size", None) is None:
        raise SystemExit(f"--mlp needs a width recipe that prunes the MLP; {a.recipe} does not")
    full = base.config.intermediate_size
    prunes = [recipe.prune.model_copy(update={"intermediate_size": m / full}) for m in a.mlp] if a.mlp else [recipe.prune]
    print(f"{'MLP':>5}{'tokens':>7}{'lr':>9}{'steps':>7}{'minutes':>9}{'held-out KL':>17}{'F16 perplexity':>16}"
          f"{'vs reference':>14}")
    for prune, n, lr in ((p, n, lr) for p in prunes for n in a.tokens for lr in a.lr or [recipe.distill.lr]):
        spec = recipe.model_copy(update={"prune": prune,
                                         "distill": recipe.distill.model_copy(update={"tokens": n, "lr": lr})})
        torch.manual_seed(params.seed)
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            student, record, _ = run_recipe(base, tok, spec, calib, ids, params.seed, Path(tmp) / "work",
                                            progress=False, kl_scores=kl_scores)
            minutes = (time.perf_counter() - t0) / 60
            student.save_pretrained(Path(tmp) / "hf", safe_serialization=True)
            tok.save_pretrained(Path(tmp) / "hf")
            gguf = convert_hf(Path(tmp) / "hf", Path(tmp) / "F16.gguf", "f16")
            ppl = f16_perplexity(gguf, text, params)
        kl = f"{record['heldout_kl_before_distill']:.4f} -> {record['heldout_kl']:.4f}"
        print(f"{student.config.intermediate_size:>5}{n:>7}{lr:>9.1e}{record['distill']['steps_done']:>7}{minutes:>9.1f}"
              f"{kl:>17}{ppl:>16.3f}{100 * (ppl / ref - 1):>+13.1f}%", flush=True)


if __name__ == "__main__":
    main()
