"""The one wrapper around llama.cpp's command-line tools: where they are, how they run, what they print.

Stages, tests and benchmarks all run ``llama-quantize``, ``llama-imatrix`` and
``llama-perplexity`` through these functions, so a tool's failure always names
the command and the tail of its output, and ``llama-perplexity``'s output is
parsed (and retried) in one place.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from ..paths import LLAMA_CPP_ENV, ProjectNotFound, llama_cpp_dir

FINAL_PPL = re.compile(r"Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+)")
CHUNK_PPL = re.compile(r"\[(\d+)\]([0-9.]+),")
# a chunk row of `llama-perplexity --kl-divergence` (running values): chunk, PPL, ln(PPL(Q)/PPL(base)), KLD,
# RMS of the probability differences, same top token; each value but the chunk "x ± se"
_PM = r"\s+(-?[0-9.]+|-?nan|-?inf)\s+±\s+(-?[0-9.]+|-?nan|-?inf)"  # an exact match gives a "nan" error
KL_ROW = re.compile(r"^\s*(\d+)\s+([0-9.]+)\s+±\s+[0-9.]+" + _PM + _PM + r"\s+([0-9.]+)\s+±\s+[0-9.]+ %"
                    r"\s+([0-9.]+)\s+±\s+[0-9.]+ %\s*$", re.M)


class ToolError(RuntimeError):
    """A llama.cpp tool failed, or printed no result; the message names the command."""


class ToolchainError(RuntimeError):
    """llama.cpp's source tree or tools are missing; ``make tools`` builds them."""


def llama_cpp_home(root: Path | None = None) -> Path:
    """The folder with llama.cpp's source (``src/``) and built tools (``bin/``)."""
    home = llama_cpp_dir(root)
    if not (home / "src" / "convert_hf_to_gguf.py").is_file():
        raise ToolchainError(f"llama.cpp source not found in {home}/src; run `make tools` (or set {LLAMA_CPP_ENV})")
    return home


def tool(name: str, root: Path | None = None) -> Path:
    path = llama_cpp_home(root) / "bin" / name
    if not path.is_file():
        raise ToolchainError(f"{path} not found; run `make tools`")
    return path


def run_tool(cmd: list[str], what: str, env: dict | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise ToolError(f"{what} failed (exit {proc.returncode}): {' '.join(map(str, cmd))}\n{tail}")
    return proc


def run_perplexity(binary: Path, gguf: Path, text: Path, n_ctx: int, chunks: int, threads: int = 2,
                   emulator: str | None = None, options: list[str] = (), attempts: int = 8,
                   kl_base: Path | None = None, kl_compare: bool = False) -> dict:
    """llama-perplexity's estimate (and its running value per chunk) from ``binary``, optionally under an emulator.

    With ``kl_base`` alone the run also saves its log-probabilities there
    (``--kl-divergence-base``); with ``kl_compare`` it scores the tokens of that
    file instead and returns llama-perplexity's KL divergence statistics against
    it (``--kl-divergence``), read from its last chunk row (the summary block is
    only printed for 100 tokens or more).
    """
    cmd = ([emulator] if emulator else []) + [str(binary), "-m", str(gguf), "-f", str(text), "-c", str(n_ctx),
                                              "--chunks", str(chunks), "-b", str(n_ctx), "-t", str(threads),
                                              *options]
    if kl_base is not None:
        cmd += ["--kl-divergence-base", str(kl_base)] + (["--kl-divergence"] if kl_compare else [])
    log = ""
    for _ in range(attempts):
        proc = subprocess.run(cmd, capture_output=True, text=True)
        log = proc.stdout + proc.stderr
        if proc.returncode != 0:
            raise ToolError(f"{' '.join(cmd)} failed (exit {proc.returncode}):\n{log[-1500:]}")
        if kl_compare:
            rows = [m.groups() for m in KL_ROW.finditer(log)]
            if len(rows) == chunks:
                last = [float(x) for x in rows[-1][1:]]
                # (ln(PPL(Q)/PPL(base)) is not kept: the base file stores log-probabilities clipped and
                # rounded to 16 bits, which biases it on flat predictions even between identical runs)
                return {"ppl": last[0], "chunks": [float(r[1]) for r in rows], "kld": last[3], "kld_se": last[4],
                        "dp_rms_pct": last[5], "same_top_pct": last[6]}
        else:
            m = FINAL_PPL.search(log)
            if m:
                return {"ppl": float(m.group(1)), "ppl_stderr": float(m.group(2)),
                        "chunks": [float(v) for _, v in CHUNK_PPL.findall(log)]}
        # llama.cpp logs from a background thread; on a loaded machine the host build (OpenMP) was seen to exit
        # (code 0) without its last lines, chunk values and summary alike, in 3 of 10 runs: run it again
    raise ToolError(f"no perplexity estimate in the output of {' '.join(cmd)}:\n{log[-1500:]}")


def run_llama_bench(gguf: Path, n_prompt: int, n_gen: int, reps: int, threads: int,
                    root: Path | None = None) -> dict[str, dict]:
    """``llama-bench -o json`` on ``gguf``: its pp and tg tests by name (``pp512``, ``tg128``), as it reports them."""
    cmd = [str(tool("llama-bench", root)), "-m", str(gguf), "-p", str(n_prompt), "-n", str(n_gen), "-r", str(reps),
           "-t", str(threads), "-o", "json"]
    runs = json.loads(run_tool(cmd, "llama-bench").stdout)
    return {(f"pp{r['n_prompt']}" if r["n_prompt"] else f"tg{r['n_gen']}"): r for r in runs}


def tool_versions(root: Path | None = None) -> dict:
    """The llama.cpp build the tools came from (recorded with every result); None where there are no tools, or no
    project to find them in (the command line outside a checkout)."""
    try:
        # llama-quantize has no --version; llama-perplexity is built from the same tree
        proc = subprocess.run([str(tool("llama-perplexity", root)), "--version"], capture_output=True, text=True)
        text = (proc.stdout + proc.stderr).strip().splitlines()
        return {"llama.cpp": " ".join(line.strip() for line in text if line.startswith(("version", "built")))}
    except (ToolchainError, ProjectNotFound):
        return {"llama.cpp": None}
