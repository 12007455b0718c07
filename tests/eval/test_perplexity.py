"""Perplexity and KL divergence (``edgellm.eval.perplexity``) against llama.cpp's own ``llama-perplexity``."""

from __future__ import annotations

import numpy as np
import pytest

from edgellm.eval import klref
from edgellm.eval.perplexity import n_scored, perplexity, write_kl_reference
from edgellm.llamacpp.runtime import Model
from edgellm.llamacpp.tools import run_perplexity, tool

N_CTX = 128


def ppl_model(path):
    return Model(path, n_ctx=2048, n_batch=2048, n_seq_max=2048 // N_CTX, n_threads=2)


@pytest.mark.parametrize("qtype", ["F16", "Q4_K_M"])
def test_perplexity_agrees_with_llama_perplexity(tiny_gguf, wiki_file, qtype):
    ref = run_perplexity(tool("llama-perplexity"), tiny_gguf[qtype], wiki_file, N_CTX, 20)
    assert len(ref["chunks"]) == 20
    with ppl_model(tiny_gguf[qtype]) as m:
        toks = m.tokenize(wiki_file.read_text())
        res = perplexity(m, toks, N_CTX, 2048, 20, progress=False)
    assert res.n_chunks == 20 and res.n_tokens == 20 * (N_CTX - N_CTX // 2 - 1)
    assert res.ppl == pytest.approx(ref["ppl"], rel=0.005)
    assert res.ppl_stderr == pytest.approx(ref["ppl_stderr"], rel=0.02)


def test_kl_divergence_against_reference_file(tiny_gguf, wiki_file, tmp_path):
    with ppl_model(tiny_gguf["F16"]) as base:
        toks = base.tokenize(wiki_file.read_text())
        written = write_kl_reference(base, toks, N_CTX, 2048, 12, tmp_path / "ref.npz", 256, 40, progress=False)
        arr = klref.load(tmp_path / "ref.npz")
        assert len(arr) == len(written) == n_scored(len(toks), N_CTX, 12) and arr.ids.shape[1] == 256
        assert arr.sample.shape == (40, base.n_vocab) and arr.sample.dtype == np.float32
        same = perplexity(base, toks, N_CTX, 2048, 12, arr, progress=False)
    assert same.kl["kld_mean"] < 1e-3 and same.kl["same_top_p"] > 0.99
    with ppl_model(tiny_gguf["Q4_K_M"]) as q4:
        res = perplexity(q4, toks, N_CTX, 2048, 12, arr, progress=False)
    assert res.kl["kld_mean"] > same.kl["kld_mean"]
    assert 0 < res.kl["same_top_p"] < 1
    assert res.kl["kld_median"] <= res.kl["kld_p99"] <= res.kl["kld_max"]
    # the stored form, checked on the sample rows against float32 rows
    assert res.kl["kld_check_rows"] == 40
    assert abs(res.kl["kld_check_rel_gap"]) < 1e-4 and res.kl["same_top_check_equal"]
    # llama-perplexity's own KL divergence on the same tokens agrees (its values over all 12 chunks)
    binary, base_file = tool("llama-perplexity"), tmp_path / "b.kld"
    run_perplexity(binary, tiny_gguf["F16"], wiki_file, N_CTX, 12, kl_base=base_file)
    theirs = run_perplexity(binary, tiny_gguf["Q4_K_M"], wiki_file, N_CTX, 12, kl_base=base_file, kl_compare=True)
    assert len(theirs["chunks"]) == 12
    assert res.kl["kld_mean"] == pytest.approx(theirs["kld"], rel=0.05, abs=2e-4)
    assert res.kl["same_top_p"] == pytest.approx(theirs["same_top_pct"] / 100, abs=0.02)
