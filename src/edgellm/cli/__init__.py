"""``edgellm``: the library from the command line, one subcommand per job, as lm-eval and llama.cpp's tools are used.

    edgellm eval MODEL.gguf --tasks arc_easy,piqa --limit 200   # the study's scorer: a table and a JSON file
    edgellm bench MODEL.gguf                                    # pp / tg / TTFT / peak RSS, like llama-bench
    edgellm project MODEL.gguf --device raspberry-pi-5          # the calibrated projection with its error band
    edgellm device run --runner ssh --host pi@pi5 --device raspberry-pi-5   # a bundle measured on a device

Every subcommand reads the study's definitions (params.yaml of the project it runs in, else the defaults below)
and fails on bad input with one line naming the file, task or device.
"""

from __future__ import annotations

import argparse
import sys

from . import bench, device, evaluate, project

COMMANDS = {"eval": evaluate, "bench": bench, "project": project, "device": device}


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="edgellm", description=__doc__.split("\n\n")[0].replace("``", ""),
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="`edgellm <command> --help` for each command's options.")
    sub = ap.add_subparsers(dest="command", required=True, metavar="command")
    for name, module in COMMANDS.items():
        module.add_parser(sub.add_parser(name, help=module.HELP, description=module.__doc__.split("\n\n")[0]))
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:2] == ["device", "run"]:  # the runner parses its own arguments, options included
        a = argparse.Namespace(command="device", action="run", args=argv[2:])
    else:
        a = ap.parse_args(argv)
    try:
        return COMMANDS[a.command].run(a) or 0
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # one clear line, not a traceback: the messages name the file, key or value
        print(f"edgellm {a.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
