"""This machine, read once: the one reader of ``/proc``, of the CPU's ISA and of RAPL for the whole study.

The profile stage records :func:`host_info` beside its measurements (its child
process imports this module, so it stays light: no pydantic, no yaml, nothing
that would count in the model's memory), :mod:`.host_profile` turns the same
readings into a device profile, and the bundle and energy code ask
:func:`host_isa` and :func:`rapl_domains`.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

#: the name this machine has in every device table
HOST = "this-host"



def cpuinfo() -> dict[str, str]:
    """``/proc/cpuinfo``'s first value of every key (the first core's); empty where there is none."""
    info: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if ":" in line:
                k, v = (s.strip() for s in line.split(":", 1))
                info.setdefault(k, v)
    except OSError:
        pass
    return info


def _proc_kib(path: str, key: str) -> int | None:
    """A ``key: N kB`` line of a /proc file, in bytes."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def ram_bytes() -> int | None:
    """Total RAM (``MemTotal``)."""
    return _proc_kib("/proc/meminfo", "MemTotal")


def rss_bytes() -> int:
    """This process's resident set size now (``VmRSS``)."""
    return _proc_kib("/proc/self/status", "VmRSS") or 0


def host_isa() -> str:
    """The instruction set llama.cpp's host build targets: ``aarch64`` or ``x86_64``."""
    return "aarch64" if platform.machine() in ("aarch64", "arm64") else "x86_64"


def host_info() -> dict:
    """What this host is: enough to tell two machines' numbers apart."""
    return {"name": HOST, "cpu": cpuinfo().get("model name") or platform.processor(), "cores": os.cpu_count(),
            "machine": platform.machine(), "ram_bytes": ram_bytes(), "system": platform.system()}


def fp32_flops_per_cycle(flags: set[str], vendor: str) -> tuple[int, str]:
    """FP32 FLOP per cycle and core from the vector extensions the CPU reports (two FMA pipes assumed)."""
    if "avx512f" in flags and "Intel" in vendor:
        return 64, "AVX-512: 2 FMA pipes x 16 FP32 lanes x 2"
    if "avx2" in flags and "fma" in flags:
        return 32, "AVX2+FMA: 2 FMA pipes x 8 FP32 lanes x 2"
    if "asimd" in flags or platform.machine() == "aarch64":
        return 16, "NEON: 2 FMA pipes x 4 FP32 lanes x 2"
    return 8, "SSE: 2 pipes x 4 FP32 lanes"


def measure_bandwidth(threads: int, mib: int = 512, reps: int = 5) -> float:
    """Achievable copy bandwidth in GB/s (bytes read + written), the best of ``reps`` runs.

    torch's ``copy_`` spreads a large copy over ``threads`` threads, like a
    STREAM copy kernel; llama.cpp's generation streams the weights the same way.
    """
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        n = mib * 2**20 // 4
        a = torch.ones(n, dtype=torch.float32)
        b = torch.empty_like(a)
        b.copy_(a)
        best = float("inf")
        for _ in range(reps):
            t0 = time.perf_counter()
            b.copy_(a)
            best = min(best, time.perf_counter() - t0)
        return 2 * a.numel() * 4 / best / 1e9
    finally:
        torch.set_num_threads(old)


def rapl_domains(root: str | Path | None = None) -> list[Path]:
    """Package-level RAPL energy counters (``intel-rapl:N``), readable on x86 Linux with powercap."""
    base = Path(root or os.environ.get("EDGELLM_POWERCAP", "/sys/class/powercap"))
    # readable, not only present: kernels since 5.10 keep energy_uj root-only (CVE-2020-8694)
    return sorted(p for p in base.glob("intel-rapl:*")
                  if p.name.count(":") == 1 and os.access(p / "energy_uj", os.R_OK))
