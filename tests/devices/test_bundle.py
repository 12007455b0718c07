"""Devices: profiles, bundles (and the aarch64 build under qemu), runners, roofline, energy."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from edgellm import bundle, energy, fleet, roofline
from edgellm.convert import inspect_gguf
from edgellm.runners import AdbRunner, LocalRunner, SshRunner

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- profiles
def test_every_shipped_profile_is_valid_and_sourced():
    names = fleet.available()
    assert {"raspberry-pi-5", "jetson-orin-nano", "pixel-8", "iphone-15-pro"} <= set(names)
    for d in fleet.load_fleet(names):
        assert set(fleet.NUMBERS) <= set(d.sources), d.name
        assert all(s.startswith("https://") for s in d.sources.values()), d.name
        assert d.cpu.isa == "aarch64" and d.class_ in ("phone", "single-board-computer", "edge-gpu-board")
    assert fleet.load_fleet(["iphone-15-pro"])[0].bundle_isa is None  # no CLI binaries on iOS
    assert fleet.load_fleet(["raspberry-pi-zero-2w"])[0].bundle_isa is None  # Cortex-A53: no dot product
    assert fleet.load_fleet(["raspberry-pi-5"])[0].bundle_isa == "aarch64"


def _profile(tmp_path, **change) -> Path:
    raw = yaml.safe_load((fleet.PROFILES_DIR / "raspberry-pi-5.yaml").read_text())
    for key, value in change.items():
        node = raw
        *path, last = key.split("__")
        for p in path:
            node = node[p]
        if value is None:
            del node[last]
        else:
            node[last] = value
    p = tmp_path / "raspberry-pi-5.yaml"
    p.write_text(yaml.safe_dump(raw))
    return p


@pytest.mark.parametrize("change, message", [
    ({"sources__memory_bandwidth_gbs": None}, "no source for ['memory_bandwidth_gbs']"),
    ({"cpu__peak_gflops_fp32": 500.0}, "cpu.peak_gflops_fp32 is 500.0 but the clusters give 153.6"),
    ({"cpu__cores": 8}, "cpu.cores is 8 but the clusters hold 4"),
    ({"ram": 8}, "'ram': unknown key"),
    ({"power_w__idle": 30.0}, "idle <= load <= peak"),
    ({"sources__ram_gb": "the box"}, "sources must be links"),
])
def test_bad_profile_names_file_and_key(tmp_path, change, message):
    path = _profile(tmp_path, **change)
    with pytest.raises(fleet.FleetError) as e:
        fleet.load_device(path)
    assert str(path) in str(e.value) and message in str(e.value)


def test_unknown_device_in_params_is_named(tmp_path):
    from edgellm.config import ParamsError, load_params

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["devices"] = {"fleet": ["raspberry-pi-5", "commodore-64"]}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ParamsError, match=r"devices.fleet.*no device profile for \['commodore-64'\]"):
        load_params(tmp_path / "params.yaml")


def test_host_profile_is_read_from_the_machine():
    host = fleet.host_device(2, {"idle": 2, "load": 10, "peak": 15}, bandwidth_gbs=None)
    assert host.cpu.cores == min(2, os.cpu_count()) and host.runner == "local" and host.measured_here
    assert host.cpu.isa == bundle.host_isa()
    assert 1 < host.memory_bandwidth_gbs < 1000 and host.ram_gb > 1
    assert host.sources["memory_bandwidth_gbs"].startswith("measured:")
    assert host.sources["power_w.load"].startswith("assumed:")


# --------------------------------------------------------------------------- roofline
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
    host = fleet.host_device(2, {"idle": 2, "load": 10, "peak": 15}, bandwidth_gbs=20.0)
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


# --------------------------------------------------------------------------- energy
def test_energy_from_power_logs(tmp_path):
    t = np.arange(0, 11) * 0.1 * 1e9                         # 1 s in 0.1 s steps, unix ns
    ina = tmp_path / "ina.power"                             # 5,000 mV x 2,000 mA = 10 W
    ina.write_text("".join(f"{int(x)} 5000 2000\n" for x in t))
    m = energy.measured(energy.read_samples(ina), "ina3221", tokens_per_s=20.0)
    assert m["power_w"] == pytest.approx(10.0) and m["j_per_token"] == pytest.approx(0.5)
    assert m["energy_source"] == "measured (ina3221)"
    bat = tmp_path / "bat.power"                             # 4 V x -1.5 A (discharging) = 6 W
    bat.write_text("".join(f"{int(x)} 4000000 -1500000\n" for x in t))
    assert energy.mean_power(energy.read_samples(bat), "android-battery")[0] == pytest.approx(6.0)
    # RAPL: a cumulative counter that wraps around at max_energy_range_uj; 7 W throughout
    rng = 10_000_000
    e = (np.arange(0, 11) * 700_000 + rng - 3_000_000) % rng
    rapl = tmp_path / "rapl.power"
    rapl.write_text("".join(f"{int(x)} {int(v)} {rng}\n" for x, v in zip(t, e)))
    assert energy.mean_power(energy.read_samples(rapl), "rapl")[0] == pytest.approx(7.0)
    est = energy.estimated(9.8, 49.0)
    assert est["j_per_token"] == pytest.approx(0.2) and est["energy_source"].startswith("estimated")
    bad = tmp_path / "bad.power"
    bad.write_text("123 abc 4\n")
    with pytest.raises(energy.EnergyError, match="bad.power:1"):
        energy.read_samples(bad)


def test_rapl_counter_wraps_around(tmp_path, monkeypatch):
    for i, (e, r) in enumerate([(900, 1000), (50, 10_000)]):
        d = tmp_path / f"intel-rapl:{i}"
        d.mkdir()
        (d / "energy_uj").write_text(f"{e}\n")
        (d / "max_energy_range_uj").write_text(f"{r}\n")
    (tmp_path / "intel-rapl:0:0").mkdir()  # a sub-domain (core): inside its package, never counted twice
    monkeypatch.setenv("EDGELLM_POWERCAP", str(tmp_path))
    rapl = energy.RaplCounter.open()
    assert [d.name for d in rapl.domains] == ["intel-rapl:0", "intel-rapl:1"]
    start = rapl.read()
    (tmp_path / "intel-rapl:0" / "energy_uj").write_text("100\n")   # wrapped: 900 -> 1000 = 0 -> 100
    (tmp_path / "intel-rapl:1" / "energy_uj").write_text("2050\n")
    assert rapl.joules_since(start) == pytest.approx((200 + 2000) / 1e6)
    monkeypatch.setenv("EDGELLM_POWERCAP", str(tmp_path / "none"))
    assert energy.RaplCounter.open() is None


def test_profile_measures_energy_from_rapl(tmp_path, monkeypatch, tiny_gguf):
    """The profile stage's tg measures this host's energy per token when RAPL is readable (here: a 2 W fake)."""
    import threading

    from edgellm.devices import bench_tg
    from edgellm.runtime import Model

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


# --------------------------------------------------------------------------- bundles
PROV = {"params": {"test": True}, "versions": {}}


@pytest.fixture(scope="module")
def host_bundle(tmp_path_factory, tiny_gguf) -> Path:
    host = fleet.host_device(1, {"idle": 2, "load": 10, "peak": 15}, bandwidth_gbs=10.0)
    out = tmp_path_factory.mktemp("bundles") / "tiny-Q4_K_M" / "this-host"
    bundle.make_bundle(out, host, "tiny-Q4_K_M", tiny_gguf["Q4_K_M"], n_prompt=32, n_gen=8, reps=2,
                       provenance=PROV, root=ROOT)
    return out


def test_bundle_manifest_and_check(host_bundle, tiny_gguf, tmp_path):
    m = json.loads((host_bundle / "manifest.json").read_text())
    assert {f["path"] for f in m["files"]} == {"model.gguf", "run.sh", "bin/llama-bench", "bin/llama-completion",
                                               "bin/llama-perplexity"}
    model = next(f for f in m["files"] if f["path"] == "model.gguf")
    assert model["sha256"] == bundle.sha256(tiny_gguf["Q4_K_M"])
    assert model["bytes"] == tiny_gguf["Q4_K_M"].stat().st_size
    ok = subprocess.run(["sh", "run.sh", "check"], cwd=host_bundle, capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.count(": OK") == 5, ok.stdout + ok.stderr
    assert bundle.verify_bundle(host_bundle) == []
    # a changed byte is caught, by sha256sum on the device and here
    copy = tmp_path / "copy"
    shutil.copytree(host_bundle, copy)
    (copy / "run.sh").write_text((copy / "run.sh").read_text() + "# edited\n")
    assert bundle.verify_bundle(copy) == ["run.sh"]
    assert subprocess.run(["sh", "run.sh", "check"], cwd=copy, capture_output=True).returncode != 0


def test_bundle_runs_a_completion(host_bundle):
    out = subprocess.run(["sh", "run.sh", "chat", "The"], cwd=host_bundle, capture_output=True,
                         env=dict(os.environ, THREADS="1"), timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    # the tiny model's random weights write arbitrary bytes: the prompt comes back, followed by new tokens
    assert out.stdout.lstrip().startswith(b"The") and len(out.stdout.strip()) > len(b"The")


OPTS = ["-nr", "-fa", "off", "-ctk", "f32", "-ctv", "f32"]  # the stage's: no repacking, no flash attention, F32 KV


def test_aarch64_bundle_under_qemu(tmp_path, tiny_gguf, wiki_file):
    """The cross-compiled binaries are aarch64 and load the GGUF under qemu; the same perplexity as the host."""
    pi = fleet.load_fleet(["raspberry-pi-5"])[0]
    out = bundle.make_bundle(tmp_path / "pi", pi, "tiny-Q4_K_M", tiny_gguf["Q4_K_M"], n_prompt=32, n_gen=8, reps=2,
                             provenance=PROV, root=ROOT)
    assert out["isa"] == "aarch64" and out["threads"] == 4
    kind = subprocess.run(["file", "-b", str(tmp_path / "pi" / "bin" / "llama-bench")], capture_output=True, text=True)
    assert "aarch64" in kind.stdout and "statically linked" in kind.stdout, kind.stdout
    text = bundle.short_text(wiki_file, tmp_path / "short.txt")
    checks = {q: bundle.compare_builds(tiny_gguf[q], text, n_ctx=64, chunks=4, tolerance=1e-3, kld_tolerance=0.05,
                                       options=OPTS, root=ROOT) for q in ("F32", "Q8_0", "Q4_K_M")}
    print({q: (c["ppl_host"], c["ppl_aarch64"], c["rel_diff"], c["kld"]) for q, c in checks.items()})
    for q, c in checks.items():
        assert c["ppl_host"] > 1 and len(c["ppl_aarch64_chunks"]) == 4 and c["tokens_scored"] == 4 * 31, q
    # float32 arithmetic is the same on both ISAs: the same perplexity to the printed digit, the same predictions
    assert checks["F32"]["rel_diff"] < 1e-5 and checks["F32"]["kld"] < 1e-4, checks["F32"]
    assert checks["F32"]["same_top_pct"] == 100.0
    # quantized files: on this 2-layer model the perplexities agree within the 0.1 % asked for (measured: 0.06 %
    # Q8_0, 0.02 % Q4_K_M) and the predictions hardly differ
    for q in ("Q8_0", "Q4_K_M"):
        assert checks[q]["same_ppl"] and checks[q]["same_predictions"], checks[q]
    # the stage's check: the file as deployed, and the same weights dequantized to F32 as the control
    full = bundle.emulation_check(tiny_gguf["Q4_K_M"], text, n_ctx=64, chunks=2, tolerance=1e-3, kld_tolerance=0.05,
                                  control_n_ctx=32, options=OPTS, root=ROOT)
    assert full["ok"] and full["control_f32"]["ok"] and full["control_f32"]["n_ctx"] == 32, full
    assert full["control_f32"]["ppl_host"] != full["ppl_host"]  # a different file: the dequantized weights


def test_emulation_check_catches_a_build_that_computes_another_model(tmp_path, tiny_gguf, wiki_file):
    """The verdict fails when the "device" build computes something else: here, other weights (a 2-bit file)."""
    from edgellm.convert import quantize

    wrong = quantize(tiny_gguf["F32"], tmp_path / "Q2_K.gguf", "Q2_K", threads=2, root=ROOT)
    text = bundle.short_text(wiki_file, tmp_path / "short.txt")
    host_bin = bundle.binaries_dir(bundle.host_isa(), ROOT) / "llama-perplexity"
    base = tmp_path / "host.kld"
    host = bundle.perplexity(host_bin, tiny_gguf["Q4_K_M"], text, 64, 2, options=OPTS, kl_base=base)
    same = bundle.perplexity(host_bin, tiny_gguf["Q4_K_M"], text, 64, 2, options=OPTS, kl_base=base, kl_compare=True)
    other = bundle.perplexity(host_bin, wrong, text, 64, 2, options=OPTS, kl_base=base, kl_compare=True)
    ok = bundle.verdict(host, same, 1e-3, 0.05)
    assert ok["rel_diff"] == 0 and ok["kld"] == 0 and ok["same_ppl"] and ok["same_predictions"], ok
    bad = bundle.verdict(host, other, 1e-3, 0.05)
    print(bad)
    assert not bad["same_ppl"] and not bad["same_predictions"] and bad["same_top_pct"] < 100, bad


# --------------------------------------------------------------------------- runners
def _check_record(rec: dict, threads: int) -> None:
    assert rec["source"] == "measured" and rec["device"] == "this-host" and rec["variant"] == "tiny-Q4_K_M"
    assert rec["n_prompt"] == 32 and rec["n_gen"] == 8 and rec["threads"] == threads
    assert rec["pp_ts"] > 0 and rec["tg_ts"] > 0 and rec["build_commit"]


def test_local_runner_pinned_with_a_power_sensor(host_bundle, tmp_path):
    # a Jetson-style INA3221 rail under a private sysfs: 5,000 mV x 2,000 mA = 10 W
    hw = tmp_path / "sys" / "bus" / "i2c" / "drivers" / "ina3221" / "1-0040" / "hwmon" / "hwmon3"
    hw.mkdir(parents=True)
    (hw / "in1_input").write_text("5000\n")
    (hw / "curr1_input").write_text("2000\n")
    runner = LocalRunner(tmp_path / "device", threads=1)
    rec = runner.measure(host_bundle, tmp_path / "results",
                         env={"SENSOR": "ina3221", "SYSFS": str(tmp_path / "sys")})
    _check_record(rec, threads=1)
    e = rec["energy_tg"]
    assert e["power_w"] == pytest.approx(10.0) and e["j_per_token"] == pytest.approx(10.0 / rec["tg_ts"])
    assert e["samples"] >= 2 and rec["runner"] == "local"
    assert any(c[-2:] == ["run.sh", "bench"] for c in rec["commands"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def sshd(tmp_path):
    """An OpenSSH server on loopback that accepts this user with a key made for the test."""
    exe = shutil.which("sshd") or "/usr/sbin/sshd"
    assert os.path.exists(exe), "sshd not found: `make sysdeps` installs openssh-server"
    d = tmp_path / "ssh"
    d.mkdir()
    for name in ("host", "client"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)], check=True)
    shutil.copy(d / "client.pub", d / "authorized_keys")
    port = _free_port()
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host\nAuthorizedKeysFile {d}/authorized_keys\n"
        f"PidFile {d}/sshd.pid\nStrictModes no\nUsePAM no\nPasswordAuthentication no\nPubkeyAuthentication yes\n"
        "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nLogLevel ERROR\n")
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege separation directory
    proc = subprocess.Popen([exe, "-D", "-e", "-f", str(d / "sshd_config")], stderr=subprocess.PIPE)
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        if proc.poll() is not None:
            raise AssertionError(f"sshd exited: {proc.stderr.read().decode()}")
        time.sleep(0.1)
    yield {"port": port, "identity": str(d / "client"), "known_hosts": str(d / "known_hosts")}
    proc.terminate()
    proc.wait(timeout=10)


def test_ssh_runner_against_a_loopback_server(sshd, host_bundle, tmp_path):
    remote_root = tmp_path / "remote-home" / "edgellm"
    runner = SshRunner(f"{getpass.getuser()}@127.0.0.1", port=sshd["port"], identity=sshd["identity"],
                       remote_root=str(remote_root), options=["-o", f"UserKnownHostsFile={sshd['known_hosts']}"])
    rec = runner.measure(host_bundle, tmp_path / "results", env={"THREADS": "1"})
    _check_record(rec, threads=1)
    assert "energy_tg" not in rec and rec["runner"] == "ssh"
    # the bundle really went through ssh: a copy with its own results on the "device"
    assert bundle.verify_bundle(remote_root / "this-host") == []
    assert json.loads((remote_root / "this-host" / "results" / "tg.json").read_text())[0]["n_gen"] == 8
    assert all(c[0] == "ssh" and "BatchMode=yes" in c for c in runner.commands)


FAKE_ADB = '''#!/usr/bin/env python3
"""A stand-in for adb: the "device" is this machine's file system. Logs every call."""
import json, os, shutil, subprocess, sys
args = sys.argv[1:]
with open(os.environ["FAKE_ADB_LOG"], "a") as f:
    f.write(json.dumps(args) + "\\n")
