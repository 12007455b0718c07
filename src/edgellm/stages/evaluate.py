"""Stage ``evaluate@<variant>``: perplexity and KL divergence, then every task's items, of one GGUF file."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..config import resolve_variant
from ..eval.perplexity import perplexity
from ..eval.prepared import load_task_items, wikitext_text
from ..eval.scoring import ChoiceScorer, run_tasks
from ..eval.tasks import TASKS
from ..io import write_json
from ..llamacpp.runtime import Model
from ..provenance import versions
from ..records import EvalRecord
from .common import context, variant_fields
from .kl_reference import perplexity_context


def run(variant: str, params_path: str | Path | None = None, progress: bool = True) -> dict:
    params, lay = context(params_path)
    v = resolve_variant(variant, params)
    ev = params.evaluate
    pp = ev.perplexity
    # compressed checkpoints are compared with their base model's KL reference
    record: dict = {**variant_fields(v), "kl_base": f"{v.base}-{ev.kl_base}"}

    # Perplexity and KL divergence, llama-perplexity's protocol
    model = Model(lay.gguf(v.checkpoint, v.qtype), **perplexity_context(params))
    tokens = model.tokenize(wikitext_text(lay))
    reference = None
    if v.recipe is not None or v.qtype != ev.kl_base:
        ref_path = lay.kl_reference(v.base)
        if not ref_path.is_file():
            raise FileNotFoundError(f"{ref_path}: KL reference missing; run the kl_reference stage")
        reference = np.load(ref_path, mmap_mode="r")
    res = perplexity(model, tokens, pp.n_ctx, pp.n_batch, pp.max_chunks, reference, progress)
    ppl = asdict(res)
    if res.kl is None:  # the base against itself
        ppl["kl"] = {"kld_mean": 0.0, "same_top_p": 1.0}
    record["perplexity"] = ppl | {"n_text_tokens": int(len(tokens))}

    # Tasks, lm-evaluation-harness definitions
    loaded = {name: (TASKS[name], load_task_items(lay, name)) for name in ev.tasks}
    max_choices = max([len(t.doc_to_choice(d)) for t, it in loaded.values() if not t.generative for d in it.docs],
                      default=1)
    model.new_context(n_ctx=ev.n_ctx, n_batch=ev.n_ctx, n_seq_max=max_choices, n_threads=params.threads)
    results = run_tasks(ChoiceScorer(model), {name: it for name, (_, it) in loaded.items()},
                        ev.generation.max_new_tokens, progress)
    record["tasks"] = {name: summary for name, (summary, _) in results.items()}
    items = {name: [asdict(r) for r in res] for name, (_, res) in results.items()}
    model.close()
    record["versions"] = versions()
    write_json(lay.items(variant), items)
    EvalRecord.model_validate(record).write(lay.eval_record(variant))
    return record
