"""GGUF files (``edgellm.llamacpp.gguf``): what a file holds, and files that are not models."""

from __future__ import annotations

import pytest

from edgellm.llamacpp.gguf import ModelFileError, check_gguf, inspect_gguf


def test_gguf_inspection_reports_real_types(tiny_gguf):
    f32 = inspect_gguf(tiny_gguf["F32"])
    q4 = inspect_gguf(tiny_gguf["Q4_K_M"])
    assert set(f32["tensor_types"]) == {"F32"} and f32["bpw"] == pytest.approx(32.0)
    assert "Q4_K" in q4["tensor_types"] and 4.0 < q4["bpw"] < 8.0
    assert f32["n_params"] == q4["n_params"]
    assert q4["kquant_eligible_share"] == pytest.approx(1.0)


def test_non_gguf_files_are_named(tiny_gguf, tmp_path):
    txt = tmp_path / "model.gguf"
    txt.write_text("not a model")
    with pytest.raises(ModelFileError, match=r"model.gguf: not a GGUF file"):
        check_gguf(txt)
    with pytest.raises(ModelFileError, match="not found"):
        check_gguf(tmp_path / "absent.gguf")
    assert check_gguf(tiny_gguf["Q8_0"]) == tiny_gguf["Q8_0"]
