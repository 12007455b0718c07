"""Measure the study's device bundles on a real device (``run``: local, ssh or adb runner) or import a
llama-bench JSON file measured there (``run --import``); the results land in results/measured/, which the
fleet and verdicts stages read. The same as ``python -m edgellm.devices.runners``."""

from __future__ import annotations

import argparse

from ..devices import runners
from .common import port_number, positive_int

HELP = "measure bundles on a device (ssh, adb or local runner) or import its llama-bench JSON"


def add_parser(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True, metavar="action")
    sub.add_parser("run", help="run the bundles on a device and record pp/tg (`edgellm device run --help`)")


def check_numbers(args: list[str]) -> None:
    """The runner's parser reads --port and --threads as any integer; a 0 or a negative one would reach ssh or
    the device's llama-bench. Checked here first, so that argparse names the option and the value."""
    ap = argparse.ArgumentParser(prog="edgellm device run", usage=argparse.SUPPRESS, add_help=False,
                                 allow_abbrev=False)
    ap.add_argument("--port", type=port_number)
    ap.add_argument("--threads", type=positive_int)
    ap.parse_known_args(args)


def run(a: argparse.Namespace) -> int:
    check_numbers(a.args)
    return runners.main(a.args, prog="edgellm device run")
