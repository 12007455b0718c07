"""This host as a device profile: the readings of :mod:`.host` with a measured memory bandwidth."""

from __future__ import annotations

import os
import platform

from .fleet import HOST, Cluster, Cpu, Device, Power
from .host import cpuinfo, fp32_flops_per_cycle, host_isa, measure_bandwidth, ram_bytes, rapl_domains


def host_device(threads: int, power_w: dict, bandwidth_gbs: float | None = None) -> Device:
    """This machine as a device profile: cores, ISA, RAM and clock read from it, bandwidth measured.

    Only the cores the study uses (``threads``) count: the projection is
    calibrated on runs with that many threads. Power is an assumption (a VM
    cannot read its share of the package power) and is labelled so.
    """
    info = cpuinfo()
    flags = set((info.get("flags") or info.get("Features") or "").split())
    per_cycle, basis = fp32_flops_per_cycle(flags, info.get("vendor_id", ""))
    ghz = float(info.get("cpu MHz", 0) or 0) / 1000 or 2.0
    cores = min(threads, os.cpu_count() or 1)
    ram = (ram_bytes() or 0) / 1e9
    bw = bandwidth_gbs if bandwidth_gbs is not None else measure_bandwidth(threads)
    isa = host_isa()
    model = info.get("model name") or platform.processor() or platform.machine()
    how = "measured: read from /proc/cpuinfo and /proc/meminfo on this machine"
    return Device(
        name=HOST, display=f"this host ({cores} threads)", class_="server", os="linux",
        cpu=Cpu(model=model, isa=isa, cores=cores,
                clusters=[Cluster(core=model, count=cores, ghz=round(ghz, 3), fp32_flops_per_cycle=per_cycle)],
                peak_gflops_fp32=cores * round(ghz, 3) * per_cycle),
        ram_gb=round(ram, 2), memory="measured copy bandwidth", memory_bandwidth_gbs=round(bw, 2),
        power_w=Power(**power_w), sensor="rapl" if rapl_domains() else "none", runner="local",
        sources={"cpu.cores": how, "cpu.clusters": how, "cpu.peak_gflops_fp32": f"measured: clock x {basis}",
                 "ram_gb": how,
                 "memory_bandwidth_gbs": f"measured: best of 5 torch copies of 512 MiB with {threads} threads",
                 **{f"power_w.{k}": "assumed: params devices.host_power_w (a VM cannot read its package power)"
                    for k in ("idle", "load", "peak")}},
        notes=("Peak FP32 is the nominal clock times the FMA width of the reported vector extensions. "
               "Memory bandwidth is achieved (measured), the fleet's is theoretical: projections from this host "
               "are therefore optimistic by the devices' achieved/theoretical bandwidth ratio."),
        measured_here=True,
    )
