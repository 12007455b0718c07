"""Energy per token: measured from a power sensor when the device has one, otherwise estimated.

A bundle's ``run.sh`` samples the device's sensor while ``llama-bench`` runs
(see :mod:`edgellm.devices.bundle`) and writes one line per sample,
``<unix ns> <a> <b>``, to ``results/<test>.power``. What ``a`` and ``b`` are
depends on the sensor:

- ``rapl``: cumulative package energy in microjoules (``energy_uj``) and the
  counter's wrap-around range (``max_energy_range_uj``);
- ``ina3221`` (Jetson): rail voltage in mV and current in mA of the board's
  input rail (``in1_input``, ``curr1_input``);
- ``android-battery``: battery voltage in uV and current in uA
  (``voltage_now``, ``current_now``; the sign of the current differs between
  phones, so its magnitude is used; the phone must run on battery, e.g. adb
  over Wi-Fi, or the charger supplies part of the power).

On this host the profile stage reads the RAPL counters itself around each
timed generation run (:class:`RaplCounter`), when they are readable.

Without a sensor the energy is the profile's whole-device load power times the
measured or projected time per token, and is labelled ``estimated``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .host import rapl_domains

SENSORS = ("rapl", "ina3221", "android-battery")


class EnergyError(ValueError):
    pass


def read_samples(path: str | Path) -> np.ndarray:
    """The power log as an (n, 3) array: time in seconds, then the sensor's two readings."""
    rows = []
    for i, line in enumerate(Path(path).read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        try:
            rows.append([float(p) for p in parts[:3]])
        except ValueError:
            raise EnergyError(f"{path}:{i}: not a power sample: {line!r}") from None
    arr = np.array(rows, dtype=float).reshape(-1, 3)
    arr[:, 0] /= 1e9
    return arr


def mean_power(samples: np.ndarray, sensor: str) -> tuple[float, float]:
    """(mean power in W, seconds covered) from a power log."""
    if len(samples) < 2:
        raise EnergyError(f"{sensor}: need at least two power samples, got {len(samples)}")
    seconds = samples[-1, 0] - samples[0, 0]
    if seconds <= 0:
        raise EnergyError(f"{sensor}: power samples do not advance in time")
    if sensor == "rapl":
        energy, span = samples[:, 1], samples[:, 2]
        steps = np.diff(energy)
        steps = np.where(steps < 0, steps + span[1:], steps)   # the counter wrapped around
        return float(steps.sum() / 1e6 / seconds), float(seconds)
    if sensor == "ina3221":
        watts = samples[:, 1] * samples[:, 2] / 1e6           # mV x mA
    elif sensor == "android-battery":
        watts = samples[:, 1] * np.abs(samples[:, 2]) / 1e12  # uV x uA
    else:
        raise EnergyError(f"unknown sensor {sensor!r}; known: {SENSORS}")
    # trapezoidal mean over time: samples need not be evenly spaced
    t = samples[:, 0]
    return float(np.sum((watts[1:] + watts[:-1]) / 2 * np.diff(t)) / seconds), float(seconds)


def measured(samples: np.ndarray, sensor: str, tokens_per_s: float) -> dict:
    watts, seconds = mean_power(samples, sensor)
    return {"j_per_token": watts / tokens_per_s, "power_w": watts, "seconds": seconds,
            "samples": int(len(samples)), "energy_source": f"measured ({sensor})"}


class RaplCounter:
    """This host's package energy counters (Linux powercap), read around a measurement.

    The profile stage uses it so that this host's energy per token is measured
    whenever the counters are readable (x86 Linux, not in most VMs; root on
    kernels that restrict ``energy_uj``), like a bundle's ``run.sh`` on a device.
    """

    def __init__(self, domains: list[Path]) -> None:
        self.domains = domains
        self.ranges = [int((d / "max_energy_range_uj").read_text()) for d in domains]

    @classmethod
    def open(cls) -> "RaplCounter | None":
        domains = rapl_domains()
        return cls(domains) if domains else None

    def read(self) -> list[int]:
        return [int((d / "energy_uj").read_text()) for d in self.domains]

    def joules_since(self, start: list[int]) -> float:
        """Energy of all packages since ``start`` (a counter wraps around at its range)."""
        return sum((b - a) % r for a, b, r in zip(start, self.read(), self.ranges)) / 1e6


def from_counter(joules: float, seconds: float, tokens: int, sensor: str) -> dict:
    """A measurement from an energy counter read before and after ``tokens`` tokens."""
    return {"j_per_token": joules / tokens, "power_w": joules / seconds, "seconds": seconds, "samples": 2,
            "energy_source": f"measured ({sensor})"}


def estimated(load_power_w: float, tokens_per_s: float) -> dict:
    """Whole-device load power over the time per token: an upper bound's worth of assumptions, labelled."""
    return {"j_per_token": load_power_w / tokens_per_s, "power_w": load_power_w,
            "energy_source": "estimated (profile load power x time per token)"}
