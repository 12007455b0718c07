"""Figures and tables of the device fleet: accessibility, energy per token, profiles, bundle checks.

Measured and projected numbers never look alike: in the accessibility table
measured cells are marked; energy bars are solid when measured and hatched when
estimated; every caption says which is which. Only the deployed (reference and
main-tier) variants appear.
Figures are named after their file stems, like every figure of the report.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..config import Params
from ..devices.fleet import HOST, Device, load_fleet
from ..io import write_text
from ..paths import Layout
from ..records import BundleRecord, FleetSummary
from .latex import Macro, Tex, generated_by, header_lines, latex_table, tex_escape
from .plotting import figure, matplotlib, plt, savefig
from .results import short_name


def _order(rows: pd.DataFrame) -> tuple[list[str], list[str]]:
    variants = list(dict.fromkeys(rows["variant"]))
    devices = list(dict.fromkeys(rows["device"]))
    return variants, devices


def energy_per_token(rows: pd.DataFrame, out_dir: Path, bases: dict[str, str]) -> list[Path]:
    """Energy per generated token of every deployed variant on every device; hatched bars are estimates.
    ``bases``: variant -> its base model (the labels omit it)."""
    variants, devices = _order(rows)
    fig, ax = figure(1.0, 2.9)
    width = 0.8 / len(devices)
    colors = plt.get_cmap("tab10")
    for j, d in enumerate(devices):
        sub = rows[rows.device == d].set_index("variant").loc[variants]
        for i, (v, r) in enumerate(sub.iterrows()):
            est = str(r["energy_source"]).startswith("estimated")
            # estimates: a light fill with dense dark hatching, visible in print and in greyscale
            ax.bar(i + (j - (len(devices) - 1) / 2) * width, r["mj_per_token"], width,
                   color=matplotlib.colors.to_rgba(colors(j), 0.45 if est else 1.0), hatch="////" if est else None,
                   edgecolor="0.15", linewidth=0.4, label=r["device_display"] if i == 0 else None)
    ax.set_xticks(range(len(variants)), [short_name(v, bases[v]) for v in variants], rotation=20, ha="right")
    ax.set_ylabel("energy per generated token (mJ)")
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False)
    return savefig(fig, out_dir / "energy_per_token")


def devices_table(host: Device, fleet: list[Device]) -> str:
    rows = []
    for d in [host, *fleet]:
        rows.append([d.display, d.class_.replace("single-board-computer", "SBC"),
                     f"{d.cpu.cores} {d.cpu.isa}", f"{d.ram_gb:g}", f"{d.memory_bandwidth_gbs:g}",
                     f"{d.cpu.peak_gflops_fp32:.0f}", f"{d.power_w.load:g}", d.sensor, d.runner])
    return latex_table(
        ["Device", "Class", "Cores", "RAM GB", "BW GB/s", "FP32 GFLOPS", "Load W", "Sensor", "Runner"], rows,
        "The device fleet. Numbers come from the device profiles (\\texttt{src/edgellm/devices/profiles}), each with a "
        "source link; bandwidth and FP32 peak are theoretical. This host's cores, RAM and clock are read from the "
        "machine, its bandwidth is measured and "
        + ("its energy is measured from its RAPL counters." if host.sensor == "rapl" else
           "its power is an assumption (it has no readable RAPL counters, as in most VMs)."),
        "tab:devices", "lllrrrrll")


def accessibility_table(rows: pd.DataFrame, acc: pd.DataFrame, memory_share: float, min_tg: float) -> str:
    variants, devices = _order(rows)
    idx = rows.set_index(["variant", "device"])
    share = acc.set_index("variant")["fleet_share"]
    body = []
    for v in variants:
        cells = []
        for d in devices:
            r = idx.loc[(v, d)]
            txt = f"{r['tg_ts']:.0f}" + ("$^{m}$" if r["measured"] else "")
            cells.append(Tex(txt if r["accessible"] else f"({txt})"))
        body.append([v, f"{idx.loc[(v, devices[0]), 'mem_required_mb']:.0f}", *cells, f"{100 * share[v]:.0f}"])
    labels = [header_lines(rows[rows.device == d]["device_display"].iloc[0].split(" (")[0]) for d in devices]
    return latex_table(
        ["Variant", "Mem MB", *labels, "Fleet %"], body,
        f"Generation speed (tokens/s) of every variant on every device and the share of the fleet (this host "
        f"excluded) it is accessible on: it fits {100 * memory_share:.0f}\\% of the device's RAM and generates at least "
        f"{min_tg:g} tokens/s. $^{{m}}$ measured; all other speeds are projected by a roofline calibrated on "
        "this host. Parenthesized: not accessible.", "tab:accessibility", "lr" + "r" * len(devices) + "r")


def bundles_table(records: list[BundleRecord]) -> str:
    body = []
    for r in records:
        c, k = r.emulation_check, r.emulation_check.control_f32
        body.append([r.variant, f"{c.ppl_host:.3f}", f"{c.ppl_aarch64:.3f}", f"{100 * c.rel_diff:.3f}",
                     f"{c.kld:.4f}", f"{c.same_top_pct:.1f}", f"{k.ppl_host:.3f}", f"{k.ppl_aarch64:.3f}",
                     f"{100 * k.rel_diff:.4f}"])
    c0 = records[0].emulation_check
    k0 = c0.control_f32
    return latex_table(
        ["Variant", "PPL x86-64", "PPL aarch64", "Diff. %", "KLD", "Top-1 %", "F32: x86-64", "F32: aarch64",
         "Diff. %"],
        body,
        f"The aarch64 build of the device bundles under \\texttt{{qemu-aarch64-static}} against the host build: "
        f"llama-perplexity on the same text, for the deployed GGUF file ({c0.chunks} chunks of {c0.n_ctx} "
        f"tokens; KLD: mean KL divergence in nats from the host build's next-token distributions, Top-1: same most "
        f"likely token) and for a control, the same weights dequantized to F32 ({k0.chunks} chunks of "
        f"{k0.n_ctx} tokens), options \\texttt{{{tex_escape(' '.join(c0.options))}}}. The control must give the "
        f"same perplexity within {100 * c0.tolerance:g}\\%, the deployed file the same perplexity or a KLD of at "
        f"most {c0.kld_tolerance:g}, else the stage fails. Quantized matrix products quantize their activations, "
        "and last-bit differences between two correct builds flip some of those roundings; the flips grow through "
        "the layers, so on a short text the perplexities of quantized files differ by percents while the "
        "predictions stay close. Timings under emulation are not reported.",
        "tab:bundles", "lrrrrrrrr")


def fleet_records(params: Params, lay: Layout) -> tuple[pd.DataFrame, pd.DataFrame, FleetSummary,
                                                         list[BundleRecord]]:
    """The fleet stage's tables and summary, and the bundle records of the study's variants."""
    rows = pd.read_csv(lay.fleet_table)
    acc = pd.read_csv(lay.accessibility_table)
    summary = FleetSummary.load(lay.fleet_summary)
    bundles = [BundleRecord.load(lay.bundle_record(v)) for v in params.variants() if lay.bundle_record(v).is_file()]
    # frontier-tier variants are not bundled: their records say so and carry no check
    return rows, acc, summary, [b for b in bundles if b.emulation_check is not None]


def device_numbers(params: Params, lay: Layout, rows: pd.DataFrame, acc: pd.DataFrame, host: Device,
                   fleet: list[Device], bundles: list[BundleRecord]) -> dict[str, Macro]:
    """The numbers the paper quotes about the fleet, each with the file (and column) it came from."""
    dp = params.devices
    rel = lambda p: p.relative_to(lay.root).as_posix()
    fleet_csv, fleet_json = rel(lay.fleet_table), rel(lay.fleet_summary)
    bundle_files = "results/bundles/*.json" if not bundles else rel(lay.bundle_record(bundles[0].variant)).rsplit(
        "/", 1)[0] + "/*.json"
    fleet_rows = rows[rows.device != HOST]
    checks = [b.emulation_check for b in bundles]
    share = acc.set_index("variant")["fleet_share"]
    n = {
        "fleetSize": (len(fleet), f"{fleet_json}: fleet"),
        "memoryShare": (f"{100 * dp.memory_share:.0f}", "params.yaml: devices.memory_share"),
        "minTg": (f"{dp.min_tg_ts:g}", "params.yaml: devices.min_tg_ts"),
        "nCtxDevices": (dp.n_ctx, "params.yaml: devices.n_ctx"),
        "measuredCells": (int(fleet_rows["measured"].sum()), f"{fleet_csv}: measured (fleet devices)"),
        "projectedCells": (int((~fleet_rows["measured"].astype(bool)).sum()),
                           f"{fleet_csv}: measured (fleet devices, not measured)"),
        "hostBandwidth": (f"{host.memory_bandwidth_gbs:.1f}", f"{fleet_json}: host.memory_bandwidth_gbs"),
        "hostPeakGflops": (f"{host.cpu.peak_gflops_fp32:.0f}", f"{fleet_json}: host.cpu.peak_gflops_fp32"),
        "emulationMaxDiff": (f"{100 * max(c.rel_diff for c in checks):.3f}" if checks else "--",
                             f"{bundle_files}: emulation_check.rel_diff (max)"),
        "emulationPassed": (sum(c.ok for c in checks), f"{bundle_files}: emulation_check.ok (count)"),
        "emulationChecked": (len(checks), f"{bundle_files} (count)"),
        "emulationSamePpl": (sum(c.same_ppl for c in checks), f"{bundle_files}: emulation_check.same_ppl (count)"),
        "emulationMaxKld": (f"{max(c.kld for c in checks):.4f}" if checks else "--",
                            f"{bundle_files}: emulation_check.kld (max)"),
        "emulationTolerance": (f"{100 * checks[0].tolerance:g}" if checks else "--",
                               f"{bundle_files}: emulation_check.tolerance"),
        "emulationKldTolerance": (f"{checks[0].kld_tolerance:g}" if checks else "--",
                                  f"{bundle_files}: emulation_check.kld_tolerance"),
        "controlMaxDiff": (f"{100 * max(c.control_f32.rel_diff for c in checks):.4f}" if checks else "--",
                           f"{bundle_files}: emulation_check.control_f32.rel_diff (max)"),
        "minFleetShare": (f"{100 * share.min():.0f}", f"{rel(lay.accessibility_table)}: fleet_share (min)"),
        "maxFleetShare": (f"{100 * share.max():.0f}", f"{rel(lay.accessibility_table)}: fleet_share (max)"),
    }
    origin = f"{__name__}.{device_numbers.__qualname__}"
    return {k: Macro(v, origin, src) for k, (v, src) in n.items()}


def build_devices(params: Params, lay: Layout) -> tuple[list[Path], list[Path], dict[str, Macro]]:
    """Figures and tables of the fleet stage's results; returns them and the numbers the paper quotes."""
    rows, acc, summary, bundles = fleet_records(params, lay)
    # devices are the main tier's: frontier-tier variants trace the trade-off curve, they are not deployed
    deployed = [v.name for v in params.all_variants() if v.tier != "frontier"]
    rows, acc = rows[rows["variant"].isin(deployed)], acc[acc["variant"].isin(deployed)]
    host = Device.model_validate(summary.host)
    fleet = load_fleet(summary.fleet)
    dp = params.devices
    figs = energy_per_token(rows, lay.figures, {v.name: v.base for v in params.all_variants()})
    tabs = []
    rel = lambda p: p.relative_to(lay.root).as_posix()
    for name, func, source, text in (
            ("devices", devices_table, f"{rel(lay.fleet_summary)} and the device profiles", devices_table(host, fleet)),
            ("accessibility", accessibility_table, f"{rel(lay.fleet_table)} and {rel(lay.accessibility_table)}",
             accessibility_table(rows, acc, dp.memory_share, dp.min_tg_ts)),
            *((("bundles", bundles_table, "results/bundles/*.json", bundles_table(bundles)),) if bundles else ())):
        path = lay.tables / f"{name}.tex"
        write_text(path, generated_by(func, source) + text)
        tabs.append(path)
    return figs, tabs, device_numbers(params, lay, rows, acc, host, fleet, bundles)
