"""How far apart are two correct llama.cpp builds? The noise floor behind the bundle stage's check.

The bundle stage compares the aarch64 build (under qemu) with the host build
on a short text. For float weights the two agree to float rounding; for
quantized files their perplexities differ by percents, because quantized
matrix products quantize their activations and last-bit differences grow
through the layers. This benchmark shows that the same happens between two
*x86* builds of the same source: the host's native build and a build with
ggml's generic C kernels (no SIMD, no llamafile), made here by `make generic`.
For every GGUF file of the study it prints, against the host build, the
perplexity difference and the mean KL divergence of the generic x86 build and
of the aarch64 build, under the stage's own settings.

Usage: python benchmarks/bench_cross_build.py [--n-ctx 64] [--chunks 2]  (after `make repro` and `make generic`)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from _common import LAYOUT, ROOT

from edgellm.config import load_params
from edgellm.devices import bundle
from edgellm.devices.host import host_isa
from edgellm.llamacpp.tools import run_perplexity
from edgellm.paths import generic_dir


def main() -> None:
    params = load_params(LAYOUT.params)
    ec = params.devices.emulation_check
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-ctx", type=int, default=ec.n_ctx)
    ap.add_argument("--chunks", type=int, default=ec.chunks)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    generic = generic_dir(ROOT) / "bin" / "llama-perplexity"
    if not generic.is_file():
        sys.exit(f"{generic} not found: run `make generic` first")
    host = bundle.binaries_dir(host_isa(), ROOT) / "llama-perplexity"
    arm = bundle.binaries_dir("aarch64", ROOT) / "llama-perplexity"
    files = sorted(p for p in (LAYOUT.gguf(v.checkpoint, v.qtype) for v in params.all_variants()) if p.is_file())
    if not files:
        sys.exit("no GGUF files under models/gguf: run `make repro` first")
    opts = ec.options
    print(f"{a.chunks} chunks x {a.n_ctx} tokens, options {' '.join(opts)}; against the host build ({host.parent})")
    print(f"{'file':42s} {'PPL host':>10s} {'generic':>10s} {'aarch64':>10s} {'diff gen':>9s} {'diff arm':>9s} "
          f"{'KLD gen':>8s} {'KLD arm':>8s} {'arm/gen':>7s}")
    with tempfile.TemporaryDirectory() as tmp:
        text = bundle.short_text(LAYOUT.wikitext, Path(tmp) / "short.txt")
        for f in files:
            base = Path(tmp) / "host.kld"
            h = run_perplexity(host, f, text, a.n_ctx, a.chunks, a.threads, options=opts, kl_base=base)
            g = run_perplexity(generic, f, text, a.n_ctx, a.chunks, a.threads, options=opts, kl_base=base,
                               kl_compare=True)
            r = run_perplexity(arm, f, text, a.n_ctx, a.chunks, a.threads, emulator=bundle.QEMU, options=opts,
                               kl_base=base, kl_compare=True)
            vg = bundle.verdict(h, g, ec.tolerance, ec.kld_tolerance)
            vr = bundle.verdict(h, r, ec.tolerance, ec.kld_tolerance)
            ratio = vr["kld"] / vg["kld"] if vg["kld"] > 0 else float("nan")
            name = f"{f.parent.name}/{f.name}"
            print(f"{name:42s} {h['ppl']:10.4f} {g['ppl']:10.4f} {r['ppl']:10.4f} {100 * vg['rel_diff']:8.3f}% "
                  f"{100 * vr['rel_diff']:8.3f}% {vg['kld']:8.5f} {vr['kld']:8.5f} {ratio:7.2f}")


if __name__ == "__main__":
    main()
