"""The device fleet: one validated YAML profile per device, plus this host read from the machine.

A profile holds what the roofline projection and the accessibility and energy
estimates need (cores, peak FP32 throughput, RAM, DRAM bandwidth, power) and a
source link for every number, so a reader can check each one. Profiles live in
``edgellm/profiles/<name>.yaml``; a study may add its own directory of them.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

PROFILES_DIR = Path(__file__).with_name("profiles")
HOST = "this-host"


class FleetError(ValueError):
    """A bad or missing device profile: the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Pos = Annotated[float, Field(gt=0)]


class Cluster(_Strict):
    core: str
    count: Annotated[int, Field(ge=1)]
    ghz: Pos
    fp32_flops_per_cycle: Annotated[int, Field(ge=1)]


class Cpu(_Strict):
    model: str
    isa: Literal["aarch64", "x86_64"]
    cores: Annotated[int, Field(ge=1)]
    clusters: Annotated[list[Cluster], Field(min_length=1)]
    peak_gflops_fp32: Pos
    #: Armv8.2-A dot product extension (the aarch64 bundle's build needs it; Cortex-A53 lacks it)
    dotprod: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> Cpu:
        n = sum(c.count for c in self.clusters)
        if n != self.cores:
            raise ValueError(f"cpu.cores is {self.cores} but the clusters hold {n} cores")
        peak = sum(c.count * c.ghz * c.fp32_flops_per_cycle for c in self.clusters)
        if abs(peak - self.peak_gflops_fp32) > 0.02 * peak:
            raise ValueError(f"cpu.peak_gflops_fp32 is {self.peak_gflops_fp32} but the clusters give {peak:.1f} "
                             "(sum of count x GHz x FP32 FLOP/cycle)")
        return self


class Power(_Strict):
    idle: Pos
    load: Pos   # whole device, all CPU cores busy: the power an inference run draws
    peak: Pos

    @model_validator(mode="after")
    def _ordered(self) -> Power:
        if not self.idle <= self.load <= self.peak:
            raise ValueError(f"power_w must satisfy idle <= load <= peak, got {self.idle}, {self.load}, {self.peak}")
        return self


#: Every number of a profile, by dotted path: each needs an entry in ``sources``.
NUMBERS = ("cpu.cores", "cpu.clusters", "cpu.peak_gflops_fp32", "ram_gb", "memory_bandwidth_gbs",
           "power_w.idle", "power_w.load", "power_w.peak")


class Device(_Strict):
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")]
    display: str
    # "server" is this host when it is a cloud VM (the calibration machine, not a fleet member)
    class_: Literal["phone", "single-board-computer", "edge-gpu-board", "laptop", "server"] = Field(alias="class")
    os: Literal["linux", "android", "ios"]
    cpu: Cpu
    ram_gb: Pos
    memory: str
    memory_bandwidth_gbs: Pos
    power_w: Power
    #: the power sensor an on-device measurement can read
    sensor: Literal["none", "rapl", "ina3221", "android-battery"] = "none"
    #: how the study reaches the device: ssh (Linux boards), adb (Android), local (this host), none (iOS)
    runner: Literal["ssh", "adb", "local", "none"]
    sources: dict[str, str]
    notes: str = ""
    #: True when the numbers were read or measured on this machine (this host)
    measured_here: bool = False

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _sourced(self) -> Device:
        missing = [k for k in NUMBERS if not self.sources.get(k)]
        if missing:
            raise ValueError(f"no source for {missing}: every number needs a link (sources.<field>)")
        bad = {k: v for k, v in self.sources.items()
               if not (v.startswith(("https://", "http://")) or v.startswith("measured:") or v.startswith("assumed:"))}
        if bad:
            raise ValueError(f"sources must be links (https://...), 'measured: <how>' or 'assumed: <why>': {bad}")
        return self

    @property
    def ram_bytes(self) -> float:
        return self.ram_gb * 1e9

    @property
    def bundle_isa(self) -> str | None:
        """The llama.cpp build a bundle for this device carries (None: none of our builds runs there)."""
        if self.runner == "none" or (self.cpu.isa == "aarch64" and not self.cpu.dotprod):
            return None
        return self.cpu.isa


def load_device(path: str | Path) -> Device:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise FleetError(f"{path}: cannot read device profile: {e}") from None
    if not isinstance(raw, dict):
        raise FleetError(f"{path}: a device profile is a mapping")
    try:
        dev = Device.model_validate(raw)
    except ValidationError as e:
        lines = [f"{path}: invalid device profile"]
        for err in e.errors():
            loc = ".".join(str(p) for p in err["loc"])
            what = "unknown key" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
            lines.append(f"  '{loc}': {what}" if loc else f"  {what}")
        raise FleetError("\n".join(lines)) from None
    if dev.name != path.stem:
        raise FleetError(f"{path}: name {dev.name!r} must equal the file name {path.stem!r}")
    return dev


def available(directory: Path = PROFILES_DIR) -> list[str]:
    return sorted(p.stem for p in directory.glob("*.yaml"))


def load_fleet(names: list[str], directory: Path = PROFILES_DIR) -> list[Device]:
    out = []
    for n in names:
        path = directory / f"{n}.yaml"
        if not path.is_file():
            raise FleetError(f"device {n!r}: no profile {path}; known: {available(directory)}")
        out.append(load_device(path))
    return out


# --------------------------------------------------------------------------- this host
def _cpuinfo() -> dict[str, str]:
    info: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if ":" in line:
                k, v = (s.strip() for s in line.split(":", 1))
                info.setdefault(k, v)
    except OSError:
        pass
    return info


def _fp32_flops_per_cycle(flags: set[str], vendor: str) -> tuple[int, str]:
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


def host_device(threads: int, power_w: dict, bandwidth_gbs: float | None = None) -> Device:
    """This machine as a device profile: cores, ISA, RAM and clock read from it, bandwidth measured.

    Only the cores the study uses (``threads``) count: the projection is
    calibrated on runs with that many threads. Power is an assumption (a VM
    cannot read its share of the package power) and is labelled so.
    """
    info = _cpuinfo()
    flags = set((info.get("flags") or info.get("Features") or "").split())
    per_cycle, basis = _fp32_flops_per_cycle(flags, info.get("vendor_id", ""))
    ghz = float(info.get("cpu MHz", 0) or 0) / 1000 or 2.0
    cores = min(threads, os.cpu_count() or 1)
    ram = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram = int(line.split()[1]) * 1024 / 1e9
    except OSError:
        pass
    bw = bandwidth_gbs if bandwidth_gbs is not None else measure_bandwidth(threads)
    isa = "aarch64" if platform.machine() in ("aarch64", "arm64") else "x86_64"
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


def rapl_domains(root: str | Path | None = None) -> list[Path]:
    """Package-level RAPL energy counters (``intel-rapl:N``), readable on x86 Linux with powercap."""
    base = Path(root or os.environ.get("EDGELLM_POWERCAP", "/sys/class/powercap"))
    # readable, not only present: kernels since 5.10 keep energy_uj root-only (CVE-2020-8694)
    return sorted(p for p in base.glob("intel-rapl:*")
                  if p.name.count(":") == 1 and os.access(p / "energy_uj", os.R_OK))
