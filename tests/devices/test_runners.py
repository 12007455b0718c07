"""Runners (``edgellm.devices.runners``): a bundle measured on a device over local, ssh and adb, and the CLI."""

from __future__ import annotations

import getpass
import io
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tarfile
import time

import pytest

from edgellm.devices.bundle import verify_bundle
from edgellm.devices.runners import AdbRunner, LocalRunner, RunnerError, SshRunner, extract_results
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
elif args[0] in ("shell", "exec-out"):
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
        ["-s", "emulator-5554", "exec-out", f"tar -C {remote}/results -cf - ."],
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


# --------------------------------------------------------------------------- a device's archive is not trusted
def _archive(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


GOOD = (_member("./tg.json"), b"[]")
HOSTILE = {
    "absolute": ((_member("/tmp/edgellm-owned"), b"x"), "/tmp/edgellm-owned", "absolute path"),
    "dotdot": ((_member("./../outside/owned"), b"x"), "./../outside/owned", "leaves the folder"),
    "deep dotdot": ((_member("sub/../../owned"), b"x"), "sub/../../owned", "leaves the folder"),
    "symlink": ((_member("./pp.json", tarfile.SYMTYPE, "../outside/secret"), None), "./pp.json", "symbolic link"),
    "hardlink": ((_member("./pp.json", tarfile.LNKTYPE, "/etc/passwd"), None), "./pp.json", "hard link"),
    "char device": ((_member("./null", tarfile.CHRTYPE), None), "./null", "character device"),
    "fifo": ((_member("./pipe", tarfile.FIFOTYPE), None), "./pipe", "FIFO"),
}


def _tree(root) -> dict[str, bytes]:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else b"<dir>")
            for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_results_archive_is_refused_and_changes_nothing(case, tmp_path):
    bad, name, why = HOSTILE[case]
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("kept")
    dest = tmp_path / "variant" / "results"
    dest.mkdir(parents=True)
    before = _tree(tmp_path)
    # the bad member comes after a good one: nothing at all is written, not even the good file
    with pytest.raises(RunnerError) as err:
        extract_results(_archive(GOOD, bad), dest, "device:bench/results")
    assert repr(name) in str(err.value) and why in str(err.value) and "device:bench/results" in str(err.value)
    assert _tree(tmp_path) == before
    assert not os.path.exists("/tmp/edgellm-owned")


def test_a_results_archive_of_regular_files_is_unpacked(tmp_path):
    sub = _member("./power", tarfile.DIRTYPE)
    taken = extract_results(_archive(GOOD, (sub, None), (_member("./power/tg.power"), b"1 2\n")), tmp_path / "r", "d")
    assert taken == ["power/tg.power", "tg.json"]
    assert (tmp_path / "r" / "tg.json").read_bytes() == b"[]"
    assert (tmp_path / "r" / "power" / "tg.power").read_text() == "1 2\n"
    # an archive bomb is refused by its size before anything is written
    big = _member("./huge")
    with pytest.raises(RunnerError, match="'./huge' takes it past 64 MiB"):
        extract_results(_archive((big, b"\0" * (64 * 2**20 + 1))), tmp_path / "bomb", "d")
    assert not (tmp_path / "bomb").exists()
    with pytest.raises(RunnerError, match="not a tar archive"):
        extract_results(b"<html>login</html>", tmp_path / "junk", "d")


def test_a_device_that_plants_a_link_in_its_results_is_refused_over_ssh(sshd, host_bundle, tmp_path):
    """The real transport: the "device" (this machine over loopback ssh) turns a result into a link to a file
    outside; pulling refuses it by name and writes nothing."""
    remote_root = tmp_path / "remote-home" / "edgellm"
    runner = SshRunner(f"{getpass.getuser()}@127.0.0.1", port=sshd["port"], identity=sshd["identity"],
                       remote_root=str(remote_root), options=["-o", f"UserKnownHostsFile={sshd['known_hosts']}"])
    runner.measure(host_bundle, tmp_path / "results", env={"THREADS": "1"})
    results = remote_root / "this-host" / "results"
    (results / "pp.json").unlink()
    (results / "pp.json").symlink_to(tmp_path / "outside-secret")
    local = tmp_path / "pulled"
    local.mkdir()
    with pytest.raises(RunnerError, match=r"member './pp.json' is a symbolic link"):
        runner.pull(str(remote_root / "this-host"), local)
    assert list(local.iterdir()) == []
