"""Figures and tables of the device fleet: banded accessibility verdicts, energy per token, the projection's
validation against published measurements, real-device runs, profiles, bundle checks.

The fleet's numbers are the ``verdicts`` stage's: projections calibrated on
published llama.cpp measurements, each with the band the validation gives, and
three-state accessibility at the band's lower end. Measured and projected
numbers never look alike: measured cells are marked; energy bars are solid when
a published power measurement stands behind them and hatched when the power is
the profile's estimate; every caption says which is which. Only the deployed
(reference and main-tier) variants appear. Figures are named after their file
stems, like every figure of the report.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from ..config import Params
from ..devices.fleet import HOST, Device, load_fleet
from ..devices.validation import BAND_QUANTILE, lodo_bands, nodata_band, pooled_bands
from ..io import read_json, write_csv, write_text
from ..paths import Layout
from ..records import BundleRecord, FleetSummary
from .answer_energy import TASK, answer_energy, answer_energy_table, tokens_per_answer
from .context import CONTEXT_CSV, SHARES_CSV, context_memory, context_numbers, context_table
from .kv_tables import KV_DIR, depth_table, kv_numbers, kv_table, load_kv_records
from .latex import Macro, Tex, count, fmt, generated_by, header_lines, latex_table, tex_escape
from .plotting import figure, log_axis, matplotlib, plt, savefig
from .projection import size_table, validation_figure, validation_table, verdict_figure
from .results import short_name

#: how the accessibility table marks a verdict (the caption explains them)
STATE_MARKS = {"accessible": "", "borderline": "$^{\\dagger}$", "not accessible": ""}


def _order(rows: pd.DataFrame) -> tuple[list[str], list[str]]:
    variants = list(dict.fromkeys(rows["variant"]))
    devices = list(dict.fromkeys(rows["device"]))
    return variants, devices


def energy_per_token(best: pd.DataFrame, out_dir: Path, bases: dict[str, str]) -> list[Path]:
    """Energy per generated token of every deployed variant on every fleet device, with its band (speed band x
    power range). Solid bars: power measured under llama.cpp load by a published source; hatched, light bars: the
    profile's estimated load power. ``bases``: variant -> its base model (the labels omit it)."""
    variants, devices = _order(best)
    fig, ax = figure(1.0, 2.9)
    width = 0.8 / len(devices)
    colors = plt.get_cmap("tab10")
    idx = best.set_index(["variant", "device"])
    for j, d in enumerate(devices):
        for i, v in enumerate(variants):
            r = idx.loc[(v, d)]
            est = str(r["power_source"]).startswith("estimated")
            mid = math.sqrt(r["mj_per_token_low"] * r["mj_per_token_high"])
            x = i + (j - (len(devices) - 1) / 2) * width
            ax.bar(x, mid, width, color=matplotlib.colors.to_rgba(colors(j), 0.45 if est else 1.0),
                   hatch="////" if est else None, edgecolor="0.15", linewidth=0.4, label=d if i == 0 else None)
            ax.errorbar(x, mid, yerr=[[mid - r["mj_per_token_low"]], [r["mj_per_token_high"] - mid]], fmt="none",
                        ecolor="0.1", elinewidth=0.6, capsize=1.2)
    ax.set_xticks(range(len(variants)), [short_name(v, bases[v]) for v in variants], rotation=90)  # slanted boxes overlap
    ax.set_ylabel("energy per generated token (mJ)")
    log_axis(ax, "y")
    ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False)
    return savefig(fig, out_dir / "energy_per_token")


def projection_validation(points: pd.DataFrame, out_dir: Path) -> list[Path]:
    """The projection against published measurements (:func:`.projection.validation_figure`), saved."""
    return savefig(validation_figure(points), out_dir / "projection_validation")


def accessibility_verdicts(best: pd.DataFrame, min_tg_ts: float, out_dir: Path) -> list[Path]:
    """The banded three-state verdicts (:func:`.projection.verdict_figure`), saved."""
    return savefig(verdict_figure(best, min_tg_ts), out_dir / "accessibility_verdicts")


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


