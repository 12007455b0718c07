"""llama.cpp's command-line tools (``edgellm.llamacpp.tools``): finding them, running them, reading them."""

from __future__ import annotations

import sys

import pytest

from edgellm.llamacpp.tools import (
    ToolchainError,
    ToolError,
    run_llama_bench,
    run_perplexity,
    run_tool,
    tool,
    tool_versions,
)


def test_missing_tools_say_how_to_build_them(tmp_path, monkeypatch):
    with pytest.raises(ToolchainError, match="make tools"):
        tool("llama-no-such-tool")
    monkeypatch.setenv("EDGELLM_LLAMA_CPP", str(tmp_path))
    with pytest.raises(ToolchainError, match="make tools"):
        tool("llama-perplexity")
    assert tool_versions() == {"llama.cpp": None}


def test_tool_versions_name_the_build():
    assert tool_versions()["llama.cpp"].startswith("version")


def test_failed_tool_names_command_and_output():
    with pytest.raises(ToolError, match=r"(?s)the step failed \(exit 3\): .*-c.*\nboom"):
        run_tool([sys.executable, "-c", "import sys; print('boom', file=sys.stderr); sys.exit(3)"], "the step")


def test_run_perplexity_reads_estimate_chunks_and_kl(tiny_gguf, wiki_file, tmp_path):
    binary = tool("llama-perplexity")
    res = run_perplexity(binary, tiny_gguf["Q8_0"], wiki_file, 64, 3)
    assert set(res) == {"ppl", "ppl_stderr", "chunks"} and len(res["chunks"]) == 3
    assert res["ppl"] > 1 and res["ppl_stderr"] > 0
    assert res["chunks"][-1] == pytest.approx(res["ppl"], rel=1e-3)  # the running value after the last chunk
    # a saved base, then the same file against it: zero divergence, every top token the same
    base = tmp_path / "base.kld"
    saved = run_perplexity(binary, tiny_gguf["Q8_0"], wiki_file, 64, 3, kl_base=base)
    assert base.stat().st_size > 0 and saved["ppl"] == pytest.approx(res["ppl"], rel=1e-6)
    same = run_perplexity(binary, tiny_gguf["Q8_0"], wiki_file, 64, 3, kl_base=base, kl_compare=True)
    assert set(same) == {"ppl", "chunks", "kld", "kld_se", "dp_rms_pct", "same_top_pct"}
    assert same["kld"] == 0 and same["same_top_pct"] == 100.0 and len(same["chunks"]) == 3
    other = run_perplexity(binary, tiny_gguf["Q4_K_M"], wiki_file, 64, 3, kl_base=base, kl_compare=True)
    assert other["kld"] > 0 and other["same_top_pct"] <= 100.0


def test_run_perplexity_failure_names_the_command(tiny_gguf, tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(tiny_gguf["Q8_0"].read_bytes()[:100_000])
    with pytest.raises(ToolError, match="bad.gguf"):
        run_perplexity(tool("llama-perplexity"), bad, tmp_path / "none.txt", 64, 2, attempts=1)


def test_run_llama_bench_reports_both_tests_by_name(tiny_gguf):
    res = run_llama_bench(tiny_gguf["Q8_0"], 32, 8, 2, 1)
    assert set(res) == {"pp32", "tg8"}
    assert res["pp32"]["n_prompt"] == 32 and res["tg8"]["n_gen"] == 8
    assert all(r["avg_ts"] > 0 and len(r["samples_ts"]) == 2 for r in res.values())
