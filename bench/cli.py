"""``python -m bench <command>``: the harness's command line.

Errors a user can fix (bad names, sizes, files, devices) end as one line on stderr and exit
code 2, never a traceback.

Only the module of the command being run is imported: `report` and `compare` read CSV files
and must start without loading torch, which `run` and `verify` need.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import runpy
import signal
import sys
from pathlib import Path

from bench.errors import RunFolderWriteError, UsageError
from bench.secrets import hide
from bench.sweep.interrupt import Interrupted, exit_code

# name -> (module with add_parser and main, one line for the top-level --help)
COMMANDS = {
    "run": ("bench.commands.run", "time a sweep of configurations"),
    "verify": ("bench.commands.verify", "check gradient flow and optimizer-setup equivalence"),
    "report": ("bench.commands.report", "write the HTML report of one or more runs"),
    "compare": ("bench.commands.compare", "compare runs, flagging significant changes"),
    "paired": ("bench.commands.paired", "compare environments measured in interleaved rounds"),
    "schema": ("bench.commands.schema", "print the documentation of the CSV columns"),
    "trace": ("bench.commands.trace", "profiler traces of chosen configurations, by network"),
    "history": ("bench.commands.history", "the store of every run: add, report, changes"),
    "submit": ("bench.commands.submit", "run a sweep on a Slurm cluster's partitions into one "
               "history store"),
    "import-pytest-benchmark": ("bench.commands.import_pytest_benchmark",
                                "turn a saved suite run (pytest-benchmark JSON) into a run folder"),
}

# name -> (module with main(argv), one line for the top-level --help): commands that parse
# their own options and get the words after their name untouched (launch hands them to
# torchrun). A module whose command runs under a bootstrap interpreter (paired-rounds,
# versions) imports the standard library only.
TOOLS = {
    "paired-rounds": ("bench.tools.paired", "run a sweep in several environments in "
                      "interleaved rounds, then compare them (`paired`)"),
    "versions": ("bench.tools.versions", "paired rounds across torch versions, one virtual "
                 "environment each (`make bench-versions`)"),
    "bisect": ("bench.tools.bisect", "the first environment of an ordered list at which each "
               "change appears"),
    "launch": ("bench.tools.launch", "torchrun for `run --distributed`, ending in one line "
               "where torchrun ends in a traceback"),
    "gpu-check": ("bench.tools.gpu_check", "everything a GPU machine should confirm, in one "
                  "command (`make gpu-check`)"),
    "perf-check": ("bench.tools.perf_check", "how far the timer's own figures can be trusted "
                   "on this machine"),
    "attribution-check": ("bench.tools.attribution_check", "does every network of a run have "
                          "its rows, and do they add up to each phase?"),
    "planted-work": ("bench.tools.planted_work", "known work planted in one network: does the "
                     "attribution put it there?"),
    "mutation-check": ("bench.tools.mutation_check", "plant known defects one at a time; each "
                       "must fail a test (a checkout's tests)"),
}


# The packages the commands import that an interpreter may lack (pyproject.toml's).
REQUIREMENTS = ("torch", "numpy", "pandas", "plotly", "duckdb", "pynvml")


class OneLineParser(argparse.ArgumentParser):
    """argparse prints the whole usage before an error; one line that names the command
    and points at --help is easier to read in a log."""

    def error(self, message: str):
        # an argument it refuses may be a store's URL, password and all
        # `error: ` first, as every other refusal: a script or a reader finds it the same way
        self.exit(2, f"error: {hide(message)} (see `{self.prog} --help`)\n")


def percent(text: str) -> float:
    """A --threshold in percent (5 or 5%) as a fraction; what is valid, where it is not."""
    try:
        value = float(text.rstrip("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value < 100:
        raise argparse.ArgumentTypeError(f"{text!r} is not a percentage in [0, 100)")
    return value / 100


def user_path(text: str) -> Path:
    """A path the user gave, ``~`` taken for the home folder (``~user`` for theirs) as a
    shell takes it: a quoted ``~`` reaches here untouched, and left so it made a folder
    named ``~`` in the current one, while DuckDB and pandas, which expand it themselves,
    then looked in the home folder. Expanded once, here, every later use agrees."""
    return Path(os.path.expanduser(text))


def load_file(path: str) -> None:
    """Execute a user's file (its @register decorators add scenarios) before the command."""
    if not Path(path).is_file():
        raise UsageError(f"--load: no such file: {path}")
    runpy.run_path(path, run_name="__multinet_load__")


