"""The device fleet's schema: one validated YAML profile per device (this host is read by :mod:`.host`).

A profile holds what the roofline projection and the accessibility and energy
estimates need (cores, peak FP32 throughput, RAM, DRAM bandwidth, power) and a
source link for every number, so a reader can check each one. Profiles live in
``edgellm/devices/profiles/<name>.yaml``; a study may add its own directory of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import ConfigDict, Field, ValidationError, model_validator

from ..config.base import Strict
from ..paths import PROFILES_DIR
from .host import HOST  # noqa: F401 - re-exported: every device table names this host so


class FleetError(ValueError):
    """A bad or missing device profile: the message names the file and the key."""


Pos = Annotated[float, Field(gt=0)]


class Cluster(Strict):
    core: str
    count: Annotated[int, Field(ge=1)]
    ghz: Pos
    fp32_flops_per_cycle: Annotated[int, Field(ge=1)]


class Cpu(Strict):
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


class Power(Strict):
    idle: Pos
    load: Pos   # whole device, all CPU cores busy: the power an inference run draws
    peak: Pos

    @model_validator(mode="after")
    def _ordered(self) -> Power:
        if not self.idle <= self.load <= self.peak:
            raise ValueError(f"power_w must satisfy idle <= load <= peak, got {self.idle}, {self.load}, {self.peak}")
        return self


class Accelerator(Strict):
    """A backend beside the CPU (a GPU through CUDA, Metal, Vulkan or OpenCL), with its own roofs.

    The roofline projects each backend with its own bandwidth and peak throughput
    and its own calibration. ``bundle``: whether the study's bundle for the device
    runs it (the bundles carry CPU builds, so today none does).
    """

    name: Literal["cuda", "metal", "vulkan", "opencl"]
    display: str
    memory_bandwidth_gbs: Pos
    peak_gflops_fp32: Pos
    bundle: bool = False
    sources: dict[str, str]
    notes: str = ""

    @model_validator(mode="after")
    def _sourced(self) -> Accelerator:
        missing = [k for k in ("memory_bandwidth_gbs", "peak_gflops_fp32") if not self.sources.get(k)]
        if missing:
            raise ValueError(f"backend {self.name}: no source for {missing}")
        return self


#: Every number of a profile, by dotted path: each needs an entry in ``sources``.
NUMBERS = ("cpu.cores", "cpu.clusters", "cpu.peak_gflops_fp32", "ram_gb", "memory_bandwidth_gbs",
           "power_w.idle", "power_w.load", "power_w.peak")


class Device(Strict):
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
    #: backends beside the CPU's, each with its own roofs (the CPU's are ``cpu`` and ``memory_bandwidth_gbs``);
    #: left out of dumps, so a record of a device without them reads as before they existed
    backends: list[Accelerator] = Field(default_factory=list, exclude=True)
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
    def backend_names(self) -> list[str]:
        return ["cpu", *(b.name for b in self.backends)]

    def roofs(self, backend: str = "cpu") -> tuple[float, float]:
        """(memory bandwidth GB/s, peak FP32 GFLOPS) of one of the device's backends."""
        if backend == "cpu":
            return self.memory_bandwidth_gbs, self.cpu.peak_gflops_fp32
        for b in self.backends:
            if b.name == backend:
                return b.memory_bandwidth_gbs, b.peak_gflops_fp32
        raise FleetError(f"device {self.name!r} has no backend {backend!r}; it has {self.backend_names}")

    @property
    def ram_bytes(self) -> float:
        return self.ram_gb * 1e9

    @property
    def bundle_build(self) -> str | None:
        """The llama.cpp build a bundle for this device carries (None: no CLI binary runs there, as on iOS).

        aarch64 CPUs with the dot product (Armv8.2-A and later) get the ``aarch64`` build; a Cortex-A53 (the Pi
        Zero 2 W, Armv8.0-A) stops on its first SDOT instruction, so it gets ``aarch64-armv8a``, built without.
        """
        if self.runner == "none":
            return None
        if self.cpu.isa == "aarch64" and not self.cpu.dotprod:
            return "aarch64-armv8a"
        return self.cpu.isa


def invalid(header: str, e: ValidationError, unknown: str = "unknown key") -> str:
    """A validation error as one message: ``header``, then each bad field by its dotted name (a profile's
    key, a published table's column)."""
    lines = [header]
    for err in e.errors():
        loc = ".".join(str(p) for p in err["loc"])
        what = unknown if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
        lines.append(f"  '{loc}': {what}" if loc else f"  {what}")
    return "\n".join(lines)


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
        raise FleetError(invalid(f"{path}: invalid device profile", e)) from None
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
