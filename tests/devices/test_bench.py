"""The profile stage's measurements (``edgellm.devices.bench``) on a tiny model."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from edgellm.devices.bench import bench_tg
from edgellm.llamacpp.runtime import Model


def test_profile_measures_energy_from_rapl(tmp_path, monkeypatch, tiny_gguf):
    """The profile stage's tg measures this host's energy per token when RAPL is readable (here: a 2 W fake)."""
    d = tmp_path / "intel-rapl:0"
    d.mkdir()
    (d / "max_energy_range_uj").write_text("262143328850\n")
    counter = d / "energy_uj"
    t_start, stop = time.monotonic(), threading.Event()

    def package_at_2_watts():
        while not stop.is_set():
            tmp = d / "energy_uj.tmp"
            tmp.write_text(f"{int((time.monotonic() - t_start) * 2e6)}\n")
            tmp.replace(counter)
            time.sleep(0.0005)

    counter.write_text("0\n")
    writer = threading.Thread(target=package_at_2_watts, daemon=True)
    writer.start()
    monkeypatch.setenv("EDGELLM_POWERCAP", str(tmp_path))
    try:
        with Model(tiny_gguf["Q4_K_M"], n_ctx=256, n_batch=256, n_threads=1) as m:
            tg = bench_tg(m, 256, threads=1, reps=3, rng=np.random.default_rng(0))
    finally:
        stop.set()
        writer.join()
    e = tg["energy"]
    assert e["energy_source"] == "measured (rapl)"
    assert e["power_w"] == pytest.approx(2.0, rel=0.25), e
    assert e["j_per_token"] == pytest.approx(e["power_w"] / tg["avg_ts"], rel=0.25), (e, tg)
    monkeypatch.setenv("EDGELLM_POWERCAP", str(tmp_path / "none"))
    with Model(tiny_gguf["Q4_K_M"], n_ctx=64, n_batch=64, n_threads=1) as m:
        assert "energy" not in bench_tg(m, 16, threads=1, reps=2, rng=np.random.default_rng(0))