def command_in(argv: list[str]) -> str | None:
    """The command named in ``argv``: its first word that is not an option or a --load file."""
    words = iter(argv)
    for word in words:
        if word == "--load":
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def loads_first(argv: list[str]) -> list[str]:
    """``argv`` with every ``--load FILE`` moved before the command: a tool that passes a
    run's options on (``paired-rounds --run-args``) puts them after ``run``."""
    loads, rest, words = [], [], iter(argv)
    for word in words:
        if word == "--load":
            loads += [word, next(words, "")]
        elif word.startswith("--load="):
            loads += ["--load", word.partition("=")[2]]
        else:
            rest.append(word)
    return [*loads, *rest]


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The full parser of ``command``; every other command is listed by name and help only."""
    parser = OneLineParser(prog="python -m bench",
                           description="Time, verify, report and compare joint training of "
                           "several networks.")
    parser.add_argument("--load", metavar="FILE.py", action="append", default=[],
                        type=os.path.expanduser,  # text, as the run's workers are handed it
                        help="run a Python file first, e.g. one that registers scenarios")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=OneLineParser)
    for name, (module, summary) in COMMANDS.items():
        if name == command:
            command_module(name, module).add_parser(sub)
        else:
            sub.add_parser(name, help=summary)
    for name, (_, summary) in TOOLS.items():
        sub.add_parser(name, help=summary, add_help=False)
    return parser


def command_module(name: str, module: str):
    """A command's module; an interpreter without a package it needs is told so in a line
    (a sweep run by another environment's interpreter, say, one without torch)."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name not in REQUIREMENTS:
            raise
        raise UsageError(f"`python -m bench {name}` needs {exc.name}, which {sys.executable} "
                         "cannot import: run it with an environment's interpreter that has it "
                         "(`pip install -e .` there installs what the project needs)") from None


# What the system says of a path the user gave that cannot be used as given: a name too
# long, a folder that may not be entered, a file where a folder is wanted and the like
PATH_ERRORS = {errno.ENAMETOOLONG, errno.EACCES, errno.EPERM, errno.ENOENT, errno.EISDIR,
               errno.ENOTDIR, errno.EROFS, errno.ELOOP}


def is_user_error(exc: Exception) -> bool:
    if isinstance(exc, UsageError):
        return True
    if isinstance(exc, OSError) and exc.errno in PATH_ERRORS and exc.filename is not None:
        return True
    # the library's bad-input error; it can only have been raised if multinet was imported
    errors = sys.modules.get("multinet.errors")
    return errors is not None and isinstance(exc, errors.MultinetError)


def main(argv: list[str] | None = None) -> int:
    try:
        code = run_command(sys.argv[1:] if argv is None else argv)
        sys.stdout.flush()  # a pipe's reader gone shows here, not at interpreter exit
        return code
    except Interrupted as stop:
        # a sweep told to stop before it could hand back what it measured (the paired
        # rounds' coordinator gone before its first turn): the line saying why is out
        return exit_code(stop.signum)
    except KeyboardInterrupt as stop:
        # Ctrl-C (or a run's SIGTERM, bench/sweep/interrupt.py's Stopped) before a sweep has
        # its own handlers (while torch imports, say): nothing was measured yet, so a line
        # and the shell's code for the signal, not a traceback.
        if not getattr(stop, "said", False):
            print("interrupted", file=sys.stderr)
        return exit_code(getattr(stop, "signum", signal.SIGINT))
    except BrokenPipeError:
        # `python -m bench compare ... | head`: the reader has gone. Point stdout at
        # /dev/null so that the interpreter's final flush does not fail a second time.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + 13  # as a shell reports a process that SIGPIPE ended


def run_command(argv: list[str]) -> int:
    try:
        if command_in(argv) in TOOLS:
            return run_tool(command_in(argv), argv)
        argv = loads_first(argv)
        args = build_parser(command_in(argv)).parse_args(argv)
        for path in args.load:
            load_file(path)
        return args.main(args, argv)
    except RunFolderWriteError as exc:  # before the sweep could start: nothing measured
        print(f"error: {hide(str(exc))}", file=sys.stderr)
        return 1
    except Exception as exc:
        if not is_user_error(exc):
            raise
        # a value it names may be a store's URL given where another argument goes
        print(f"error: {hide(user_error_line(exc))}", file=sys.stderr)
        return 2


def user_error_line(exc: Exception) -> str:
    """The one line a user error prints: a path error names its path and what is wrong."""
    if isinstance(exc, OSError):
        name = os.fsdecode(exc.filename)
        shown = name if len(name) <= 120 else f"{name[:60]}...{name[-40:]}"
        return f"{shown}: {exc.strerror or os.strerror(exc.errno)}"
    return str(exc)


def run_tool(name: str, argv: list[str]) -> int:
    """A command of TOOLS: the options before its name are ours (--load), the words after it
    are its own, passed on as they are."""
    at = argv.index(name)
    args = build_parser().parse_args([*argv[:at], name])
    for path in args.load:
        load_file(path)
    return command_module(name, TOOLS[name][0]).main(argv[at + 1:])
