"""Figures and tables of the device fleet: accessibility heatmap, energy per token, profiles, bundle checks.

Measured and projected numbers never look alike: in the heatmap measured cells
are bold with an asterisk, projected ones plain; energy bars are solid when
measured and hatched when estimated; every caption says which is which.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .fleet import HOST, Device, load_fleet  # noqa: E402
from .io import read_json, write_text  # noqa: E402


def _order(rows: pd.DataFrame) -> tuple[list[str], list[str]]:
    variants = list(dict.fromkeys(rows["variant"]))
    devices = list(dict.fromkeys(rows["device"]))
    return variants, devices


def heatmap(rows: pd.DataFrame, out_dir: Path, memory_share: float, min_tg: float, n_ctx: int) -> list[Path]:
    from .report import _savefig

    variants, devices = _order(rows)
    idx = rows.set_index(["variant", "device"])
    acc = np.array([[float(idx.loc[(v, d), "accessible"]) for d in devices] for v in variants])
    # drawn near the paper's text width, so that it prints legibly
    fig, ax = plt.subplots(figsize=(0.85 * len(devices) + 2.6, 0.3 * len(variants) + 1.9))
    ax.imshow(acc, cmap=matplotlib.colors.ListedColormap(["#f4a582", "#92c5de"]), vmin=0, vmax=1, aspect="auto")
    for i, v in enumerate(variants):
        for j, d in enumerate(devices):
            r = idx.loc[(v, d)]
            mark = "*" if r["measured"] else ""
            why = "" if r["accessible"] else (" mem" if not r["fits"] else " slow")
            ax.text(j, i, f"{r['tg_ts']:.0f}{mark}{why}", ha="center", va="center", fontsize=7.5,
                    fontweight="bold" if r["measured"] else "normal",
                    fontstyle="normal" if r["measured"] else "italic")
    labels = {d: rows[rows.device == d]["device_display"].iloc[0] for d in devices}
    ax.set_xticks(range(len(devices)), [textwrap.fill(labels[d], 14) for d in devices], fontsize=7)
    ax.grid(False)
    ax.set_yticks(range(len(variants)), variants, fontsize=7.5)
    ax.set_title(textwrap.fill(f"Generation speed (tokens/s) per device; blue = accessible (fits {memory_share:.0%} "
                               f"of RAM with {n_ctx} tokens of context and >= {min_tg:g} tok/s). * bold: measured; "
                               "italic: projected (roofline calibrated on this host); mem/slow: why not accessible",
                               100), fontsize=7.5)
    fig.tight_layout()
    return _savefig(fig, out_dir / "accessibility_heatmap")


def energy_figure(rows: pd.DataFrame, out_dir: Path) -> list[Path]:
    from .report import _savefig

    variants, devices = _order(rows)
    fig, ax = plt.subplots(figsize=(max(6.2, 0.75 * len(variants) + 1.5), 4.4))  # near the paper's text width
    width = 0.8 / len(devices)
    colors = plt.get_cmap("tab10")
    for j, d in enumerate(devices):
        sub = rows[rows.device == d].set_index("variant").loc[variants]
        for i, (v, r) in enumerate(sub.iterrows()):
            est = str(r["energy_source"]).startswith("estimated")
            ax.bar(i + (j - (len(devices) - 1) / 2) * width, r["mj_per_token"], width, color=colors(j),
                   hatch="///" if est else None, edgecolor="white" if est else colors(j),
                   label=r["device_display"] if i == 0 else None)
    ax.set_xticks(range(len(variants)), variants, rotation=30, ha="right", fontsize=7)
    ax.tick_params(axis="y", labelsize=7)
    ax.set_ylabel("energy per generated token (mJ)", fontsize=8)
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.01), ncol=3, frameon=False,
              title="Energy per token: hatched = estimated (profile load power x time per token), "
                    "solid = measured by a power sensor", title_fontsize=8)
    fig.tight_layout()
    return _savefig(fig, out_dir / "energy_per_token")


def _esc(s) -> str:
    return str(s).replace("_", r"\_").replace("%", r"\%").replace("&", r"\&")


def devices_table(host: Device, fleet: list[Device]) -> str:
    from .report import _latex_table

    rows = []
    for d in [host, *fleet]:
        rows.append([d.display, d.class_.replace("single-board-computer", "SBC"),
                     f"{d.cpu.cores} {d.cpu.isa}", f"{d.ram_gb:g}", f"{d.memory_bandwidth_gbs:g}",
                     f"{d.cpu.peak_gflops_fp32:.0f}", f"{d.power_w.load:g}", d.sensor, d.runner])
    return _latex_table(
        ["Device", "Class", "Cores", "RAM GB", "BW GB/s", "FP32 GFLOPS", "Load W", "Sensor", "Runner"], rows,
        "The device fleet. Numbers come from the device profiles (\\texttt{src/edgellm/profiles}), each with a "
        "source link; bandwidth and FP32 peak are theoretical. This host's cores, RAM and clock are read from the "
        "machine, its bandwidth is measured and "
        + ("its energy is measured from its RAPL counters." if host.sensor == "rapl" else
           "its power is an assumption (it has no readable RAPL counters, as in most VMs)."),
        "tab:devices", "lllrrrrll")


def _header_lines(name: str, width: int = 16) -> str:
    """A device name as a column header of short lines, so that long names do not widen the table."""
    lines = textwrap.wrap(name, width)
    if len(lines) < 2:
        return _esc(name)
    return "\\shortstack[r]{" + "\\\\".join(_esc(x) for x in lines) + "}"


def accessibility_table(rows: pd.DataFrame, acc: pd.DataFrame, memory_share: float, min_tg: float) -> str:
    from .report import _latex_table

    variants, devices = _order(rows)
    idx = rows.set_index(["variant", "device"])
    share = acc.set_index("variant")["fleet_share"]
    body = []
    for v in variants:
        cells = []
        for d in devices:
            r = idx.loc[(v, d)]
            txt = f"{r['tg_ts']:.0f}" + ("$^{m}$" if r["measured"] else "")
            cells.append(txt if r["accessible"] else f"({txt})")
        body.append([v, f"{idx.loc[(v, devices[0]), 'mem_required_mb']:.0f}", *cells, f"{100 * share[v]:.0f}"])
    labels = [_header_lines(rows[rows.device == d]["device_display"].iloc[0].split(" (")[0]) for d in devices]
    return _latex_table(
        ["Variant", "Mem MB", *labels, "Fleet \\%"], body,
        f"Generation speed (tokens/s) of every variant on every device and the share of the fleet (this host "
        f"excluded) it is accessible on: it fits {100 * memory_share:.0f}\\% of the device's RAM and generates at least "
        f"{min_tg:g} tokens/s. $^{{m}}$ measured; all other speeds are projected by a roofline calibrated on "
        "this host. Parenthesized: not accessible.", "tab:accessibility", "lr" + "r" * len(devices) + "r")


def bundles_table(records: list[dict]) -> str:
    from .report import _latex_table

    body = []
    for r in records:
        c, k = r["emulation_check"], r["emulation_check"]["control_f32"]
        body.append([r["variant"], f"{c['ppl_host']:.3f}", f"{c['ppl_aarch64']:.3f}", f"{100 * c['rel_diff']:.3f}",
                     f"{c['kld']:.4f}", f"{c['same_top_pct']:.1f}", f"{k['ppl_host']:.3f}", f"{k['ppl_aarch64']:.3f}",
                     f"{100 * k['rel_diff']:.4f}"])
    c0 = records[0]["emulation_check"]
    k0 = c0["control_f32"]
    return _latex_table(
        ["Variant", "PPL x86-64", "PPL aarch64", "Diff. \\%", "KLD", "Top-1 \\%", "F32: x86-64", "F32: aarch64",
         "Diff. \\%"],
        body,
        f"The aarch64 build of the device bundles under \\texttt{{qemu-aarch64-static}} against the host build: "
        f"llama-perplexity on the same text, for the deployed GGUF file ({c0['chunks']} chunks of {c0['n_ctx']} "
        f"tokens; KLD: mean KL divergence in nats from the host build's next-token distributions, Top-1: same most "
        f"likely token) and for a control, the same weights dequantized to F32 ({k0['chunks']} chunks of "
        f"{k0['n_ctx']} tokens), options \\texttt{{{_esc(' '.join(c0['options']))}}}. The control must give the "
        f"same perplexity within {100 * c0['tolerance']:g}\\%, the deployed file the same perplexity or a KLD of at "
        f"most {c0['kld_tolerance']:g}, else the stage fails. Quantized matrix products quantize their activations, "
        "and last-bit differences between two correct builds flip some of those roundings; the flips grow through "
        "the layers, so on a short text the perplexities of quantized files differ by percents while the "
        "predictions stay close. Timings under emulation are not reported.",
        "tab:bundles", "lrrrrrrrr")


def build_devices(params, lay, out_fig: Path, out_tab: Path) -> tuple[list[Path], list[Path], dict]:
    """Figures and tables of the fleet stage's results; returns them and the numbers the paper quotes."""
    rows = pd.read_csv(lay.fleet_table)
    acc = pd.read_csv(lay.fleet_table.with_name("accessibility.csv"))
    summary = read_json(lay.fleet_table.with_name("fleet.json"))
    host = Device.model_validate(summary["host"])
    fleet = load_fleet(summary["fleet"])
    dp = params.devices
    figs = heatmap(rows, out_fig, dp.memory_share, dp.min_tg_ts, dp.n_ctx) + energy_figure(rows, out_fig)
    bundles = [read_json(lay.bundle_record(v)) for v in params.variants() if lay.bundle_record(v).is_file()]
    tabs = []
    for name, text in (("devices", devices_table(host, fleet)),
                       ("accessibility", accessibility_table(rows, acc, dp.memory_share, dp.min_tg_ts)),
                       *((("bundles", bundles_table(bundles)),) if bundles else ())):
        path = out_tab / f"{name}.tex"
        write_text(path, text)
        tabs.append(path)
    fleet_rows = rows[rows.device != HOST]
    numbers = {
        "fleetSize": len(fleet), "memoryShare": f"{100 * dp.memory_share:.0f}", "minTg": f"{dp.min_tg_ts:g}",
        "nCtxDevices": dp.n_ctx, "measuredCells": int(fleet_rows["measured"].sum()),
        "projectedCells": int((~fleet_rows["measured"].astype(bool)).sum()),
        "hostBandwidth": f"{host.memory_bandwidth_gbs:.1f}", "hostPeakGflops": f"{host.cpu.peak_gflops_fp32:.0f}",
        "emulationMaxDiff": (f"{100 * max(b['emulation_check']['rel_diff'] for b in bundles):.3f}"
                             if bundles else "--"),
        "emulationPassed": sum(b["emulation_check"]["ok"] for b in bundles), "emulationChecked": len(bundles),
        "emulationSamePpl": sum(b["emulation_check"]["same_ppl"] for b in bundles),
        "emulationMaxKld": (f"{max(b['emulation_check']['kld'] for b in bundles):.4f}" if bundles else "--"),
        "emulationTolerance": (f"{100 * bundles[0]['emulation_check']['tolerance']:g}" if bundles else "--"),
        "emulationKldTolerance": (f"{bundles[0]['emulation_check']['kld_tolerance']:g}" if bundles else "--"),
        "controlMaxDiff": (f"{100 * max(b['emulation_check']['control_f32']['rel_diff'] for b in bundles):.4f}"
                           if bundles else "--"),
    }
    share = acc.set_index("variant")["fleet_share"]
    numbers["minFleetShare"] = f"{100 * share.min():.0f}"
    numbers["maxFleetShare"] = f"{100 * share.max():.0f}"
    return figs, tabs, numbers
