"""Measure the study's device bundles on a real device (``run``: local, ssh or adb runner) or import a
llama-bench JSON file measured there (``run --import``); the results land in results/measured/, which the
fleet and verdicts stages read. The same as ``python -m edgellm.devices.runners``."""

from __future__ import annotations

import argparse

from ..devices import runners

HELP = "measure bundles on a device (ssh, adb or local runner) or import its llama-bench JSON"


def add_parser(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True, metavar="action")
    sub.add_parser("run", help="run the bundles on a device and record pp/tg (`edgellm device run --help`)")


def run(a: argparse.Namespace) -> int:
    return runners.main(a.args, prog="edgellm device run")
