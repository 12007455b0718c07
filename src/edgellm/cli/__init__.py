"""``edgellm``: the library from the command line, one subcommand per job, as lm-eval and llama.cpp's tools are used.

    edgellm eval MODEL.gguf --tasks arc_easy,piqa --limit 200 -o eval.json   # the study's scorer: a table (and JSON)
    edgellm bench MODEL.gguf                                    # pp / tg / TTFT / peak RSS, like llama-bench
    edgellm project MODEL.gguf --device raspberry-pi-5          # the calibrated projection with its error band
    edgellm device run --runner ssh --host pi@pi5 --device raspberry-pi-5   # a bundle measured on a device
    edgellm judge answers.jsonl                                  # every judge's verdicts on TruthfulQA answers

Every subcommand reads the study's definitions (params.yaml of the project it runs in, else the package's
defaults: the schema's settings, data from the hub) and fails on bad input with one line naming the file,
task, device or option. Also ``python -m edgellm.cli``.
"""

from __future__ import annotations

import argparse
import sys

from . import bench, device, evaluate, judge, project

COMMANDS = {"eval": evaluate, "bench": bench, "project": project, "device": device, "judge": judge}


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="edgellm", description=__doc__.split("\n\n")[0].replace("``", ""),
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="`edgellm <command> --help` for each command's options.")
    sub = ap.add_subparsers(dest="command", required=True, metavar="command")
    for name, module in COMMANDS.items():
        module.add_parser(sub.add_parser(name, help=module.HELP, description=module.__doc__.split("\n\n")[0]))
    return ap


def arguments(argv: list[str]) -> argparse.Namespace:
    """The parsed command line; argparse exits (SystemExit) after --help or a bad option."""
    if argv[:2] == ["device", "run"]:  # the runner parses its own arguments, options included
        return argparse.Namespace(command="device", action="run", args=argv[2:])
    return parser().parse_args(argv)


def exit_status(e: SystemExit) -> int:
    """argparse's exit (0 after --help, 2 after a bad option, its message printed) as main's return value."""
    return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)


def main(argv: list[str] | None = None) -> int:
    """The exit status: 0, 2 for bad input (one line on stderr, or argparse's usage and error), 130 on Ctrl-C."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        a = arguments(argv)
    except SystemExit as e:
        return exit_status(e)
    try:
        return COMMANDS[a.command].run(a) or 0
    except SystemExit as e:  # a parser of the library's own (device run's runner)
        return exit_status(e)
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # one clear line, not a traceback: the messages name the file, key or value
        print(f"edgellm {a.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
