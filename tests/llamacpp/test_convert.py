"""Conversion and quantization through llama.cpp's tools (``edgellm.llamacpp.convert``)."""

from __future__ import annotations

import pytest

from edgellm.llamacpp.convert import compute_imatrix, quantize
from edgellm.llamacpp.gguf import inspect_gguf
from edgellm.llamacpp.tools import ToolError


def test_failed_quantization_leaves_nothing(tiny_gguf, tmp_path):
    out = tmp_path / "x.gguf"
    with pytest.raises(ToolError, match="llama-quantize"):
        quantize(tiny_gguf["F32"], out, "NOT_A_TYPE", threads=1)
    assert list(tmp_path.iterdir()) == []


def test_importance_matrix_guides_quantization(tiny_gguf, wiki_file, tmp_path):
    """llama-imatrix on calibration text, then a type that needs it (IQ2_XS refuses to run without)."""
    imat = compute_imatrix(tiny_gguf["F32"], wiki_file, tmp_path / "imatrix.gguf", chunks=4, n_ctx=128, threads=2)
    assert imat.stat().st_size > 0
    with pytest.raises(ToolError):
        quantize(tiny_gguf["F32"], tmp_path / "no.gguf", "IQ2_XS", threads=2)
    out = quantize(tiny_gguf["F32"], tmp_path / "iq2.gguf", "IQ2_XS", threads=2, imatrix=imat)
    assert "IQ2_XS" in inspect_gguf(out)["tensor_types"]


def test_requantizing_a_quantized_file_needs_the_flag(tiny_gguf, tmp_path):
    """The bundle check dequantizes a deployed file to F32; llama-quantize refuses that unless asked."""
    with pytest.raises(ToolError):
        quantize(tiny_gguf["Q4_K_M"], tmp_path / "no.gguf", "F32", threads=2)
    out = quantize(tiny_gguf["Q4_K_M"], tmp_path / "F32.gguf", "F32", threads=2, allow_requantize=True)
    info = inspect_gguf(out)
    assert set(info["tensor_types"]) == {"F32"} and info["n_params"] == inspect_gguf(tiny_gguf["Q4_K_M"])["n_params"]


def test_the_embedding_and_output_tensors_take_the_type_asked_for_apart(tiny_gguf, tmp_path):
    """``<type>-emb<TYPE>``: llama-quantize's --token-embedding-type/--output-tensor-type, the rest as the type."""
    plain = inspect_gguf(quantize(tiny_gguf["F32"], tmp_path / "q.gguf", "Q4_K_M", threads=2))
    apart = inspect_gguf(quantize(tiny_gguf["F32"], tmp_path / "e.gguf", "Q4_K_M", threads=2, embedding_type="Q4_0"))
    types = lambda rec: {t["name"]: t["type"] for t in rec["tensors"]}
    p, a = types(plain), types(apart)
    for name in ("token_embd.weight", "output.weight"):
        assert p[name] != "Q4_0" and a[name] == "Q4_0", (name, p[name])
    assert {k: v for k, v in a.items() if k not in ("token_embd.weight", "output.weight")} == {
        k: v for k, v in p.items() if k not in ("token_embd.weight", "output.weight")}
    assert apart["file_bytes"] < plain["file_bytes"]


def test_a_base_model_s_f32_file_equals_the_gguf_file_it_came_from(tiny_gguf, tmp_path):
    """The origin check: a file against itself re-quantized and back (the tiny model's F32 against its Q8_0 is
    not equal; the Q8_0 dequantized to F32 is, tensor for tensor)."""
    from edgellm.llamacpp.gguf import compare_with_origin

    q8 = tiny_gguf["Q8_0"]
    back = quantize(q8, tmp_path / "back.gguf", "F32", threads=2, allow_requantize=True)
    same = compare_with_origin(back, q8)
    assert same["max_rel_diff"] == 0.0 and not same["tensors_missing"] and same["tensors_compared"] > 10
    assert compare_with_origin(tiny_gguf["F32"], q8)["max_rel_diff"] > 1e-4
