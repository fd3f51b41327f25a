"""``python -m bench <command>``: the harness's command line.

Errors a user can fix (bad names, sizes, files, devices) end as one line on stderr and exit
code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import runpy
import sys
from pathlib import Path

from bench.commands import import_pytest_benchmark as import_command
from bench.commands import run as run_command
from bench.commands import schema as schema_command
from bench.commands import verify as verify_command
from bench.errors import UsageError
from multinet.errors import MultinetError

COMMANDS = (run_command, verify_command, schema_command, import_command)


class OneLineParser(argparse.ArgumentParser):
    """argparse prints the whole usage before an error; one line that names the command
    and points at --help is easier to read in a log."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def load_file(path: str) -> None:
    """Execute a user's file (its @register decorators add scenarios) before the command."""
    if not Path(path).is_file():
        raise UsageError(f"--load: no such file: {path}")
    runpy.run_path(path, run_name="__multinet_load__")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m bench",
                           description="Time and verify joint training of several networks.")
    parser.add_argument("--load", metavar="FILE.py", action="append", default=[],
                        help="run a Python file first, e.g. one that registers scenarios")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    try:
        for path in args.load:
            load_file(path)
        return args.main(args, argv)
    except (UsageError, MultinetError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