def accessibility_table(best: pd.DataFrame, shares: pd.DataFrame, memory_share: float, min_tg: float,
                        display: dict[str, str]) -> str:
    """Per deployed variant and fleet device: the generation band of the best backend the bundle runs, its state."""
    variants, devices = _order(best)
    idx = best.set_index(["variant", "device"])
    sh = shares.set_index("variant")
    body = []
    for v in variants:
        cells = []
        for d in devices:
            r = idx.loc[(v, d)]
            if r["measured"]:
                txt = f"{r['tg_ts']:.0f}$^{{m}}$"
            else:
                txt = f"{r['tg_low']:.0f}--{r['tg_high']:.0f}"
            txt += STATE_MARKS[r["state"]] + ("" if r["own_data"] else "$^{n}$")
            cells.append(Tex(f"({txt})" if r["state"] == "not accessible" else txt))
        mem = idx.loc[(v, devices[0]), "mem_required_mb"]
        body.append([v, f"{mem:.0f}", *cells, f"{100 * sh.loc[v, 'accessible_share']:.0f}",
                     f"{100 * sh.loc[v, 'borderline_share']:.0f}"])
    labels = [header_lines(display.get(d, d).split(" (")[0]) for d in devices]
    return latex_table(
        ["Variant", "Mem MB", *labels, "Acc. %", "Border. %"], body,
        f"Generation speed (tokens/s) of every deployed variant on every fleet device: the band of the projection "
        f"calibrated on published llama.cpp measurements (Table~\\ref{{tab:validation}}), for the best backend the "
        f"study's bundle runs (the CPU on every device: the bundles carry no GPU build). A variant is accessible when "
        f"it fits {100 * memory_share:.0f}\\% of the device's RAM and the band's lower end reaches {min_tg:g} "
        f"tokens/s; $^{{\\dagger}}$ borderline: the band straddles {min_tg:g}; parenthesized: not accessible. "
        "$^{m}$ measured on the device; $^{n}$ no own data: no published point of this device and backend, the "
        "projection borrowed from its backend on the other devices with a band as wide as their leave-one-device-out "
        "error. Acc.\\,\\% and Border.\\,\\%: share of the fleet.",
        "tab:accessibility", "lr" + "r" * len(devices) + "rr")


def backends_table(rows: pd.DataFrame) -> str:
    """Devices with more than one backend: each backend's band and state, and whether the bundle runs it."""
    multi = [d for d, g in rows.groupby("device") if g.backend.nunique() > 1]
    sub = rows[rows.device.isin(multi)]
    body = [[r.variant, r.device, r.backend, "yes" if r.usable else "no",
             f"{r.tg_low:.0f}--{r.tg_high:.0f}", f"{r.effective_gbs:.1f}", r.state]
            for r in sub.itertuples()]
    return latex_table(
        ["Variant", "Device", "Backend", "Bundle runs it", "tg band", "Eff. GB/s", "State"], body,
        "Devices with several backends, each calibrated on its own published measurements: the projected generation "
        "band (tokens/s), the effective bandwidth it implies, and the state it would give. Accessibility "
        "(Table~\\ref{tab:accessibility}) takes the best backend the bundle can run.",
        "tab:backends", "llllrrl")


def measured_table(points: pd.DataFrame) -> str:
    """Real devices' llama-bench output imported through the runners' path: measured beside both projections."""
    sub = points[points.origin.str.startswith("llama-bench JSON")]
    body = [[r.device, r.model, r.quant, r.test, f"{r.measured_ts:.2f}", f"{r.projected_host:.2f}",
             fmt(r.projected_host / r.measured_ts, 2), f"{r.projected_heldout:.2f}",
             fmt(r.projected_heldout / r.measured_ts, 2)] for r in sub.itertuples()]
    return latex_table(
        ["Device", "Model", "Type", "Test", "Measured", "Host-carried", "Ratio", "Calibrated", "Ratio"], body,
        "Real devices' \\texttt{llama-bench} JSON (\\texttt{data/published/llama-bench}), imported by "
        "\\texttt{runners.py --import} into \\texttt{results/measured/} as a runner's output would be: the measured "
        "tokens/s beside the projection carried from this host and the calibrated one (held out: the device's other "
        "models), and their ratios (projected / measured).", "tab:measured", "lllrrrrrr")


