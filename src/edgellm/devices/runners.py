"""Run a bundle on a device and bring its measurements back: one interface, three transports.

- :class:`LocalRunner`: this host, the process pinned to the first ``threads`` cores;
- :class:`SshRunner`: any Linux board reachable by OpenSSH (the bundle travels as a tar stream);
- :class:`AdbRunner`: an Android phone over ``adb`` (push, ``adb shell``, pull).

Each runner copies the bundle, verifies it against its ``SHA256SUMS`` on the
device, runs ``run.sh bench`` (llama-bench with JSON output, sampling the
device's power sensor if it has one), copies ``results/`` back and turns it
into a measured record (:func:`read_results`). Every command a runner sends is
kept in ``runner.commands``, and in the record, so a measurement says how it
was taken.

Command line (what docs/devices.md's Raspberry Pi section uses)::

    python -m edgellm.devices.runners --device raspberry-pi-5 --runner ssh --host pi@raspberrypi.local

A llama-bench JSON file measured elsewhere (published beside a paper or in a
repository) takes the same path (:func:`import_llama_bench`): it becomes
measured records under ``results/measured/<device>/``, which the projection's
validation (:mod:`.validation`) sets beside their projections::

    python -m edgellm.devices.runners --device raspberry-pi-4 --import FILE.json --model Llama-3.2-1B \
        --source https://github.com/OWNER/REPO/blob/COMMIT/PATH
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
from abc import ABC, abstractmethod
from pathlib import Path, PurePosixPath

from ..config import load_params
from ..io import atomic_dir, write_json
from ..paths import Layout, project_root
from . import energy


class RunnerError(RuntimeError):
    pass


class Runner(ABC):
    kind = "abstract"

    def __init__(self) -> None:
        self.commands: list[list[str]] = []

    def _run(self, cmd: list[str], *, input: bytes | None = None, stdout=subprocess.PIPE,
             **kw) -> subprocess.CompletedProcess:
        self.commands.append([str(c) for c in cmd])
        proc = subprocess.run([str(c) for c in cmd], input=input, stdout=stdout, stderr=subprocess.PIPE, **kw)
        if proc.returncode != 0:
            err = (proc.stderr or b"").decode(errors="replace")[-2000:]
            raise RunnerError(f"{self.kind}: `{shlex.join(self.commands[-1])}` failed (exit {proc.returncode}):\n{err}")
        return proc

    @abstractmethod
    def push(self, bundle: Path) -> str:
        """Copy the bundle to the device; return its folder there."""

    @abstractmethod
    def shell(self, remote: str, args: list[str], env: dict[str, str]) -> str:
        """Run ``sh run.sh ARGS`` in the bundle's folder on the device; return its output."""

    @abstractmethod
    def pull(self, remote: str, local: Path) -> None:
        """Copy the device's ``<remote>/results`` into ``local``."""

    def measure(self, bundle: Path, out: Path, env: dict[str, str] | None = None) -> dict:
        """Deploy, verify, benchmark and fetch: the measured record of this bundle on this device."""
        bundle = Path(bundle)
        manifest = json.loads((bundle / "manifest.json").read_text())
        remote = self.push(bundle)
        self.shell(remote, ["check"], {})
        self.shell(remote, ["bench"], env or {})
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        self.pull(remote, out)
        record = read_results(out, manifest)
        record.update(runner=self.kind, commands=self.commands)
        return record


def _env_prefix(env: dict[str, str]) -> list[str]:
    return [f"{k}={v}" for k, v in sorted(env.items())]


