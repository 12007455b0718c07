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