def bundles_table(records: list[BundleRecord]) -> str:
    body = []
    for r in records:
        for build, c in (("v8.2-A", r.emulation_check), ("v8-A/A53", r.emulation_check_armv8a)):
            if c is None:
                continue
            k = c.control_f32
            body.append([r.variant, build, f"{c.ppl_host:.3f}", f"{c.ppl_aarch64:.3f}", f"{100 * c.rel_diff:.3f}",
                         f"{c.kld:.4f}", f"{c.same_top_pct:.1f}", f"{k.ppl_host:.3f}", f"{k.ppl_aarch64:.3f}",
                         f"{100 * k.rel_diff:.4f}"])
    c0 = records[0].emulation_check
    k0 = c0.control_f32
    return latex_table(
        ["Variant", "Build", "PPL x86-64", "PPL aarch64", "Diff. %", "KLD", "Top-1 %", "F32: x86-64", "F32: aarch64",
         "Diff. %"],
        body,
        f"The aarch64 builds of the device bundles under \\texttt{{qemu-aarch64-static}} against the host build: "
        f"v8.2-A, the build with the dot product (Pi 5, Jetson, Pixel) under qemu's default CPU; v8-A/A53, the plain "
        f"Armv8-A build of the Pi Zero 2 W with qemu emulating a Cortex-A53 (no dot product; the v8.2-A build stops "
        f"there with an illegal instruction). "
        f"llama-perplexity on the same text, for the deployed GGUF file ({count(c0.chunks, 'chunk')} of {c0.n_ctx} "
        f"tokens; KLD: mean KL divergence in nats from the host build's next-token distributions, Top-1: same most "
        f"likely token) and for a control, the same weights dequantized to F32 ({count(k0.chunks, 'chunk')} of "
        f"{k0.n_ctx} tokens), options \\texttt{{{tex_escape(' '.join(c0.options))}}}. The control must give the "
        f"same perplexity within {100 * c0.tolerance:g}\\%, the deployed file the same perplexity or a KLD of at "
        f"most {c0.kld_tolerance:g}, else the stage fails. Quantized matrix products quantize their activations, "
        "and last-bit differences between two correct builds flip some of those roundings; the flips grow through "
        "the layers, so on a short text the perplexities of quantized files differ by percents while the "
        "predictions stay close. The check is of the builds' kernels: the bundles of compressed checkpoints, whose "
        "files hold the tensor types of the base model's file of their type, are not checked again. Timings under "
        "emulation are not reported.",
        "tab:bundles", "llrrrrrrrr")


class DeviceResults:
    """What the report reads of the device stages: the fleet stage's summary, the validation's tables, the banded
    verdicts, and the bundle records of the study's variants."""

    def __init__(self, params: Params, lay: Layout):
        self.summary = FleetSummary.load(lay.fleet_summary)
        self.rows = pd.read_csv(lay.verdicts)
        self.best = pd.read_csv(lay.device_verdicts)
        self.shares = pd.read_csv(lay.verdict_shares)
        self.validation = pd.read_csv(lay.validation_table)
        self.sizes = pd.read_csv(lay.validation_table.with_name("validation_sizes.csv"))
        self.context = pd.read_csv(lay.verdicts.with_name("context_verdicts.csv"))
        self.context_shares = pd.read_csv(lay.verdicts.with_name("context_shares.csv"))
        self.points = pd.read_csv(lay.validation_points)
        bundles = [BundleRecord.load(lay.bundle_record(v)) for v in params.variants()
                   if lay.bundle_record(v).is_file()]
        # frontier-tier variants are not bundled, compressed checkpoints' bundles not checked again (their types'
        # kernels are checked on the base model's files): their records say so and carry no check
        self.bundles = [b for b in bundles if b.emulation_check is not None]

    def deployed(self, names: list[str]) -> None:
        """Keep the deployed variants only (frontier-tier variants trace the curve; they are not deployed)."""
        self.rows = self.rows[self.rows.variant.isin(names)]
        self.best = self.best[self.best.variant.isin(names)]
        self.shares = self.shares[self.shares.variant.isin(names)]
        self.context = self.context[self.context.variant.isin(names)]
        self.context_shares = self.context_shares[self.context_shares.variant.isin(names)]


#: the accessibility verdict's words: some other variant on a larger share of the fleet than the reference, every
#: other one on a smaller share, neither. The paper states the rule with these words (``\accessRule``).
WIDENED, NARROWED, UNCHANGED = "widened", "narrowed", "unchanged"


