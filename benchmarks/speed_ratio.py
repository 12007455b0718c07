"""Speed ratios measured interleaved (``edgellm.devices.speed_ratio``) against the same ratios from the study's
separate profile stages.

For each pair of GGUF files (a over b) it times both in alternation with the profile settings of ``params.yaml``
and prints pp and tg ratios with their 95 % t-intervals, beside the ratio of the two files' committed profile
records (measured at different times, so carrying the host's drift between them). The first pair is one file
against itself: its interval must hold 1, and its width is what the method resolves on this host.

    python benchmarks/speed_ratio.py                       # A/A, then Q4_K_M over F16 of both base models
    python benchmarks/speed_ratio.py --reps 9
"""

from __future__ import annotations

import argparse
import json

from _common import LAYOUT, ROOT, study_gguf

from edgellm.config import load_params
from edgellm.devices.speed_ratio import interleaved

#: (model, type of a, type of b)
PAIRS = (("smollm2-135m", "Q4_K_M", "Q4_K_M"), ("smollm2-135m", "Q4_K_M", "F16"), ("gemma3-270m", "Q4_K_M", "F16"))


def recorded(model: str, qtype: str, test: str) -> float | None:
    """The speed the variant's profile stage recorded (tokens/s), if its record is here."""
    path = LAYOUT.profile_record(f"{model}-{qtype}")
    if not path.is_file():
        return None
    return json.loads(path.read_text())["runs"][0][test]["avg_ts"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=None, help="repetitions (default: profile.repetitions)")
    a = ap.parse_args()
    params = load_params(ROOT / "params.yaml")
    prof = params.profile
    reps = a.reps or prof.repetitions
    print(f"interleaved (AB, BA, ...), {reps} repetitions, {prof.threads[0]} threads; ratio = a / b, 95 % t-interval")
    print(f"{'a':<22} {'b':<22} {'test':<6} {'interleaved':>11} {'interval':>17} {'separate stages':>15}")
    for model, ta, tb in PAIRS:
        res = interleaved(study_gguf(ta, model), study_gguf(tb, model), n_prompt=prof.n_prompt, n_gen=prof.n_gen,
                          reps=reps, threads=prof.threads[0], seed=params.seed)
        for test, r in res.items():
            ra, rb = recorded(model, ta, test), recorded(model, tb, test)
            sep = f"{ra / rb:.3f}" if ra and rb else "--"
            print(f"{model + '-' + ta:<22} {model + '-' + tb:<22} {test:<6} {r.ratio:>11.3f} "
                  f"{'[' + format(r.low, '.3f') + ', ' + format(r.high, '.3f') + ']':>17} {sep:>15}")


if __name__ == "__main__":
    main()
