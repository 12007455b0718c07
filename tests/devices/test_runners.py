"""Runners (``edgellm.devices.runners``): a bundle measured on a device over local, ssh and adb, and the CLI."""

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

import pytest

from edgellm.devices.bundle import verify_bundle
from edgellm.devices.runners import AdbRunner, LocalRunner, SshRunner
from edgellm.paths import project_root


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
    assert verify_bundle(remote_root / "this-host") == []
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
    """`python -m edgellm.devices.runners` (docs/devices.md's Raspberry Pi command) on this host, into results/measured."""
    repo = tmp_path / "repo"
    (repo / "bundles" / "tiny-Q4_K_M").mkdir(parents=True)
    shutil.copytree(host_bundle, repo / "bundles" / "tiny-Q4_K_M" / "this-host")
    shutil.copy(project_root() / "params.yaml", repo / "params.yaml")
    shutil.copy(project_root() / "dvc.yaml", repo / "dvc.yaml")
    env = dict(os.environ, EDGELLM_ROOT=str(repo))
    out = subprocess.run([sys.executable, "-m", "edgellm.devices.runners", "--device", "this-host", "--runner", "local",
                          "--variant", "tiny-Q4_K_M", "--threads", "1"], cwd=repo, env=env, check=False, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    rec = json.loads((repo / "results" / "measured" / "this-host" / "tiny-Q4_K_M.json").read_text())
    _check_record(rec, threads=1)