def accessibility_verdict(shares: pd.Series, reference: str) -> str:
    """The paper's accessibility verdict, by the rule :func:`accessibility_rule` states: :data:`WIDENED` when
    some other variant is accessible on a larger share of the fleet than the reference, :data:`NARROWED` when
    every other variant is on a smaller one, :data:`UNCHANGED` otherwise (the best is as accessible)."""
    others = shares.drop(index=reference)
    if others.empty or reference not in shares.index:
        return UNCHANGED
    best, ref = others.max(), shares[reference]
    return WIDENED if best > ref else NARROWED if best < ref else UNCHANGED


def accessibility_rule() -> str:
    """The rule of :func:`accessibility_verdict` in the paper's words, with the words the verdict uses."""
    return (f"``{WIDENED}'' if it is larger, ``{NARROWED}'' if every variant's is smaller, "
            f"``{UNCHANGED}'' otherwise")


def device_numbers(params: Params, lay: Layout, res: DeviceResults, host: Device,
                   fleet: list[Device]) -> dict[str, Macro]:
    """The numbers the paper quotes about the fleet, each with the file (and column) it came from."""
    dp = params.devices
    rel = lambda p: p.relative_to(lay.root).as_posix()
    best_csv, shares_csv, fleet_json = rel(lay.device_verdicts), rel(lay.verdict_shares), rel(lay.fleet_summary)
    val_csv, pts_csv = rel(lay.validation_table), rel(lay.validation_points)
    bundles = res.bundles
    bundle_files = "results/bundles/*.json" if not bundles else rel(lay.bundle_record(bundles[0].variant)).rsplit(
        "/", 1)[0] + "/*.json"
    checks = [b.emulation_check for b in bundles]
    zero = [b.emulation_check_armv8a for b in bundles if b.emulation_check_armv8a is not None]
    best, share = res.best, res.shares.set_index("variant")
    reference = f"{next(iter(params.models))}-{params.evaluate.kl_base}"
    states = best.state.value_counts()
    # the validation: tg on devices with at least five points of their own (the 25 % target)
    rep = params.report
    tg = res.validation[(res.validation.test == "tg") & (res.validation.n_points >= rep.projection_min_points)].dropna(
        subset=["heldout_median_factor"])
    worst = tg.loc[tg.heldout_median_factor.idxmax()] if len(tg) else None
    cmp = res.points[res.points.comparable]
    meas = res.points[res.points.origin.str.startswith("llama-bench JSON")]
    meas_tg = meas[meas.test == "tg"]
    sizes_csv = "results/devices/validation_sizes.csv"
    rel_verdicts = "results/devices/verdicts.csv"
    judged = res.sizes[(res.sizes.test == "tg") & res.sizes.meets_target.notna()]
    cmp_tg = cmp[cmp.test == "tg"]

    def lodo_f(k: str) -> str:
        """The median leave-one-device-out error factor of the CPU (``k`` "cpu") or the GPU backends' tg points."""
        g = cmp_tg[(cmp_tg.backend == "cpu") == (k == "cpu")]
        return fmt(math.exp(float(g.log_err_lodo.abs().median())), 2)

    bands = pooled_bands(res.points), lodo_bands(res.points)
    n = {
        "fleetSize": (len(fleet), f"{fleet_json}: fleet"),
        "memoryShare": (f"{100 * dp.memory_share:.0f}", "params.yaml: devices.memory_share"),
        "minTg": (f"{dp.min_tg_ts:g}", "params.yaml: devices.min_tg_ts"),
        "nCtxDevices": (dp.n_ctx, "params.yaml: devices.n_ctx"),
        "measuredCells": (int(best["measured"].sum()), f"{best_csv}: measured"),
        "projectedCells": (int((~best["measured"].astype(bool)).sum()), f"{best_csv}: measured (not)"),
        "accessibleCells": (int(states.get("accessible", 0)), f"{best_csv}: state (accessible)"),
        "publishedPowerDevices": (", ".join(tex_escape(d) for d in sorted(
            best.loc[best["power_source"].astype(str).str.startswith("published"), "device"].unique())) or "none",
            f"{best_csv}: device where power_source is published"),
        "borderlineCells": (int(states.get("borderline", 0)), f"{best_csv}: state (borderline)"),
        "notAccessibleCells": (int(states.get("not accessible", 0)), f"{best_csv}: state (not accessible)"),
        "hostBandwidth": (f"{host.memory_bandwidth_gbs:.1f}", f"{fleet_json}: host.memory_bandwidth_gbs"),
        "bandQuantile": (f"{100 * BAND_QUANTILE:.0f}", "edgellm.devices.validation.BAND_QUANTILE"),
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
        "zeroChecked": (len(zero), f"{bundle_files}: emulation_check_armv8a (count)"),
        "zeroPassed": (sum(c.ok and c.control_f32.ok for c in zero),
                       f"{bundle_files}: emulation_check_armv8a.ok and .control_f32.ok (count)"),
        "zeroMaxKld": (f"{max(c.kld for c in zero):.4f}" if zero else "--",
                       f"{bundle_files}: emulation_check_armv8a.kld (max)"),
        "accessVerdict": (accessibility_verdict(share.accessible_share, reference),
                          f"{shares_csv}: accessible_share, the best other variant's against {reference}'s "
                          "(report.devices.accessibility_verdict)"),
        "accessRule": (accessibility_rule(), "report.devices.accessibility_rule (the words of accessibility_verdict)"),
        "refFleetShare": (f"{100 * share.accessible_share[reference]:.0f}" if reference in share.index else "--",
                          f"{shares_csv}: accessible_share of {reference}"),
        "minFleetShare": (f"{100 * share.accessible_share.min():.0f}", f"{shares_csv}: accessible_share (min)"),
        "maxFleetShare": (f"{100 * share.accessible_share.max():.0f}", f"{shares_csv}: accessible_share (max)"),
        "maxBorderShare": (f"{100 * share.borderline_share.max():.0f}", f"{shares_csv}: borderline_share (max)"),
        "publishedPoints": (len(cmp), f"{pts_csv}: comparable rows"),
        "publishedDevices": (cmp.device.nunique(), f"{pts_csv}: device (distinct, comparable)"),
        "validatedDevices": (len(tg), f"{val_csv}: tg rows with n_points >= report.projection_min_points"),
        "validationMet": (int((tg.heldout_median_factor <= rep.projection_factor).sum()),
                          f"{val_csv}: tg, n_points >= report.projection_min_points, heldout_median_factor <= "
                          "report.projection_factor (count)"),
        "validationTarget": (f"{100 * (rep.projection_factor - 1):.0f}", "params.yaml: report.projection_factor - 1"),
        "validationMinPoints": (rep.projection_min_points, "params.yaml: report.projection_min_points"),
        "heldoutWorstMedian": (f"{100 * (worst.heldout_median_factor - 1):.0f}" if worst is not None else "--",
                               f"{val_csv}: tg, n_points >= report.projection_min_points, heldout_median_factor (max) - 1"),
        "heldoutWorstDevice": (tex_escape(f"{worst.device} {worst.backend}") if worst is not None else "--",
                               f"{val_csv}: the row of heldoutWorstMedian"),
        "lodoMedianCpu": (lodo_f("cpu"), f"{pts_csv}: comparable cpu tg points, |log_err_lodo| (median, as a factor)"),
        "lodoMedianGpu": (lodo_f("gpu"), f"{pts_csv}: comparable gpu tg points, |log_err_lodo| (median, as a factor)"),
        "nodataBandCpu": (fmt(math.exp(nodata_band(*bands, "cpu", "tg")[0]), 2),
                          f"{pts_csv}: edgellm.devices.validation.nodata_band(cpu, tg) as a factor"),
        "nodataDevices": (tex_escape(", ".join(sorted({f"{r.device} {r.backend}" for r in res.rows.itertuples()
                                                      if not r.own_data and not r.measured and r.device != HOST}))),
                          f"{rel_verdicts}: device and backend of the rows with own_data False"),
        "sizeClassesJudged": (len(judged), f"{sizes_csv}: tg rows with meets_target set (count)"),
        "sizeClassesMet": (int((judged.meets_target.astype(str) == "True").sum()),
                           f"{sizes_csv}: tg rows with meets_target True (count)"),
        "hostCarriedWorst": (fmt(tg.host_worst_factor.max(), 1) if len(tg) else "--",
                             f"{val_csv}: tg, n_points >= report.projection_min_points, host_worst_factor (max)"),
        "measuredDevice": (tex_escape(meas_tg.device.iloc[0]) if len(meas_tg) else "--", f"{pts_csv}: origin"),
        "measuredTgRatioHost": (fmt((meas_tg.projected_host / meas_tg.measured_ts).median(), 2) if len(meas_tg)
                                else "--", f"{pts_csv}: projected_host / measured_ts (median, imported tg)"),
        "measuredTgRatioCal": (fmt((meas_tg.projected_heldout / meas_tg.measured_ts).median(), 2) if len(meas_tg)
                               else "--", f"{pts_csv}: projected_heldout / measured_ts (median, imported tg)"),
    }
    origin = f"{__name__}.{device_numbers.__qualname__}"
    return {k: Macro(v, origin, src) for k, (v, src) in n.items()}


