"""``python -m bench.tools.paired``: the same sweep in several Python environments, in
interleaved rounds, then compared round by round.

An environment is an interpreter (a virtual environment with another torch build, another
CUDA) and the variables set for it (a setting to try). Each round runs the sweep once in
every environment, each time in a fresh process, back to back: with two environments in
the order A B, then B A (ABBA: a drift of the machine over the minutes of a round lands on
both alike), with more in a fresh random order per round. ``python -m bench paired`` then
pairs round i of the baseline (the first environment) with round i of each other one; a
change must hold across the rounds to be called one.

    python -m bench.tools.paired --env old=.venvs/torch-2.13.0/bin/python \\
        --env new=.venvs/torch-2.14.1/bin/python --rounds 8 --out-dir results/paired

Rounds already on disk are kept, and an unfinished one is resumed, so a call that stopped
(a signal, a reboot) continues where it was. Like ``bench/tools/versions.py``, this module
needs only the standard library: torch lives in the environments.
"""

from __future__ import annotations

import argparse
import os
import random
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bench import PROJECT_ROOT
from bench.schema import SWEEP_FILE  # no torch, no pandas: the bootstrap interpreter has neither

# Rounds by default: enough for the paired t-test to see a change of a few times a
# configuration's own run-to-run noise. On a shared 2-core virtual machine (the CPU
# references') that noise is 10-24% per configuration and run, so a 10% change needs far
# more: 32 rounds found 7% of the slowed configurations in simulation
# (bench/tools/noise_model.py), with no false flag in 1,880 unchanged measurements at 8, 16
# or 32. Quieter machines and larger steps need fewer; --rounds sets it.
DEFAULT_ROUNDS = 8


@dataclass
class Environment:
    name: str
    python: str
    variables: dict[str, str] = field(default_factory=dict)


def parse_environments(envs: list[str], settings: list[str]) -> list[Environment]:
    """``NAME=PYTHON`` for each environment, ``NAME:VAR=VALUE`` for each variable."""
    out: dict[str, Environment] = {}
    for text in envs:
        name, sep, python = text.partition("=")
        if not sep or not name or not python:
            raise SystemExit(f"error: --env {text!r}: expected NAME=PYTHON")
        if name in out:
            raise SystemExit(f"error: --env {name!r} is given twice")
        out[name] = Environment(name, python)
    for text in settings:
        name, sep, assignment = text.partition(":")
        var, sep2, value = assignment.partition("=")
        if not sep or not sep2 or not var:
            raise SystemExit(f"error: --set {text!r}: expected NAME:VAR=VALUE")
        if name not in out:
            raise SystemExit(f"error: --set {text!r}: no environment {name!r}; "
                             f"given: {', '.join(out)}")
        out[name].variables[var] = value
    if len(out) < 2:
        raise SystemExit("error: a paired comparison needs at least two --env")
    return list(out.values())


def round_order(names: list[str], round_: int) -> list[str]:
    """Who runs when in round ``round_`` (1-based): A B, B A, A B... for two; for more, a
    random order drawn afresh each round (seeded by the round, so a rerun keeps it)."""
    if len(names) == 2:
        return names if round_ % 2 == 1 else names[::-1]
    order = list(names)
    random.Random(round_).shuffle(order)
    return order


def round_folder(out_dir: Path, name: str, round_: int) -> Path:
    return out_dir / name / f"round-{round_:02d}"


def run_round(env: Environment, folder: Path, run_args: list[str]) -> int:
    """The sweep in ``env`` into ``folder`` (continued where a run is there already)."""
    if (folder / SWEEP_FILE).exists():
        command = ["-m", "bench", "run", "--resume", str(folder), "--quiet"]
    else:
        command = ["-m", "bench", "run", "--out-dir", str(folder), "--quiet", *run_args]
    variables = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), **env.variables}
    return subprocess.run([env.python, *command], cwd=PROJECT_ROOT, env=variables).returncode


def run_rounds(envs: list[Environment], rounds: int, out_dir: Path,
               run_args: list[str]) -> list[str]:
    """Every round of every environment; the names of those whose sweep failed to run."""
    failed = []
    by_name = {env.name: env for env in envs}
    for round_ in range(1, rounds + 1):
        for name in round_order([env.name for env in envs], round_):
            folder = round_folder(out_dir, name, round_)
            print(f"[round {round_}/{rounds}] {name}: {folder}", flush=True)
            status = run_round(by_name[name], folder, run_args)
            # 1: some configurations recorded an error or a non-finite loss; the rest pair
            if status not in (0, 1):
                print(f"[round {round_}] {name}: the sweep did not complete (exit {status})",
                      file=sys.stderr, flush=True)
                failed.append(name)
    return sorted(set(failed))


def compare(envs: list[Environment], out_dir: Path, rounds: int, threshold: str) -> int:
    """``python -m bench paired`` with the baseline's interpreter: it has pandas."""
    folders = [str(out_dir / env.name) for env in envs]
    command = [envs[0].python, "-m", "bench", "paired", *folders, "--rounds", str(rounds),
               "--out", str(out_dir / "paired.html")]
    if threshold:
        command += ["--threshold", threshold]
    variables = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    return subprocess.run(command, cwd=PROJECT_ROOT, env=variables).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tools.paired",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--env", action="append", default=[], metavar="NAME=PYTHON",
                        help="an environment: a name and its interpreter (the first is the "
                        "baseline)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME:VAR=VALUE",
                        help="an environment variable for one environment")
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS,
                        help=f"rounds (default {DEFAULT_ROUNDS})")
    parser.add_argument("--out-dir", type=Path, default=Path("results/paired"))
    parser.add_argument("--run-args", default="", help="`python -m bench run` options")
    parser.add_argument("--threshold", default="", help="passed to `python -m bench paired`")
    args = parser.parse_args(argv)
    if args.rounds < 2:
        parser.error(f"--rounds must be at least 2 to pair, got {args.rounds}")
    envs = parse_environments(args.env, args.set)
    failed = run_rounds(envs, args.rounds, args.out_dir, shlex.split(args.run_args))
    if failed:
        print(f"note: the sweep did not complete in {', '.join(failed)}; their rounds pair "
              "where they hold the configuration", file=sys.stderr)
    return compare(envs, args.out_dir, args.rounds, args.threshold)


if __name__ == "__main__":
    sys.exit(main())
