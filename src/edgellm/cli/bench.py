"""Measure a GGUF file as llama-bench does: prompt processing (pp) and generation (tg) in tokens/s over
repetitions, plus time to first token and peak RSS, in a fresh process per thread count (the profile
stage's code; ``benchmarks/`` compares it with llama-bench itself)."""

from __future__ import annotations

import argparse
from pathlib import Path

from tqdm.auto import tqdm

from ..devices.bench import profile_in_subprocess
from ..io import write_json
from .common import model_file, study_params

HELP = "pp / tg tokens/s, time to first token and peak RSS of a GGUF file, like llama-bench"


def add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="the GGUF file")
    p.add_argument("-t", "--threads", default=None, help="comma-separated thread counts (default: params.yaml's)")
    p.add_argument("-p", "--n-prompt", type=int, default=512, help="prompt tokens (default: %(default)s)")
    p.add_argument("-n", "--n-gen", type=int, default=128, help="generated tokens (default: %(default)s)")
    p.add_argument("-r", "--repetitions", type=int, default=5, help="repetitions (default: llama-bench's %(default)s)")
    p.add_argument("--ttft-prompt", type=int, default=128, help="prompt tokens before the first token (default: %(default)s)")
    p.add_argument("-o", "--output", help="also write the measurements to this JSON file")


def thread_counts(text: str | None) -> list[int]:
    if text is None:
        return [study_params().threads]
    try:
        counts = [int(t) for t in text.split(",")]
    except ValueError:
        raise ValueError(f"--threads {text!r}: comma-separated integers expected") from None
    if any(t < 1 for t in counts):
        raise ValueError(f"--threads {text!r}: every count must be at least 1")
    return counts


def run(a: argparse.Namespace) -> int:
    path = model_file(a.model)
    counts = thread_counts(a.threads)
    for name in ("n_prompt", "n_gen", "repetitions", "ttft_prompt"):
        if getattr(a, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} {getattr(a, name)}: must be at least 1")
    runs = []
    for t in tqdm(counts, desc="thread counts", unit="run"):
        runs.append(profile_in_subprocess(path, threads=[t], n_prompt=a.n_prompt, n_gen=a.n_gen,
                                          reps=a.repetitions, ttft_prompt=a.ttft_prompt, seed=0))
    first = runs[0]
    print(f"| model | size | params | threads | test | t/s |\n| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in runs:
        run_ = r["runs"][0]
        for test in (f"pp{a.n_prompt}", f"tg{a.n_gen}"):
            s = run_[test]
            print(f"| {Path(path).name} | {first['file_bytes'] / 2**20:.2f} MiB | {first['n_params'] / 1e6:.2f} M "
                  f"| {run_['threads']} | {test} | {s['avg_ts']:.2f} ± {s['stddev_ts']:.2f} |")
    for r in runs:
        run_ = r["runs"][0]
        print(f"threads {run_['threads']}: time to first token ({a.ttft_prompt}-token prompt) "
              f"{run_['ttft']['mean_s'] * 1000:.1f} ms; peak RSS {r['peak_rss_bytes'] / 2**20:.0f} MiB "
              f"({r['peak_rss_model_bytes'] / 2**20:.0f} MiB for the model)")
    if a.output:
        write_json(Path(a.output), {"model": str(path), "repetitions": a.repetitions, "runs": runs})
        print(f"-> {a.output}")
    return 0