#: the energy per truthful answer of every deployed variant on every fleet device (the report stage writes it)
ANSWER_ENERGY_CSV = "results/answer_energy.csv"


def priced_answers(best: pd.DataFrame, lay: Layout) -> pd.DataFrame:
    """:func:`.answer_energy.answer_energy` of the deployed variants with TruthfulQA generation items."""
    tokens, truthful = {}, {}
    corrected = read_json(lay.judged)["corrected"]
    for v in dict.fromkeys(best.variant):
        items = read_json(lay.items(v)) if lay.items(v).is_file() else {}
        c = corrected.get(v, {}).get(TASK)
        if TASK in items and c:
            tokens[v] = tokens_per_answer(items)
            truthful[v] = (1 - c["corrected"], 1 - c["high"], 1 - c["low"])
    return answer_energy(best, tokens, truthful)


def build_devices(params: Params, lay: Layout) -> tuple[list[Path], list[Path], dict[str, Macro]]:
    """Figures and tables of the device stages' results; returns them and the numbers the paper quotes."""
    res = DeviceResults(params, lay)
    res.deployed([v.name for v in params.all_variants() if v.tier != "frontier"])
    host = Device.model_validate(res.summary.host)
    fleet = load_fleet(res.summary.fleet)
    display = {d.name: d.display for d in fleet}
    dp = params.devices
    figs = energy_per_token(res.best, lay.figures, {v.name: v.base for v in params.all_variants()})
    figs += projection_validation(res.points, lay.figures)
    figs += accessibility_verdicts(res.best, dp.min_tg_ts, lay.figures)
    per_answer = priced_answers(res.best, lay)
    kv_records = load_kv_records(lay.root)
    write_csv(per_answer, lay.root / ANSWER_ENERGY_CSV)
    ram = {d.name: d.ram_bytes for d in fleet}
    smallest = min(ram, key=ram.get)
    figs += context_memory(res.context, {smallest: dp.memory_share * ram[smallest] / 1e6},
                                  {v.name: v.base for v in params.all_variants()}, lay.figures)
    tabs = []
    rel = lambda p: p.relative_to(lay.root).as_posix()
    for name, func, source, text in (
            ("devices", devices_table, f"{rel(lay.fleet_summary)} and the device profiles", devices_table(host, fleet)),
            ("accessibility", accessibility_table, f"{rel(lay.device_verdicts)} and {rel(lay.verdict_shares)}",
             accessibility_table(res.best, res.shares, dp.memory_share, dp.min_tg_ts, display)),
            ("backends", backends_table, rel(lay.verdicts), backends_table(res.rows)),
            ("validation", validation_table, rel(lay.validation_table), validation_table(res.validation)),
            ("context", context_table, f"{CONTEXT_CSV} and {SHARES_CSV}",
             context_table(res.context_shares, res.context)),
            *((("kv_cache", kv_table, f"{KV_DIR}/*.json", kv_table(kv_records)),
               ("depth", depth_table, f"{KV_DIR}/*.json", depth_table(kv_records))) if kv_records else ()),
            ("answer_energy", answer_energy_table, f"{rel(lay.device_verdicts)}, results/items and "
             f"{rel(lay.judged)}", answer_energy_table(per_answer)),
            ("validation_sizes", size_table, rel(lay.validation_table.with_name("validation_sizes.csv")),
             size_table(res.sizes, params.report.projection_factor)),
            ("measured", measured_table, rel(lay.validation_points), measured_table(res.points)),
            *((("bundles", bundles_table, "results/bundles/*.json", bundles_table(res.bundles)),)
              if res.bundles else ())):
        path = lay.tables / f"{name}.tex"
        write_text(path, generated_by(func, source) + text)
        tabs.append(path)
    return figs, tabs, {**device_numbers(params, lay, res, host, fleet), **context_numbers(res.context, ram),
                        **(kv_numbers(kv_records) if kv_records else {})}
