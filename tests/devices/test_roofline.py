"""The roofline projection (``edgellm.devices.roofline``): from a GGUF file's shape and one host to the fleet."""

from __future__ import annotations

import numpy as np
import pytest

from edgellm.devices import fleet, roofline
from edgellm.devices.host_profile import host_device
from edgellm.llamacpp.gguf import inspect_gguf


def _shape(tiny_gguf, qtype="Q4_K_M"):
    return roofline.shape_of(inspect_gguf(tiny_gguf[qtype])["tensors"])


def test_shape_counts_what_a_token_reads(tiny_gguf):
    rec = inspect_gguf(tiny_gguf["Q8_0"])
    s = roofline.shape_of(rec["tensors"])
    by = {t["name"]: t for t in rec["tensors"]}
    total = sum(t["bytes"] for t in rec["tensors"])
    # untied: the embedding lookup reads one row, the output head the whole output matrix
    assert s.weight_bytes == total and s.bytes_per_token == total - by["token_embd.weight"]["bytes"]
    assert s.n_layer == 2 and s.kv_dim == 128 and s.q_dim == 256
    assert s.kv_bytes(10) == 2 * 2 * 128 * 2 * 10
    # 2 FLOP per multiplied weight: every matrix except the embedding table
    n_mat = sum(np.prod(t["shape"]) for t in rec["tensors"]
                if len(t["shape"]) == 2 and t["name"] != "token_embd.weight")
    assert s.flops(0) == 2 * n_mat


def test_projection_onto_the_calibration_host_reproduces_its_measurements(tiny_gguf):
    host = host_device(2, {"idle": 2, "load": 10, "peak": 15}, bandwidth_gbs=20.0)
    s = _shape(tiny_gguf)
    cal = roofline.calibrate(s, host, pp_ts=900.0, tg_ts=300.0, n_prompt=512, n_gen=128,
                             peak_rss_model_bytes=50e6, file_bytes=3_000_000)
    p = roofline.project(s, cal, host)
    assert p["pp_ts"] == pytest.approx(900.0) and p["tg_ts"] == pytest.approx(300.0)
    # memory-bound generation scales with bandwidth, prompt processing with peak throughput
    pi = fleet.load_fleet(["raspberry-pi-5"])[0]
    q = roofline.project(s, cal, pi)
    assert q["pp_ts"] == pytest.approx(900.0 * pi.cpu.peak_gflops_fp32 / host.cpu.peak_gflops_fp32)
    if q["tg_bound"] == "memory":
        assert q["tg_ts"] == pytest.approx(300.0 * pi.memory_bandwidth_gbs / 20.0)
    # a slow core makes generation compute-bound: the roofline's other side
    zero = fleet.load_fleet(["raspberry-pi-zero-2w"])[0]
    slow = zero.model_copy(update={"memory_bandwidth_gbs": 1e6})
    r = roofline.project(s, cal, slow)
    assert r["tg_bound"] == "compute" and r["tg_ts"] < q["tg_ts"] * 1e6 / pi.memory_bandwidth_gbs
    # memory: file + KV cache + the overhead measured on the host
    mem = roofline.memory_required(s, cal, 3_000_000, 2048)
    assert mem == pytest.approx(3_000_000 + s.kv_bytes(2048) + cal.overhead_bytes)
    acc = roofline.accessible(mem, zero, 9.9, memory_share=0.5, min_tg_ts=10)
    assert acc["fits"] and not acc["fast_enough"] and not acc["accessible"]
    assert not roofline.accessible(0.51 * zero.ram_bytes, zero, 50, 0.5, 10)["fits"]
