"""Stage ``agreement@<model>``: lm-evaluation-harness itself against the project on a base model's items.

On ``agreement.items`` seeded items of every task the study scores (the study's prepared items), lm-eval's
Hugging Face backend on the base checkpoint and the project's scorer on its F32 GGUF, with the study's
generation cap and scoring context (:mod:`edgellm.eval.agreement`). The paper quotes this record; the report
refuses one made with other settings than the study's.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from ..eval.agreement import agreement
from ..eval.contexts import scoring_context
from ..eval.prepared import load_task_items, subset_items
from ..io import sha256_file, write_json
from ..provenance import versions
from .common import context, study_model


def run(model: str, params_path: str | Path | None = None) -> dict:
    params, lay = context(params_path)
    study_model(lay, model)
    want = params.agreement_settings(model)
    items = {t: subset_items(load_task_items(lay, t), n, params.seed) for t, n in want["items_per_task"].items()}
    gguf = lay.f32(model)
    with tempfile.TemporaryDirectory() as tmp:
        res = agreement(lay.checkpoint(model), gguf, items, Path(tmp), context=scoring_context(params),
                        threads=params.threads, max_new_tokens=want["max_new_tokens"],
                        n_parallel=params.evaluate.generation.parallel, modes=want["modes"])
    record = {**want, "items_per_task": {t: len(it.indices) for t, it in items.items()},
              "settings": want, "checkpoint": str(lay.checkpoint(model).relative_to(lay.root)),
              "gguf": str(gguf.relative_to(lay.root)), "gguf_sha256": sha256_file(gguf),
              "lm_eval": "HF backend, float32, batch 4", **res, "versions": versions()}
    write_json(lay.lm_eval_agreement(model), record)
    return record
