"""Stage ``bundle@<variant>``: bundles for this host and every fleet device with a runner, and a qemu check of each
aarch64 build they ship (the Armv8.2-A build; the plain Armv8-A build as a Cortex-A53, when a device needs it).
The check is of the builds' kernels: a compressed checkpoint's bundle skips it unless devices.emulation_check.compressed
(its file holds the tensor types of the base model's file of the same type, which is checked)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from ..config import ParamsError
from ..devices import bundle
from ..devices.fleet import load_fleet
from ..devices.host_profile import host_device
from ..provenance import versions
from ..records import BundleRecord
from .common import context, study_variant, variant_fields


def run(variant: str, params_path: str | Path | None = None) -> dict:
    params, lay = context(params_path)
    v = study_variant(lay, variant)
    if v.tier == "frontier":
        raise ParamsError(f"{variant} is a frontier-tier variant: it traces the trade-off curve and is not deployed")
    gguf = lay.gguf(v.checkpoint, v.qtype)
    dp, pr = params.devices, params.profile
    devices = [host_device(params.threads, dp.host_power_w.model_dump(), bandwidth_gbs=1.0)]
    devices += [d for d in load_fleet(dp.fleet) if d.bundle_build]
    prov = {"params": {"variant": variant_fields(v), "threads": params.threads,
                       "profile": {"n_prompt": pr.n_prompt, "n_gen": pr.n_gen},
                       "devices": {"fleet": list(dp.fleet), "repetitions": dp.repetitions,
                                   "emulation_check": dp.emulation_check.model_dump(mode="json")}},
            "versions": {"llama-cpp-python": versions()["llama-cpp-python"], **bundle.build_versions()}}
    hashes: dict = {}
    manifests = {}
    for d in devices:
        m = bundle.make_bundle(lay.bundle(variant, d.name), d, variant, gguf, n_prompt=pr.n_prompt,
                               n_gen=pr.n_gen, reps=dp.repetitions, provenance=prov, root=lay.root, hashes=hashes)
        manifests[d.name] = {"path": str(lay.bundle(variant, d.name).relative_to(lay.root)), "isa": d.cpu.isa,
                             "build": d.bundle_build, "files": m["files"]}
    ec = dp.emulation_check
    if v.recipe is not None and not ec.compressed:
        record = {**variant_fields(v), "bundles": manifests, "emulation_check": None, "versions": prov["versions"],
                  "skipped": f"emulation check: the kernels of {v.qtype} are checked on the base model's file "
                             "(devices.emulation_check.compressed)"}
        BundleRecord.model_validate(record).write(lay.bundle_record(variant))
        return record
    builds = ["aarch64"] + [b for b in bundle.CROSS_BUILDS if b != "aarch64" and any(d.bundle_build == b
                                                                                       for d in devices)]
    with tempfile.TemporaryDirectory() as tmp:
        text = bundle.short_text(lay.wikitext, Path(tmp) / "short.txt")
        checks = bundle.emulation_check(
            gguf, text, n_ctx=ec.n_ctx, chunks=ec.chunks, tolerance=ec.tolerance, kld_tolerance=ec.kld_tolerance,
            control_n_ctx=ec.control_n_ctx, options=ec.options, threads=params.threads, root=lay.root, builds=builds)
    for check in checks.values():
        bundle.require_same_model(variant, check)
    record = {**variant_fields(v), "bundles": manifests, "emulation_check": checks["aarch64"],
              "emulation_check_armv8a": checks.get("aarch64-armv8a"), "versions": prov["versions"]}
    BundleRecord.model_validate(record).write(lay.bundle_record(variant))
    return record
