"""The plain Armv8-A build for the Raspberry Pi Zero 2 W (Cortex-A53, no dot product), checked under qemu with
that CPU model: the bundles' Armv8.2-A build cannot run there; this one runs and computes the host's model."""

from __future__ import annotations

import pytest

from edgellm.devices.bundle import QEMU, short_text, verdict
from edgellm.llamacpp.tools import ToolError, run_perplexity
from edgellm.paths import cross_armv8a_dir, cross_dir, llama_cpp_dir

A53 = {"QEMU_CPU": "cortex-a53"}
N_CTX, CHUNKS = 64, 2


@pytest.fixture
def cortex_a53(monkeypatch):
    """qemu-user emulates a Cortex-A53 (Armv8.0-A: no SDOT/UDOT) for every process started in the test."""
    for k, v in A53.items():
        monkeypatch.setenv(k, v)


def _text(tmp_path, wiki_file):
    return short_text(wiki_file, tmp_path / "short.txt", 6000)


@pytest.mark.parametrize("qtype", ["F32", "Q8_0", "Q4_K_M"])
def test_the_armv8a_build_computes_the_hosts_model_on_a_cortex_a53(cortex_a53, tiny_gguf, wiki_file, tmp_path,
                                                                    qtype):
    text = _text(tmp_path, wiki_file)
    base = tmp_path / "host.kld"
    host = run_perplexity(llama_cpp_dir() / "bin" / "llama-perplexity", tiny_gguf[qtype], text, N_CTX, CHUNKS,
                          kl_base=base)
    arm = run_perplexity(cross_armv8a_dir() / "bin" / "llama-perplexity", tiny_gguf[qtype], text, N_CTX, CHUNKS,
                         emulator=QEMU, kl_base=base, kl_compare=True)
    v = verdict(host, arm, tolerance=0.001, kld_tolerance=0.05)
    # float32 does the same arithmetic up to the order of sums; quantized activations need the KL criterion
    assert v["same_ppl"] if qtype == "F32" else v["same_predictions"], v


def test_the_bundles_dot_product_build_cannot_run_on_a_cortex_a53(cortex_a53, monkeypatch, tiny_gguf, wiki_file,
                                                                  tmp_path):
    """Why the Zero 2 W needs its own build, and what makes the check above meaningful: on the emulated
    Cortex-A53 the Armv8.2-A build stops (SIGILL on SDOT); under qemu's default CPU model the same binary runs."""
    text = _text(tmp_path, wiki_file)
    exe = cross_dir() / "bin" / "llama-perplexity"
    with pytest.raises(ToolError, match="exit -4|exit 132|Illegal instruction"):
        run_perplexity(exe, tiny_gguf["Q8_0"], text, N_CTX, CHUNKS, emulator=QEMU, attempts=1)
    monkeypatch.delenv("QEMU_CPU")
    assert run_perplexity(exe, tiny_gguf["Q8_0"], text, N_CTX, CHUNKS, emulator=QEMU)["ppl"] > 1
