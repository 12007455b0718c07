"""Stage ``evaluate@<variant>``: perplexity and KL divergence, then every task's items, of one GGUF file."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path


from ..eval import klref
from ..eval.perplexity import perplexity
from ..eval.prepared import load_task_items, subset_items, wikitext_text
from ..eval import cluster
from ..eval.contexts import perplexity_context, scoring_context
from ..io import write_json
from ..llamacpp.runtime import Model
from ..provenance import versions
from ..records import EvalRecord
from .common import context, study_variant, variant_fields


def run(variant: str, params_path: str | Path | None = None, progress: bool = True) -> dict:
    params, lay = context(params_path)
    v = study_variant(lay, variant)
    ev = params.evaluate
    pp = ev.perplexity
    # compressed checkpoints are compared with their base model's KL reference
    record: dict = {**variant_fields(v), "kl_base": f"{v.base}-{ev.kl_base}"}

    # Perplexity and KL divergence, llama-perplexity's protocol
    ex = params.execution
    gguf = lay.gguf(v.checkpoint, v.qtype)
    model = Model(gguf, **perplexity_context(params), n_gpu_layers=ex.n_gpu_layers)
    tokens = model.tokenize(wikitext_text(lay))
    reference = None
    if v.recipe is not None or v.qtype != ev.kl_base:
        ref_path = lay.kl_reference(v.base)
        if not ref_path.is_file():
            raise FileNotFoundError(f"{ref_path}: KL reference missing; run the kl_reference stage")
        reference = klref.load(ref_path)
    res = perplexity(model, tokens, pp.n_ctx, pp.n_batch, pp.max_chunks, reference, progress)
    ppl = asdict(res)
    if res.kl is None:  # the base against itself
        ppl["kl"] = {"kld_mean": 0.0, "same_top_p": 1.0}
    record["perplexity"] = ppl | {"n_text_tokens": int(len(tokens))}

    # Tasks, lm-evaluation-harness definitions, many questions per decode: every task for the reference (the
    # task screen), the tier's tasks on a seeded subset of the reference's items for the other variants
    tasks = params.eval_tasks(v)
    loaded = {name: subset_items(load_task_items(lay, name), n, params.seed) for name, n in tasks.items()}
    record["tier_tasks"] = {name: len(it.indices) for name, it in loaded.items()}
    # every task's items, by the shard plan, in-process on this model or on a Ray cluster (edgellm.eval.cluster)
    scored = cluster.score_items(
        gguf, loaded, shard_items=ex.shard_items, context=scoring_context(params), n_batch=ev.n_batch,
        threads=params.threads, max_new_tokens=ev.generation.max_new_tokens, n_parallel=ev.generation.parallel,
        backend=ex.backend, address=ex.address, model_transfer=ex.model_transfer, workers=ex.workers,
        n_gpu_layers=ex.n_gpu_layers, model=model, progress=progress)
    results, stats = scored["results"], scored["stats"]
    if scored["where"]:
        print(f"{scored['shards']} shards on {len(scored['where'])} Ray workers:",
              *sorted({w['host'] for w in scored['where']}))
    record["tasks"] = {name: summary for name, (summary, _) in results.items()}
    record["scorer"] = asdict(stats) | {"n_batch": ev.n_batch, "parallel": ev.generation.parallel}
    # what the numbers depend on (the backend and the cluster do not: the same plan gives the same bits)
    record["execution"] = {"shard_items": ex.shard_items, "shards": scored["shards"], "compute": model.compute,
                           "n_gpu_layers": ex.n_gpu_layers}
    items = {name: [asdict(r) for r in res] for name, (_, res) in results.items()}
    model.close()
    record["versions"] = versions()
    write_json(lay.items(variant), items)
    EvalRecord.model_validate(record).write(lay.eval_record(variant))
    return record
