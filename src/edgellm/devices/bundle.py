"""Deployment bundles: one folder per device and variant that runs on the device with one command.

A bundle holds the GGUF file (``model.gguf``), llama.cpp's ``llama-bench``,
``llama-completion`` and ``llama-perplexity`` built for the device's ISA
(aarch64 binaries are cross-compiled by ``make cross`` with Debian's
``gcc-aarch64-linux-gnu``, statically linked so that they run on any aarch64
Linux or Android without a matching C library), ``run.sh``, a ``SHA256SUMS``
file (``sha256sum -c``) and ``manifest.json`` with the sha256, size and role
of every file plus what produced it.

Two aarch64 builds: ``aarch64`` (Armv8.2-A with the dot product: Pi 5,
Jetson, phones) and ``aarch64-armv8a`` (plain Armv8-A: the Pi Zero 2 W's
Cortex-A53, on which the first build stops with SIGILL).

The ARM builds are proven here, not on a device: :func:`emulation_check` runs
an aarch64 ``llama-perplexity`` under ``qemu-aarch64-static`` (the plain
Armv8-A build with qemu emulating a Cortex-A53, so that an instruction the
A53 lacks would stop it) on a short text and compares it with the host
build. Timings under emulation mean nothing and are never recorded.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from ..io import atomic_dir, sha256_file
from ..llamacpp.convert import quantize
from ..llamacpp.tools import ToolchainError, llama_cpp_home, run_perplexity
from ..paths import RUN_SH_TEMPLATE, cross_armv8a_dir, cross_dir
from .fleet import Device
from .host import host_isa

BUNDLE_TOOLS = ("llama-bench", "llama-completion", "llama-perplexity")
QEMU = "qemu-aarch64-static"
#: the aarch64 builds of ``make cross``: where each lives, and the CPU qemu emulates when checking it (None:
#: qemu's default model, which has every extension the Armv8.2-A build uses)
CROSS_BUILDS = {"aarch64": (cross_dir, None), "aarch64-armv8a": (cross_armv8a_dir, "cortex-a53")}


class BundleError(RuntimeError):
    pass


def binaries_dir(build: str, root: Path | None = None) -> Path:
    """Where the llama.cpp binaries of ``build`` are: the host's tools, or one of the aarch64 cross builds."""
    if build == host_isa():
        d = llama_cpp_home(root) / "bin"
    else:
        if build not in CROSS_BUILDS:
            raise BundleError(f"no {build} build: only the host's ISA and {sorted(CROSS_BUILDS)} (make cross) are built")
        d = CROSS_BUILDS[build][0](root) / "bin"
    missing = [t for t in BUNDLE_TOOLS if not (d / t).is_file()]
    if missing:
        hint = "make tools" if build == host_isa() else "make cross"
        raise ToolchainError(f"{missing} not found in {d}; run `{hint}`")
    return d


@contextmanager
def qemu_cpu(model: str | None) -> Iterator[None]:
    """qemu-user emulates CPU ``model`` for the processes started inside (``QEMU_CPU``; None: its default)."""
    before = os.environ.get("QEMU_CPU")
    if model is None:
        os.environ.pop("QEMU_CPU", None)
    else:
        os.environ["QEMU_CPU"] = model
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("QEMU_CPU", None)
        else:
            os.environ["QEMU_CPU"] = before