if args[:1] == ["-s"]:
    args = args[2:]
if args[0] == "push":
    src, dst = args[1], args[2]
    shutil.copytree(src, os.path.join(dst, os.path.basename(src.rstrip("/"))), symlinks=True)
elif args[0] == "pull":
    src, dst = args[1], args[2]
    shutil.copytree(src.removesuffix("/."), dst, dirs_exist_ok=True)
elif args[0] == "shell":
    sys.exit(subprocess.run(["sh", "-c", args[1]]).returncode)
else:
    sys.exit(f"fake adb: unsupported {args}")
'''


def test_adb_runner_sends_adb_commands(host_bundle, tmp_path):
    adb = tmp_path / "adb"
    adb.write_text(FAKE_ADB)
    adb.chmod(adb.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / "adb.log"
    os.environ["FAKE_ADB_LOG"] = str(log)
    try:
        device_root = tmp_path / "data" / "local" / "tmp" / "edgellm"
        runner = AdbRunner(serial="emulator-5554", adb=str(adb), remote_root=str(device_root))
        rec = runner.measure(host_bundle, tmp_path / "results", env={"THREADS": "1"})
    finally:
        del os.environ["FAKE_ADB_LOG"]
    _check_record(rec, threads=1)
    sent = [json.loads(line) for line in log.read_text().splitlines()]
    remote = f"{device_root}/this-host"
    assert sent == [
        ["-s", "emulator-5554", "shell", f"rm -rf {remote} && mkdir -p {device_root}"],
        ["-s", "emulator-5554", "push", str(host_bundle), f"{device_root}/"],
        ["-s", "emulator-5554", "shell", f"chmod 755 {remote}/bin/*"],
        ["-s", "emulator-5554", "shell", f"cd {remote} && env sh run.sh check"],
        ["-s", "emulator-5554", "shell", f"cd {remote} && env THREADS=1 sh run.sh bench"],
        ["-s", "emulator-5554", "pull", f"{remote}/results/.", str(tmp_path / "results")],
    ]
    # the defaults are adb's real ones: /data/local/tmp is where shell-user binaries may run
    assert AdbRunner().remote_root == "/data/local/tmp/edgellm"


def test_runner_command_line_writes_a_measured_record(host_bundle, tmp_path):
    """`python -m edgellm.runners` (the README's Raspberry Pi command) on this host, into results/measured."""
    repo = tmp_path / "repo"
    (repo / "bundles" / "tiny-Q4_K_M").mkdir(parents=True)
    shutil.copytree(host_bundle, repo / "bundles" / "tiny-Q4_K_M" / "this-host")
    shutil.copy(ROOT / "params.yaml", repo / "params.yaml")
    shutil.copy(ROOT / "dvc.yaml", repo / "dvc.yaml")
    env = dict(os.environ, EDGELLM_ROOT=str(repo))
    out = subprocess.run([sys.executable, "-m", "edgellm.runners", "--device", "this-host", "--runner", "local",
                          "--variant", "tiny-Q4_K_M", "--threads", "1"], cwd=repo, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    rec = json.loads((repo / "results" / "measured" / "this-host" / "tiny-Q4_K_M.json").read_text())
    _check_record(rec, threads=1)
