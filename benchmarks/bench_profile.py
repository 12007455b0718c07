"""Generation and prompt speed: edgellm's profile stage against llama-bench, same file and threads.

Target: tg ratio >= 0.85. Usage: python benchmarks/bench_profile.py [--type Q4_K_M] [--reps 5]
"""

from __future__ import annotations

import argparse

import numpy as np
from _common import study_gguf

from edgellm.devices.bench import bench_pp, bench_tg
from edgellm.llamacpp.runtime import Model
from edgellm.llamacpp.tools import run_llama_bench


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--type", default="Q4_K_M")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    gguf = study_gguf(a.type)
    bench = run_llama_bench(gguf, 512, 128, a.reps, a.threads)
    ref = {"pp": bench["pp512"], "tg": bench["tg128"]}
    rng = np.random.default_rng(0)
    with Model(gguf, n_ctx=512, n_threads=a.threads) as m:
        pp = bench_pp(m, 512, a.threads, a.reps, rng)
        tg = bench_tg(m, 128, a.threads, a.reps, rng)
    print(f"{gguf.name}, {a.threads} threads, {a.reps} repetitions")
    for name, ours in (("pp", pp), ("tg", tg)):
        r = ref[name]
        test = f"{name}{512 if name == 'pp' else 128}"
        print(f"  {test}: llama-bench {r['avg_ts']:8.2f} ± {r['stddev_ts']:.2f} t/s | edgellm {ours['avg_ts']:8.2f} "
              f"± {ours['stddev_ts']:.2f} t/s | ratio {ours['avg_ts'] / r['avg_ts']:.3f}"
              + ("  (target >= 0.85)" if name == "tg" else ""))


if __name__ == "__main__":
    main()
