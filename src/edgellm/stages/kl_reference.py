"""Stage ``kl_reference@<model>``: the KL base's log-probabilities over the perplexity tokens, once per model."""

from __future__ import annotations

from pathlib import Path

from ..config import Params
from ..eval.perplexity import write_kl_reference
from ..eval.prepared import wikitext_text
from ..llamacpp.runtime import Model
from .common import context


def perplexity_context(params: Params) -> dict:
    """The context llama-perplexity would use: ``n_batch // n_ctx`` windows decoded together."""
    pp = params.evaluate.perplexity
    n_seq = max(1, pp.n_batch // pp.n_ctx)
    return dict(n_ctx=n_seq * pp.n_ctx, n_batch=n_seq * pp.n_ctx, n_seq_max=n_seq, n_threads=params.threads)


def run(model_name: str, params_path: str | Path | None = None, progress: bool = True) -> dict:
    params, lay = context(params_path)
    pp = params.evaluate.perplexity
    with Model(lay.gguf(model_name, params.evaluate.kl_base), **perplexity_context(params)) as model:
        tokens = model.tokenize(wikitext_text(lay))
        out = write_kl_reference(model, tokens, pp.n_ctx, pp.n_batch, pp.max_chunks, lay.kl_reference(model_name),
                                 progress)
    return {"model": model_name, "kl_base": params.evaluate.kl_base, "file": str(out.relative_to(lay.root)),
            "bytes": out.stat().st_size}