def _link_or_copy(src: Path, dst: Path) -> None:
    """A hard link where possible: seven variants x five devices of copies would be gigabytes."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def render_run_sh(device: Device, variant: str, n_prompt: int, n_gen: int, reps: int) -> str:
    subs = {"VARIANT": variant, "DEVICE": device.name, "ISA": device.cpu.isa, "THREADS": str(device.cpu.cores),
            "REPS": str(reps), "SENSOR": device.sensor, "N_PROMPT": str(n_prompt), "N_GEN": str(n_gen)}
    text = RUN_SH_TEMPLATE.read_text()
    for k, v in subs.items():
        text = text.replace(f"@{k}@", v)
    if "@" in re.sub(r"\S+@\S+", "", text.replace('"$@"', "")):
        raise BundleError("run.sh.in has an unfilled placeholder")
    return text


def make_bundle(out: Path, device: Device, variant: str, gguf: Path, *, n_prompt: int, n_gen: int, reps: int,
                provenance: dict, root: Path | None = None, hashes: dict[Path, str] | None = None) -> dict:
    """Write the bundle folder ``out`` atomically and return its manifest.

    ``hashes`` caches sha256 by source path, so one variant's GGUF is hashed
    once for all devices.
    """
    if device.bundle_build is None:
        raise BundleError(f"{device.name}: no bundle: llama.cpp's CLI binaries cannot run there (runner 'none')")
    bins = binaries_dir(device.bundle_build, root)
    hashes = {} if hashes is None else hashes
    files = {"model.gguf": (Path(gguf), "model")}
    files.update({f"bin/{t}": (bins / t, "binary") for t in BUNDLE_TOOLS})
    with atomic_dir(out) as tmp:
        tmp.chmod(0o755)
        (tmp / "bin").mkdir()
        entries = []
        for rel, (src, role) in files.items():
            _link_or_copy(src, tmp / rel)
            if src not in hashes:
                hashes[src] = sha256_file(src)
            entries.append({"path": rel, "role": role, "sha256": hashes[src], "bytes": src.stat().st_size})
        run_sh = tmp / "run.sh"
        run_sh.write_text(render_run_sh(device, variant, n_prompt, n_gen, reps))
        run_sh.chmod(0o755)
        entries.append({"path": "run.sh", "role": "script", "sha256": sha256_file(run_sh), "bytes": run_sh.stat().st_size})
        (tmp / "SHA256SUMS").write_text("".join(f"{e['sha256']}  {e['path']}\n" for e in entries))
        manifest = {"variant": variant, "device": device.name, "isa": device.cpu.isa, "build": device.bundle_build,
                    "threads": device.cpu.cores,
                    "sensor": device.sensor, "runner": device.runner, "files": entries, **provenance}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def verify_bundle(path: Path) -> list[str]:
    """Files whose bytes differ from the manifest (empty: the bundle is intact)."""
    manifest = json.loads((Path(path) / "manifest.json").read_text())
    bad = []
    for e in manifest["files"]:
        f = Path(path) / e["path"]
        if not f.is_file() or f.stat().st_size != e["bytes"] or sha256_file(f) != e["sha256"]:
            bad.append(e["path"])
    return bad


# --------------------------------------------------------------------------- the ARM build under emulation
def short_text(source: Path, out: Path, chars: int = 16000) -> Path:
    """The first ``chars`` characters of ``source``: enough tokens for a few short chunks, quick to tokenize."""
    with open(source, encoding="utf-8") as f:
        out.write_text(f.read(chars), encoding="utf-8")
    return out


def verdict(host: dict, arm: dict, tolerance: float, kld_tolerance: float) -> dict:
    """Do two builds compute the same model? ``host``: a plain run; ``arm``: a KL run against the host's logits.

    ``same_ppl``: the perplexities agree within ``tolerance`` (relative).
    ``same_predictions``: the mean KL divergence from the host's next-token
    distributions is at most ``kld_tolerance`` nats. Quantized files need the
    second: their matrix products quantize the activations (to Q8_0 / Q8_K),
    and a last-bit difference between two correct builds (ISA kernels, sum
    order) flips some of those roundings; the flips grow through the layers, so
    on a few dozen tokens the perplexities of two correct builds differ by
    percents, while their token distributions stay close (KL ~0.01 nats,
    between two x86 builds as between x86 and aarch64: ``benchmarks/
    bench_cross_build.py``; a 4-bit quantization of the same model is ~0.05).
    """
    rel = abs(arm["ppl"] - host["ppl"]) / host["ppl"]
    same_ppl = rel <= tolerance
    same_pred = arm["kld"] <= kld_tolerance
    return {"ppl_host": host["ppl"], "ppl_aarch64": arm["ppl"], "ppl_host_chunks": host["chunks"],
            "ppl_aarch64_chunks": arm["chunks"], "rel_diff": rel, "tolerance": tolerance, "same_ppl": same_ppl,
            "kld": arm["kld"], "kld_se": arm["kld_se"], "kld_tolerance": kld_tolerance,
            "same_top_pct": arm["same_top_pct"], "dp_rms_pct": arm["dp_rms_pct"], "same_predictions": same_pred}


def compare_builds(gguf: Path, text: Path, *, n_ctx: int, chunks: int, tolerance: float, kld_tolerance: float,
                   threads: int = 2, options: list[str] = (), root: Path | None = None,
                   builds: Sequence[str] = ("aarch64",)) -> dict[str, dict]:
    """Host build vs each aarch64 build of ``builds`` (under qemu, emulating its CPU) on the same GGUF file and
    text: perplexity and KL divergence, per build.

    The host runs once and saves its log-probabilities; each aarch64 run is scored against them (the host's
    run is deterministic, so one serves every build).
    """
    if shutil.which(QEMU) is None:
        raise ToolchainError(f"{QEMU} not found; `make cross` installs qemu-user-static")
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "host.kld"
        host = run_perplexity(binaries_dir(host_isa(), root) / "llama-perplexity", gguf, text, n_ctx, chunks, threads,
                              options=options, kl_base=base)
        for build in builds:
            cpu = CROSS_BUILDS[build][1]
            with qemu_cpu(cpu):
                arm = run_perplexity(binaries_dir(build, root) / "llama-perplexity", gguf, text, n_ctx, chunks,
                                     threads, emulator=QEMU, options=options, kl_base=base, kl_compare=True)
            out[build] = {"n_ctx": n_ctx, "chunks": chunks, "tokens_scored": chunks * (n_ctx - 1 - n_ctx // 2),
                          **verdict(host, arm, tolerance, kld_tolerance), "emulator": QEMU, "host_isa": host_isa(),
                          "build": build, "qemu_cpu": cpu, "options": list(options)}
    return out


def emulation_check(gguf: Path, text: Path, *, n_ctx: int, chunks: int, tolerance: float, kld_tolerance: float,
                    control_n_ctx: int, threads: int = 2, options: list[str] = (), root: Path | None = None,
                    builds: Sequence[str] = ("aarch64",)) -> dict[str, dict]:
    """Per aarch64 build of ``builds``: the GGUF file as deployed, and a control: the same weights dequantized
    to F32 (once, for every build).

    In float32 both builds do the same arithmetic up to the order of sums:
    the control must give the same perplexity (``tolerance``). The deployed
    file must give the same perplexity or, for quantized activations (see
    :func:`verdict`), the same predictions (``kld_tolerance``). Either
    failing means the aarch64 build computes another model.
    """
    out = compare_builds(gguf, text, n_ctx=n_ctx, chunks=chunks, tolerance=tolerance, kld_tolerance=kld_tolerance,
                         threads=threads, options=options, root=root, builds=builds)
    with tempfile.TemporaryDirectory() as tmp:
        f32 = Path(tmp) / "F32.gguf"
        quantize(gguf, f32, "F32", threads, root=root, allow_requantize=True)
        control = compare_builds(f32, text, n_ctx=control_n_ctx, chunks=chunks, tolerance=tolerance,
                                 kld_tolerance=kld_tolerance, threads=threads, options=options, root=root,
                                 builds=builds)
    for build, check in out.items():
        check["ok"] = check["same_ppl"] or check["same_predictions"]
        control[build]["ok"] = control[build]["same_ppl"]
        check["control_f32"] = control[build]
    return out


def build_versions(root: Path | None = None) -> dict:
    """``--version`` of the host and the aarch64 llama.cpp builds (the latter under qemu: instant)."""
    out = {}
    for build in (host_isa(), *CROSS_BUILDS):
        try:
            exe = binaries_dir(build, root) / "llama-bench"
        except ToolchainError:
            out[f"llama.cpp-{build}"] = None
            continue
        cmd = ([QEMU] if build != host_isa() else []) + [str(exe), "--version"]
        with qemu_cpu(CROSS_BUILDS.get(build, (None, None))[1]):
            proc = subprocess.run(cmd, capture_output=True, text=True)
        out[f"llama.cpp-{build}"] = " ".join(ln.strip() for ln in (proc.stdout + proc.stderr).splitlines()
                                             if ln.startswith(("version", "built")))
    return out


def require_same_model(variant: str, check: dict) -> None:
    """Raise :class:`BundleError` unless :func:`emulation_check` found that the aarch64 build computes the same model."""
    c = check["control_f32"]
    build = check.get("build", "aarch64")
    if not c["ok"]:
        raise BundleError(
            f"{variant}: in float32 the {build} build's perplexity under qemu ({c['ppl_aarch64']:.4f}) differs from "
            f"the host build's ({c['ppl_host']:.4f}) by {c['rel_diff']:.2%} > devices.emulation_check.tolerance")
    if not check["ok"]:
        raise BundleError(
            f"{variant}: the {build} build under qemu computes another model: perplexity {check['ppl_aarch64']:.4f} "
            f"vs the host build's {check['ppl_host']:.4f} ({check['rel_diff']:.2%} > devices.emulation_check."
            f"tolerance) and KL divergence {check['kld']:.4f} nats > devices.emulation_check.kld_tolerance")
