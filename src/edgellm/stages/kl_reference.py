"""Stage ``kl_reference@<model>``: the KL base's log-probabilities over the perplexity tokens, once per model, in
the bounded form of :mod:`edgellm.eval.klref` (its size does not grow with the vocabulary)."""

from __future__ import annotations

from pathlib import Path

from ..eval.contexts import perplexity_context
from ..eval.perplexity import write_kl_reference
from ..eval.prepared import wikitext_text
from ..llamacpp.runtime import Model
from .common import context


def run(model_name: str, params_path: str | Path | None = None, progress: bool = True) -> dict:
    params, lay = context(params_path)
    pp = params.evaluate.perplexity
    with Model(lay.gguf(model_name, params.evaluate.kl_base), **perplexity_context(params)) as model:
        tokens = model.tokenize(wikitext_text(lay))
        out = lay.kl_reference(model_name)
        ref = write_kl_reference(model, tokens, pp.n_ctx, pp.n_batch, pp.max_chunks, out, pp.kl_top_k,
                                 pp.kl_check_rows, progress)
    full = len(ref) * model.n_vocab * 4
    return {"model": model_name, "kl_base": params.evaluate.kl_base, "file": str(out.relative_to(lay.root)),
            "rows": len(ref), "top_k": pp.kl_top_k, "n_vocab": model.n_vocab, "bytes": out.stat().st_size,
            "full_rows_float32_bytes": full}
