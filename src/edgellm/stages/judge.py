"""Stage ``judge``: every variant's generated answers judged at once (lm-eval's lexical judges, embeddings).

One stage for all variants: the embedding model is loaded once. The variants
are the per-item files the evaluate stages wrote, so adding a variant reruns
this stage through its data, not through a parameter.
"""

from __future__ import annotations

from pathlib import Path

from ..eval.judge import EMBEDDING_MODEL, HALLUCINATION_RULE, LEXICAL_JUDGE, EmbeddingJudge, judge_variants
from ..eval.prepared import load_task_items
from ..eval.tasks import TASKS
from ..io import read_json, write_json
from ..provenance import versions
from .common import context, study_variants


def run(params_path: str | Path | None = None, embed: bool = True) -> dict:
    params, lay = context(params_path)
    gen_tasks = [t for t in params.evaluate.tasks if TASKS[t].generative]
    out: dict = {"judges": {"lexical": LEXICAL_JUDGE, "embedding": EMBEDDING_MODEL if embed else None},
                 "rule": HALLUCINATION_RULE, "variants": {}}
    if gen_tasks:
        embedder = EmbeddingJudge(params.threads) if embed else None
        prepared = {t: load_task_items(lay, t) for t in gen_tasks}
        # the study's variants only (a file left by an earlier study is not judged); frontier-tier variants
        # generate nothing and are skipped by judge_variants
        items = {v.name: read_json(lay.items(v.name)) for v in study_variants(lay) if lay.items(v.name).is_file()}
        out["variants"] = judge_variants(items, prepared, embedder)
    out["versions"] = versions()
    write_json(lay.judged, out)
    return out