class LocalRunner(Runner):
    """This host. The bundle runs in a copy under ``workdir``, pinned to CPUs ``0..threads-1``."""

    kind = "local"

    def __init__(self, workdir: Path, threads: int | None = None) -> None:
        super().__init__()
        self.workdir = Path(workdir)
        self.cpus = sorted(os.sched_getaffinity(0))[:threads] if threads else sorted(os.sched_getaffinity(0))

    def push(self, bundle: Path) -> str:
        dst = self.workdir / bundle.name
        if dst.exists():
            shutil.rmtree(dst)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._run(["cp", "-a", str(bundle), str(dst)])
        return str(dst)

    def shell(self, remote: str, args: list[str], env: dict[str, str]) -> str:
        cpus = set(self.cpus)
        env = {"THREADS": str(len(cpus)), **env}
        proc = self._run(["env", *_env_prefix(env), "sh", "run.sh", *args], cwd=remote,
                         preexec_fn=lambda: os.sched_setaffinity(0, cpus))
        return proc.stdout.decode(errors="replace")

    def pull(self, remote: str, local: Path) -> None:
        self._run(["cp", "-a", f"{remote}/results/.", str(local)])


class SshRunner(Runner):
    """A Linux board over OpenSSH; key-based login (``BatchMode``), the bundle under ``remote_root``."""

    kind = "ssh"

    def __init__(self, host: str, port: int = 22, identity: str | None = None, remote_root: str = "edgellm",
                 options: list[str] | None = None) -> None:
        super().__init__()
        self.host, self.remote_root = host, remote_root.rstrip("/")
        self.base = ["ssh", "-p", str(port), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new"]
        if identity:
            self.base += ["-i", identity]
        self.base += list(options or [])

    def _ssh(self, command: str, **kw) -> subprocess.CompletedProcess:
        return self._run([*self.base, self.host, command], **kw)

    def push(self, bundle: Path) -> str:
        remote = f"{self.remote_root}/{bundle.name}"
        tar = subprocess.run(["tar", "-C", str(bundle.parent), "-cf", "-", bundle.name], capture_output=True,
                             check=True).stdout
        self._ssh(f"rm -rf {shlex.quote(remote)} && mkdir -p {shlex.quote(self.remote_root)} && "
                  f"tar -C {shlex.quote(self.remote_root)} -xf -", input=tar)
        return remote

    def shell(self, remote: str, args: list[str], env: dict[str, str]) -> str:
        cmd = f"cd {shlex.quote(remote)} && {shlex.join(['env', *_env_prefix(env), 'sh', 'run.sh', *args])}"
        return self._ssh(cmd).stdout.decode(errors="replace")

    def pull(self, remote: str, local: Path) -> None:
        data = self._ssh(f"tar -C {shlex.quote(remote)}/results -cf - .").stdout
        extract_results(data, local, f"{self.host}:{remote}/results")


class AdbRunner(Runner):
    """An Android device over adb; the bundle under ``/data/local/tmp`` (executable there without root)."""

    kind = "adb"

    def __init__(self, serial: str | None = None, adb: str = "adb",
                 remote_root: str = "/data/local/tmp/edgellm") -> None:
        super().__init__()
        self.base = [adb] + (["-s", serial] if serial else [])
        self.remote_root = remote_root.rstrip("/")

    def push(self, bundle: Path) -> str:
        remote = f"{self.remote_root}/{bundle.name}"
        self._run([*self.base, "shell", f"rm -rf {shlex.quote(remote)} && mkdir -p {shlex.quote(self.remote_root)}"])
        self._run([*self.base, "push", str(bundle), f"{self.remote_root}/"])
        self._run([*self.base, "shell", f"chmod 755 {shlex.quote(remote)}/bin/*"])
        return remote

    def shell(self, remote: str, args: list[str], env: dict[str, str]) -> str:
        cmd = f"cd {shlex.quote(remote)} && {shlex.join(['env', *_env_prefix(env), 'sh', 'run.sh', *args])}"
        return self._run([*self.base, "shell", cmd]).stdout.decode(errors="replace")

    def pull(self, remote: str, local: Path) -> None:
        # an archive made on the device, not `adb pull`, which recreates the device's links and special files
        data = self._run([*self.base, "exec-out", f"tar -C {shlex.quote(remote)}/results -cf - ."]).stdout
        extract_results(data, local, f"adb:{remote}/results")


# --------------------------------------------------------------------------- results
#: the most a device's results may unpack to: llama-bench JSON, logs and power samples take kilobytes
MAX_RESULTS_BYTES = 64 * 2**20


def _refusal(m: tarfile.TarInfo) -> str | None:
    """Why a member of a device's archive is refused, or None: only regular files and folders, by relative
    paths that stay inside the folder, are taken."""
    name = m.name
    parts = PurePosixPath(name).parts
    if name.startswith("/") or (parts and parts[0].endswith(":")):
        return "an absolute path"
    if ".." in parts:
        return "a path that leaves the folder ('..')"
    if m.issym() or m.islnk():
        return f"a {'symbolic' if m.issym() else 'hard'} link (to {m.linkname!r})"
    if not (m.isfile() or m.isdir()):
        kind = ("a character device" if m.ischr() else "a block device" if m.isblk()
                else "a FIFO" if m.isfifo() else f"a member of tar type {m.type!r}")
        return kind
    return None


def extract_results(archive: bytes, dest: Path, origin: str) -> list[str]:
    """Unpack the results archive a device made into ``dest``, trusting nothing in it.

    A device is not trusted: its archive could name absolute paths, climb out with ``..``, or carry links and
    device files that a later write or read would follow. Every member is checked before anything is written;
    one bad member refuses the whole archive with one error naming it, and ``dest`` is left as it was. The
    accepted files are written into a temporary folder beside ``dest`` and swapped in only when all are written.
    Returns the relative paths of the files taken.
    """
    dest = Path(dest)
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:") as tar:
            members = tar.getmembers()
            total = 0
            for m in members:
                why = _refusal(m)
                if why:
                    raise RunnerError(f"{origin}: refused the results archive: member {m.name!r} is {why}; "
                                      f"nothing was extracted into {dest}")
                total += m.size if m.isfile() else 0
                if total > MAX_RESULTS_BYTES:
                    raise RunnerError(f"{origin}: refused the results archive: member {m.name!r} takes it past "
                                      f"{MAX_RESULTS_BYTES // 2**20} MiB; nothing was extracted into {dest}")
            if dest.exists() and any(dest.iterdir()):
                raise RunnerError(f"{dest}: not empty; the results of one run go into an empty folder")
            taken = []
            with atomic_dir(dest) as tmp:
                tmp.chmod(0o755)
                for m in members:
                    rel = PurePosixPath(m.name)
                    if rel.parts in ((), (".",)):
                        continue
                    target = tmp.joinpath(*rel.parts)
                    if m.isdir():
                        target.mkdir(parents=True, exist_ok=True)
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    src = tar.extractfile(m)
                    assert src is not None  # a regular file always has data
                    target.write_bytes(src.read())
                    target.chmod(0o644)
                    taken.append(rel.as_posix().removeprefix("./"))
    except tarfile.TarError as e:
        raise RunnerError(f"{origin}: the results archive is not a tar archive: {e}") from None
    return sorted(taken)


def _bench(path: Path) -> dict:
    try:
        runs = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise RunnerError(f"{path}: no llama-bench JSON ({e}); see {path.with_suffix('.log')}") from None
    if not isinstance(runs, list) or len(runs) != 1:
        raise RunnerError(f"{path}: expected one llama-bench test, got {runs!r:.200}")
    return runs[0]


def _speeds(pp: dict, tg: dict) -> dict:
    """The fields of a measured record that llama-bench's pp and tg tests give."""
    return {"n_prompt": pp["n_prompt"], "n_gen": tg["n_gen"], "threads": tg["n_threads"],
            "pp_ts": pp["avg_ts"], "pp_stddev": pp["stddev_ts"], "tg_ts": tg["avg_ts"], "tg_stddev": tg["stddev_ts"],
            "build_commit": tg.get("build_commit"), "build_number": tg.get("build_number"),
            "cpu_info": tg.get("cpu_info"), "model_size": tg.get("model_size")}


def read_results(results: Path, manifest: dict) -> dict:
    """``results/`` of ``run.sh bench`` as a measured record: speeds, and energy when a sensor was read."""
    pp, tg = _bench(results / "pp.json"), _bench(results / "tg.json")
    sensor = (results / "sensor").read_text().strip() if (results / "sensor").is_file() else "none"
    rec = {
        "device": manifest["device"], "variant": manifest["variant"], "source": "measured",
        **_speeds(pp, tg), "sensor": sensor,
        "bundle_sha256": {f["path"]: f["sha256"] for f in manifest["files"]},
    }
    for test, ts in (("pp", rec["pp_ts"]), ("tg", rec["tg_ts"])):
        log = results / f"{test}.power"
        if sensor != "none" and log.is_file():
            rec[f"energy_{test}"] = energy.measured(energy.read_samples(log), sensor, ts)
    return rec


#: llama-bench's ``model_type`` names of GGUF types (llama.cpp's llama_model_ftype_name) -> the type's name
FTYPE_NAMES = {"Q4_K - Medium": "Q4_K_M", "Q4_K - Small": "Q4_K_S", "Q5_K - Medium": "Q5_K_M",
               "Q5_K - Small": "Q5_K_S", "Q3_K - Medium": "Q3_K_M", "Q3_K - Small": "Q3_K_S", "Q3_K - Large": "Q3_K_L",
               "Q2_K - Medium": "Q2_K", "Q2_K - Small": "Q2_K_S", "IQ4_XS - 4.25 bpw": "IQ4_XS",
               "IQ4_NL - 4.5 bpw": "IQ4_NL"}
#: the origin of a measured record that came from a published llama-bench file, not from a study bundle
PUBLISHED_ORIGIN = "published llama-bench JSON"


def ftype_of(model_type: str) -> str:
    """``"llama 1B Q4_0"`` -> ``Q4_0``; ``"qwen3 0.6B Q4_K - Medium"`` -> ``Q4_K_M``."""
    parts = model_type.split(" ", 2)
    if len(parts) < 3:
        raise RunnerError(f"llama-bench model_type {model_type!r}: expected '<arch> <size> <type>'")
    name = parts[2].strip()
    return FTYPE_NAMES.get(name, name.split(" ")[0].upper())


def import_llama_bench(path: str | Path, device: str, model: str, source: str) -> list[dict]:
    """A llama-bench JSON file measured on a real device as measured records, one per model file and thread count.

    The pp test is the one with prompt tokens and no generated ones, the tg test the reverse; llama-bench's
    combined ``-pg`` test is neither and is left out. ``model`` names the model's shape in the published-models
    file (``data/published/models.yaml``), ``source`` the address the file was taken from.
    """
    path = Path(path)
    try:
        runs = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise RunnerError(f"{path}: not a llama-bench JSON file: {e}") from None
    need = {"model_filename", "model_type", "model_size", "model_n_params", "n_threads", "n_prompt", "n_gen",
            "avg_ts", "stddev_ts"}
    if not isinstance(runs, list) or not runs or not all(isinstance(r, dict) and need <= r.keys() for r in runs):
        raise RunnerError(f"{path}: expected llama-bench's JSON output (-o json): a list of tests with {sorted(need)}")
    groups: dict[tuple, dict[str, dict]] = {}
    for r in runs:
        test = "pp" if r["n_prompt"] and not r["n_gen"] else "tg" if r["n_gen"] and not r["n_prompt"] else None
        if test:
            groups.setdefault((r["model_filename"], r["n_threads"]), {})[test] = r
    out = []
    for (filename, threads), tests in sorted(groups.items()):
        if set(tests) != {"pp", "tg"}:
            raise RunnerError(f"{path}: {filename} at {threads} threads needs one pp and one tg test, has {sorted(tests)}")
        tg = tests["tg"]
        quant = ftype_of(tg["model_type"])
        out.append({
            "device": device, "variant": f"{model}-{quant}" + (f"-t{threads}" if len(groups) > 1 else ""),
            "source": "measured", "origin": PUBLISHED_ORIGIN, "source_url": source, "file": path.name,
            "model": model, "quant": quant, "model_type": tg["model_type"], "model_filename": filename,
            "model_n_params": tg["model_n_params"], "backends": tg.get("backends", "CPU"),
            "test_time": tg.get("test_time"), **_speeds(tests["pp"], tg),
        })
    return out


def make_runner(kind: str, **kw) -> Runner:
    if kind == "local":
        return LocalRunner(Path(kw.get("workdir") or "models/work/local-runner"), kw.get("threads"))
    if kind == "ssh":
        if not kw.get("host"):
            raise RunnerError("the ssh runner needs --host user@address")
        return SshRunner(kw["host"], kw.get("port") or 22, kw.get("identity"))
    if kind == "adb":
        return AdbRunner(kw.get("serial"))
    raise RunnerError(f"unknown runner {kind!r}; known: local, ssh, adb")


def main(argv: list[str] | None = None, prog: str = "python -m edgellm.devices.runners") -> int:
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", required=True, help="a profile name (src/edgellm/devices/profiles) or this-host")
    how = ap.add_mutually_exclusive_group(required=True)
    how.add_argument("--runner", choices=["local", "ssh", "adb"])
    how.add_argument("--import", dest="import_file", metavar="FILE.json",
                     help="a llama-bench JSON file measured on the device elsewhere (needs --model and --source)")
    ap.add_argument("--model", help="--import: the model's name in data/published/models.yaml")
    ap.add_argument("--source", help="--import: the address the file was taken from")
    ap.add_argument("--variant", action="append",
                    help="variant(s) to measure (default: every bundled variant: the reference and main tier)")
    ap.add_argument("--host", help="ssh: user@address")
    ap.add_argument("--port", type=int, default=22)
    ap.add_argument("--identity", help="ssh: private key file")
    ap.add_argument("--serial", help="adb: device serial")
    ap.add_argument("--threads", type=int, help="THREADS on the device (default: the bundle's, all cores)")
    a = ap.parse_args(argv)
    root = project_root()
    lay = Layout(root)
    if a.import_file:
        if not (a.model and a.source):
            ap.error("--import needs --model and --source")
        for rec in import_llama_bench(a.import_file, a.device, a.model, a.source):
            write_json(lay.measured(a.device, rec["variant"]), rec)
            print(f"{a.device} {rec['variant']}: pp {rec['pp_ts']:.2f} t/s, tg {rec['tg_ts']:.2f} t/s "
                  f"-> {lay.measured(a.device, rec['variant'])}")
        return 0
    params = load_params(root / "params.yaml")
    variants = a.variant or [v.name for v in params.all_variants() if v.tier != "frontier"]
    runner = make_runner(a.runner, host=a.host, port=a.port, identity=a.identity, serial=a.serial,
                         threads=a.threads, workdir=lay.work("local-runner"))
    for v in variants:
        bundle = lay.bundle(v, a.device)
        if not (bundle / "manifest.json").is_file():
            raise RunnerError(f"no bundle {bundle}; run `dvc repro` (the bundle stages) first")
        runner.commands = []
        env = {"THREADS": str(a.threads)} if a.threads else {}
        rec = runner.measure(bundle, lay.work("measured") / a.device / v, env)
        write_json(lay.measured(a.device, v), rec)
        print(f"{a.device} {v}: pp {rec['pp_ts']:.1f} t/s, tg {rec['tg_ts']:.1f} t/s -> {lay.measured(a.device, v)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
