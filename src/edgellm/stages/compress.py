"""Stage ``compress@<model>-<recipe>``: a recipe applied to a base model (prune and/or distill), saved as a
plain checkpoint with its record and distillation curve."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

import torch

from ..compress.block_scores import scores_for
from ..compress.recipe import run_recipe, write_curve
from ..config import ParamsError
from ..eval.prepared import calibration_text
from ..io import atomic_dir
from ..models import SENTENCEPIECE_FILE, checkpoint_files, load_checkpoint
from ..provenance import versions
from ..records import CompressedModelRecord, base_files
from .common import context, study_checkpoint

#: the architecture fields a compressed checkpoint's record keeps
CONFIG_FIELDS = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                 "num_key_value_heads", "head_dim", "vocab_size", "tie_word_embeddings")


def run(checkpoint: str, params_path: str | Path | None = None, progress: bool = True,
        stop_after: int | None = None) -> dict:
    params, lay = context(params_path)
    entry = study_checkpoint(lay, checkpoint)
    if entry["recipe"] is None:
        raise ParamsError(f"{checkpoint!r} is a base model, not a compressed checkpoint of the study")
    base_name, recipe_name = entry["model"], entry["recipe"]
    recipe = params.compress.recipes[recipe_name]
    torch.manual_seed(params.seed)
    torch.set_num_threads(params.threads)
    t0 = time.perf_counter()
    tokenizer, base = load_checkpoint(lay.checkpoint(base_name))
    ids = tokenizer(calibration_text(lay))["input_ids"]
    # resume only a run of exactly this recipe on exactly these weights
    weights = base_files(lay.model_record(base_name))
    run_spec = {"recipe": recipe.model_dump(), "calibration": params.compress.calibration.model_dump(),
                "seed": params.seed, "base": weights, "torch": torch.__version__}
    key = hashlib.sha256(json.dumps(run_spec, sort_keys=True).encode()).hexdigest()[:16]
    work = lay.compress_work(checkpoint) / key
    kl_scores = None
    if getattr(recipe.prune, "importance", None) == "kl":  # scored once per base model by the block_kl stage
        kl_scores = scores_for(lay, base_name, params.compress.calibration.model_dump(), weights)
    model, record, history = run_recipe(base, tokenizer, recipe, params.compress.calibration, ids, params.seed,
                                        work, progress, stop_after, kl_scores)
    if "distill" in record and not record["distill"]["complete"]:
        return record | {"interrupted": True}
    record |= {"checkpoint": checkpoint, "base": base_name, "recipe": recipe_name, "recipe_spec": recipe.model_dump(),
               "source": "compress", "seconds": time.perf_counter() - t0}
    out = lay.checkpoint(checkpoint)
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        spm = lay.checkpoint(base_name) / SENTENCEPIECE_FILE
        if spm.is_file():
            # the base's SentencePiece model travels on (transformers saves tokenizer.json only): llama.cpp's
            # converter reads it where it exists, so base and compressed checkpoints get the same GGUF vocabulary
            shutil.copyfile(spm, Path(tmp) / SENTENCEPIECE_FILE)
    record["config"] = {k: getattr(model.config, k, None) for k in CONFIG_FIELDS}
    record["n_params"] = record["params"]["params"]
    record["files"] = checkpoint_files(out)
    record["versions"] = versions()
    record["history"] = history
    write_curve(lay.distill_curve(checkpoint), history)
    CompressedModelRecord.model_validate(record).write(lay.model_record(checkpoint))
    shutil.rmtree(lay.compress_work(checkpoint), ignore_errors=True)
    return record
