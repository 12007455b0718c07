"""Measure a GGUF file as llama-bench does: prompt processing (pp) and generation (tg) in tokens/s over
repetitions, plus time to first token and peak RSS, in a fresh process per thread count (the profile
stage's code; ``benchmarks/`` compares it with llama-bench itself).

``-o md|json|csv`` prints llama-bench's formats: its markdown table (model, size, params, threads, test, t/s;
size is the model's tensor bytes, llama.cpp's ``llama_model_size``, not the file's), or one record per test
with llama-bench's field names (and this command's time to first token and peak RSS).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path

from tqdm.auto import tqdm

from ..devices.bench import profile_in_subprocess
from ..io import write_json
from .common import model_file, positive_int, positive_int_list, study_params

HELP = "pp / tg tokens/s, time to first token and peak RSS of a GGUF file, like llama-bench"

FORMATS = ("md", "json", "csv")


def add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="the GGUF file")
    p.add_argument("-t", "--threads", type=positive_int_list, default=None,
                   help="comma-separated thread counts (default: params.yaml's profile.threads, the profile stage's)")
    p.add_argument("-p", "--n-prompt", type=positive_int, default=512, help="prompt tokens (default: %(default)s)")
    p.add_argument("-n", "--n-gen", type=positive_int, default=128, help="generated tokens (default: %(default)s)")
    p.add_argument("-r", "--repetitions", type=positive_int, default=5,
                   help="repetitions (default: llama-bench's %(default)s)")
    p.add_argument("--ttft-prompt", type=positive_int, default=128,
                   help="prompt tokens before the first token (default: %(default)s)")
    p.add_argument("-o", "--output", choices=FORMATS, default="md",
                   help="output format printed, as llama-bench's -o (default: %(default)s)")
    p.add_argument("--output-file", help="also write the measurements to this JSON file")


def records(path: Path, runs: list[dict], n_prompt: int, n_gen: int, ttft_prompt: int) -> list[dict]:
    """One record per thread count and test, with llama-bench's field names (``model_size``: the tensor
    bytes, as llama-bench's), then what llama-bench does not measure: the file's size, time to first token
    and peak RSS of that thread count's process."""
    out = []
    for r in runs:
        run_ = r["runs"][0]
        for test, pp, tg in ((f"pp{n_prompt}", n_prompt, 0), (f"tg{n_gen}", 0, n_gen)):
            s = run_[test]
            out.append({"model_filename": str(path), "model_size": r["model_bytes"], "model_n_params": r["n_params"],
                        "n_threads": run_["threads"], "n_prompt": pp, "n_gen": tg, "test": test,
                        "avg_ts": s["avg_ts"],
                        "stddev_ts": s["stddev_ts"], "samples_ts": s["samples_ts"], "file_size": r["file_bytes"],
                        "ttft_n_prompt": ttft_prompt, "ttft_avg_s": run_["ttft"]["mean_s"],
                        "ttft_stddev_s": run_["ttft"]["stddev_s"], "peak_rss_bytes": r["peak_rss_bytes"],
                        "peak_rss_model_bytes": r["peak_rss_model_bytes"]})
    return out


def size_text(n_bytes: int) -> str:
    """llama-bench's size column: MiB below 1 GiB, else GiB."""
    return f"{n_bytes / 2**20:.2f} MiB" if n_bytes < 2**30 else f"{n_bytes / 2**30:.2f} GiB"


def params_text(n: int) -> str:
    """llama-bench's params column: M below a billion, else B."""
    return f"{n / 1e6:.2f} M" if n < 1e9 else f"{n / 1e9:.2f} B"


#: llama-bench's markdown columns and widths (negative: left-aligned)
COLUMNS = (("model", -30), ("size", 10), ("params", 10), ("threads", 7), ("test", 15), ("t/s", 20))


def markdown(recs: list[dict]) -> str:
    """llama-bench's markdown table (its widths; the model column names the file, where llama-bench prints
    llama.cpp's model description)."""
    lines = ["|" + "".join(f" {name:{'<' if w < 0 else '>'}{abs(w)}} |" for name, w in COLUMNS),
             "|" + "".join(f" {'-' * (abs(w) - 1)}{':' if w > 0 else '-'} |" for _, w in COLUMNS)]
    for r in recs:
        values = (Path(r["model_filename"]).name, size_text(r["model_size"]), params_text(r["model_n_params"]),
                  str(r["n_threads"]), r["test"], f"{r['avg_ts']:.2f} ± {r['stddev_ts']:.2f}")
        lines.append("|" + "".join(f" {v:{'<' if w < 0 else '>'}{abs(w)}} |" for v, (_, w) in zip(values, COLUMNS)))
    return "\n".join(lines)


def csv_text(recs: list[dict]) -> str:
    """llama-bench's CSV: a header of field names, one row per test (the samples left out, as there)."""
    buf = io.StringIO()
    fields = [k for k in recs[0] if k != "samples_ts"]
    w = csv.DictWriter(buf, fields, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(recs)
    return buf.getvalue().rstrip("\n")


def summary_lines(runs: list[dict], ttft_prompt: int) -> list[str]:
    """What llama-bench does not print: time to first token and peak RSS per thread count."""
    out = []
    for r in runs:
        run_ = r["runs"][0]
        out.append(f"threads {run_['threads']}: time to first token ({ttft_prompt}-token prompt) "
                   f"{run_['ttft']['mean_s'] * 1000:.1f} ms; peak RSS {r['peak_rss_bytes'] / 2**20:.0f} MiB "
                   f"({r['peak_rss_model_bytes'] / 2**20:.0f} MiB for the model)")
    return out


def run(a: argparse.Namespace) -> int:
    path = model_file(a.model)
    counts = a.threads or list(study_params().profile.threads)
    runs = []
    for t in tqdm(counts, desc="thread counts", unit="run"):
        runs.append(profile_in_subprocess(path, threads=[t], n_prompt=a.n_prompt, n_gen=a.n_gen,
                                          reps=a.repetitions, ttft_prompt=a.ttft_prompt, seed=0))
    recs = records(path, runs, a.n_prompt, a.n_gen, a.ttft_prompt)
    if a.output == "json":
        print(json.dumps(recs, indent=2))
    elif a.output == "csv":
        print(csv_text(recs))
    else:
        print(markdown(recs))
        print("\n".join(summary_lines(runs, a.ttft_prompt)))
    if a.output_file:
        write_json(Path(a.output_file), {"model": str(path), "repetitions": a.repetitions, "runs": runs})
        if a.output == "md":  # json and csv print nothing but the records, so that they can be piped
            print(f"-> {a.output_file}")
    return 0
