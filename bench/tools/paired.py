"""``python -m bench paired-rounds``: the same sweep in several Python environments, in
interleaved rounds, then compared round by round.

An environment is an interpreter (a virtual environment with another torch build, another
CUDA) and the variables set for it (a setting to try). Each round runs the sweep once in
every environment, each in a fresh process, side by side and taking turns
(``bench/sweep/turns.py``): one process works at a time and hands the turn on at every
round of blocks, so the same configuration is timed in A and in B within a second, the
groups in one order shared by both, on one CPU they share (``--cpus``,
``bench/sweep/pinning.py``). This machine's speed moves between levels every few seconds;
run one after the other, each environment met the level of its own minutes, and
round-to-round noise of 10-25% per configuration buried a 10% change. ``--one-at-a-time``
runs them back to back instead, A B then B A (ABBA), with more in a fresh random order per
round, for environments that cannot share the machine (two processes each holding much of
one GPU's memory). ``python -m bench paired`` then pairs round i of the baseline (the first
environment) with round i of each other one; a change must hold across the rounds to be
called one.

    python -m bench paired-rounds --env old=.venvs/torch-2.13.0/bin/python \\
        --env new=.venvs/torch-2.14.1/bin/python --out-dir results/paired

Rounds already on disk are kept, and an unfinished one is resumed, so a call that stopped
(a signal, a reboot) continues where it was. A signal to this tool is passed on to the
sweeps, which stop after their configuration in progress, still taking turns (a second
signal, passed on too, stops them at once); a sweep
whose coordinator was killed stops at its next turn (``bench/sweep/turns.py``). Like ``bench/tools/versions.py``, this module
needs only the standard library: torch lives in the environments.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import subprocess
import sys
import time
from pathlib import Path

from bench import PROJECT_ROOT
from bench.atomic import write_json_atomic
from bench.analyze.plans import FIRST_LOOK, GROUP_ROUNDS, MAX_ROUNDS
from bench.cli import OneLineParser, percent, user_path  # no torch, no pandas: the bootstrap interpreter has neither
from bench.output_path import RUN_MARKERS, broken_link
from bench.schema import SWEEP_FILE
from bench.secrets import hide_each, hide_variable
from bench.sweep.interrupt import Interrupted, exit_code
from bench.sweep.pinning import ALL, AUTO, choose_cpus
# Environment and parse_environments are this tool's too: versions and bisect import them here
from bench.tools.paired_environments import (OWN_FILES, ROUND_FOLDER, USAGE_ERROR,  # noqa: F401
                                             Environment, fail, parse_environments)
from bench.tools.paired_progress import configs_in, progress_line
from bench.sweep.side_by_side import run_alone, run_side_by_side

# What `python -m bench run` imports in an environment, checked before the first round.
SWEEP_NEEDS = ("torch", "pandas")
PROBE_ANSWER = "sweep-ready"

# Rounds at most, by default: the rounds stop once every measurement is decided
# (bench/analyze/paired_rounds.py), and from the FIRST_LOOK-th on measure only what is not.
DEFAULT_ROUNDS = MAX_ROUNDS


def check_interpreters(envs: list[Environment]) -> None:
    """Refuse an environment whose interpreter cannot import what a sweep needs: every
    round would fail in it, one after the other."""
    # it must say so, not only exit 0: a program that runs nothing (/bin/true) exits 0 too
    probes = [(env, subprocess.Popen(  # with the variables its rounds run with
        [env.python, "-c", f"import {', '.join(SWEEP_NEEDS)}; print({PROBE_ANSWER!r})"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT), **env.variables})) for env in envs]
    for env, probe in probes:
        out, err = probe.communicate()
        if probe.returncode != 0 or PROBE_ANSWER not in out.split():
            last = (err.strip().splitlines() or [f"exit code {probe.returncode}, and it "
                                                 "did not run Python's -c"])[-1]
            raise fail(f"--env {env.name}={env.python} cannot run a sweep ({last}); give "
                       f"the interpreter of an environment with {' and '.join(SWEEP_NEEDS)}")


# `python -m bench run` options the rounds set themselves: where each round goes, what it
# resumes, which configurations it measures (`--workers` other than 1 is refused by each
# round's sweep: a process that takes turns measures alone)
ROUND_OWN_OPTIONS = ("--out-dir", "--resume", "--only", "--worker")


def split_run_args(text: str) -> list[str]:
    """The sweep's options, refused in one line where they name one the rounds set (or a
    prefix argparse would take for it)."""
    try:
        args = shlex.split(text)
    except ValueError as exc:
        # not the text itself: a quote left open cuts a password short of its masking
        raise fail(f"--run-args: {exc} (quote a value with spaces whole)") from None
    for arg in args:
        name = arg.split("=", 1)[0]
        if name.startswith("--") and len(name) > 2 \
                and any(own.startswith(name) for own in ROUND_OWN_OPTIONS):
            raise fail(f"--run-args: {name} is set by the rounds themselves (each round's "
                       f"folder, its resume and what it measures: "
                       f"{', '.join(ROUND_OWN_OPTIONS)}); leave it out")
    return args


def check_threshold(text: str) -> str:
    """Refused now, not after every round: `python -m bench paired` takes a percentage."""
    try:
        percent(text)
    except argparse.ArgumentTypeError as exc:
        raise fail(f"--threshold {exc}") from None
    return text


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


def round_command(env: Environment, folder: Path, run_args: list[str],
                  only: Path | None = None) -> tuple[list[str], dict[str, str]]:
    """The sweep in ``env`` into ``folder`` (continued where a run is there already): one
    process, each group GROUP_ROUNDS rounds in every environment (their turns stay in
    step), ``only`` the configurations still undecided where a file names them."""
    if (folder / SWEEP_FILE).exists():
        command = ["-m", "bench", "run", "--resume", str(folder), "--quiet", "--no-report"]
    else:
        # no network attribution pass and no report.html: the rounds are compared on the
        # phases' times alone, on paired.html, and either held the other side waiting
        command = ["-m", "bench", "run", "--out-dir", str(folder), "--quiet", "--no-report",
                   "--workers", "1",
                   "--min-rounds", str(GROUP_ROUNDS), "--max-rounds", str(GROUP_ROUNDS),
                   "--attribution-s", "0",
                   *(["--only", f"@{only}"] if only else []), *run_args]
    variables = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), **env.variables}
    return [env.python, *command], variables


def run_round(envs: list[Environment], round_: int, rounds: int, out_dir: Path,
              run_args: list[str], one_at_a_time: bool, only: Path | None,
              cpus: tuple[int, ...] | str | None = AUTO) -> list[str]:
    """One round in every environment; the names of those whose sweep failed to run."""
    by_name = {env.name: env for env in envs}
    folders = [round_folder(out_dir, env.name, round_) for env in envs]
    # a round measured in one environment, its folder gone in another (removed since): a
    # round interrupted in every environment resumes side by side, this one could not
    if any((f / "results.csv").exists() for f in folders) and not all(f.exists() for f in folders):
        missing = ", ".join(env.name for env, f in zip(envs, folders) if not f.exists())
        raise fail(f"round {round_} is measured in some environments but not in {missing}: "
                   "measured now, it would pair with rounds not run beside it; remove "
                   f"{out_dir}/*/round-{round_:02d} to measure it again in every environment")
    order = round_order([env.name for env in envs], round_)
    commands = [round_command(by_name[name], round_folder(out_dir, name, round_), run_args,
                              only) for name in order]
    if one_at_a_time:
        statuses = []
        for name, (argv, variables) in zip(order, commands):
            print(f"[round {round_}/{rounds}] {name}: "
                  f"{round_folder(out_dir, name, round_)}", flush=True)
            statuses.append(run_alone(argv, variables, cwd=os.getcwd()))
    else:
        print(f"[round {round_}/{rounds}] {' | '.join(order)}, side by side, taking "
              f"turns: {out_dir}/*/round-{round_:02d}", flush=True)
        # one order of the groups per round, the same in every environment
        statuses = run_side_by_side(commands, seed=round_, cwd=os.getcwd(),
                                    cpus=choose_cpus(cpus) if isinstance(cpus, str) else cpus)
    if all(status == USAGE_ERROR for status in statuses):
        # the sweep's arguments, refused in every environment: so would every round be
        raise fail(f"`python -m bench run` refused the sweep's arguments in every "
                   f"environment (above); {', '.join(sorted(set(order)))} measured nothing")
    failed = []
    for name, status in zip(order, statuses):
        # 1: some configurations recorded an error or a non-finite loss; the rest pair
        if status not in (0, 1):
            print(f"[round {round_}] {name}: the sweep did not complete (exit {status})",
                  file=sys.stderr, flush=True)
            failed.append(name)
    return failed


def decisions(envs: list[Environment], out_dir: Path, rounds: int, threshold: str) -> dict:
    """Where the comparison stands after ``rounds`` rounds: ``python -m bench paired
    --decisions`` in the baseline's interpreter (it has pandas)."""
    path = out_dir / OWN_FILES[1]
    command = [envs[0].python, "-m", "bench", "paired",
               *(str(out_dir / env.name) for env in envs), "--rounds", str(rounds),
               "--decisions", str(path)]
    if threshold:
        command += ["--threshold", threshold]
    variables = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    if run_alone(command, variables, cwd=os.getcwd()) != 0:
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def run_rounds(envs: list[Environment], rounds: int, out_dir: Path, run_args: list[str],
               one_at_a_time: bool = False, threshold: str = "",
               every_round: bool = False, cpus: tuple[int, ...] | str | None = AUTO) -> list[str]:
    """Rounds until every measurement is decided, ``rounds`` at most, each from the
    FIRST_LOOK-th on measuring only the configurations still undecided (``every_round``:
    all ``rounds`` of everything, as a noise model wants them), side by side on ``cpus``
    (``--cpus``'s words, chosen anew each round, or CPU numbers); the names of the
    environments whose sweep failed.
    """
    failed: list[str] = []
    only = None
    seconds_per_config = None
    for round_ in range(1, rounds + 1):
        started = time.monotonic()
        failed += run_round(envs, round_, rounds, out_dir, run_args, one_at_a_time, only, cpus)
        if every_round or round_ < FIRST_LOOK or round_ == rounds:
            continue
        measured = configs_in(round_folder(out_dir, envs[0].name, round_))
        if measured:
            seconds_per_config = (time.monotonic() - started) / measured
        state = decisions(envs, out_dir, round_, threshold)
        if not state:
            continue  # the comparison could not be read: the next round measures everything
        print(progress_line(state, round_, seconds_per_config), flush=True)
        if not state.get("undecided_configs"):
            break
        only = out_dir / OWN_FILES[3]
        only.write_text("\n".join(state["undecided_configs"]) + "\n")
    return sorted(set(failed))


def compare(envs: list[Environment], out_dir: Path, rounds: int, threshold: str) -> int:
    """``python -m bench paired`` with the baseline's interpreter: it has pandas."""
    folders = [str(out_dir / env.name) for env in envs]
    command = [envs[0].python, "-m", "bench", "paired", *folders, "--rounds", str(rounds),
               "--out", str(out_dir / OWN_FILES[0])]
    if threshold:
        command += ["--threshold", threshold]
    variables = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    return run_alone(command, variables, cwd=os.getcwd())


def keep_what_is_measured(out_dir: Path, envs: list[Environment], run_args: list[str]) -> None:
    """Record in ``out_dir`` what its rounds measure (the environments and the sweep), or,
    where an earlier command recorded it, refuse another: rounds of two sweeps would pair
    as one. More rounds, or another threshold, continue the same measurement."""
    # masked as env.json masks a command line: a store's URL in --run-args, or a password
    # in a variable, is never written (the same masked record still tells two apart)
    what = {"environments": [{"name": e.name, "python": e.python,
                              "variables": {k: hide_variable(k, v) for k, v in
                                            e.variables.items()}} for e in envs],
            "run_args": hide_each(run_args)}
    path = out_dir / OWN_FILES[2]
    if out_dir.exists() and not out_dir.is_dir():
        raise fail(f"--out-dir {out_dir} is a file; give a folder (made where missing)")
    if (line := broken_link(out_dir, "--out-dir")) is not None:  # not "File exists"
        raise fail(line)
    if any((out_dir / marker).exists() for marker in RUN_MARKERS):
        raise fail(f"--out-dir {out_dir} holds a run; give a folder of its own for the rounds")
    # a round's folder holds a run; an environment's folder (named round-7, say) rounds
    if any(ROUND_FOLDER.fullmatch(path.parent.name)
           for marker in RUN_MARKERS for path in out_dir.glob(f"round-*/{marker}")):
        raise fail(f"--out-dir {out_dir} holds one environment's rounds; give the folder "
                   "that holds every environment's (the earlier --out-dir)")
    try:
        earlier = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        earlier = None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise fail(f"{path} cannot be read ({exc}); it says what the rounds in "
                   f"{out_dir} measure: restore it, or give another --out-dir") from None
    # a record whose rounds measured nothing (their arguments refused) binds nothing
    measured = next(out_dir.glob("*/round-*/results.csv"), None) is not None
    if earlier is not None and earlier != what and measured:
        raise fail(f"{out_dir} holds rounds of another measurement ({path.name} records "
                   "other environments or --run-args); the command that began them resumes "
                   "them: give another --out-dir for this one")
    if earlier != what:
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            write_json_atomic(path, what)
        except OSError as exc:
            raise fail(f"cannot write {path}: {exc.strerror or exc}") from None


def measure_and_compare(envs: list[Environment], rounds: int, out_dir: Path,
                        run_args: list[str], one_at_a_time: bool, threshold: str,
                        every_round: bool = False,
                        cpus: tuple[int, ...] | str | None = AUTO) -> int:
    """The rounds, then their comparison; a signal stops the rounds with what they
    measured kept, one line and the shell's code for it."""
    out_dir = Path(os.path.abspath(out_dir))  # the rounds run in the same folder, wherever
    check_interpreters(envs)
    keep_what_is_measured(out_dir, envs, run_args)
    try:
        failed = run_rounds(envs, rounds, out_dir, run_args, one_at_a_time, threshold,
                            every_round, cpus)
        if failed:
            print(f"note: the sweep did not complete in {', '.join(failed)}; their rounds "
                  "pair where they hold the configuration", file=sys.stderr)
        code = compare(envs, out_dir, rounds, threshold)
        # a round a side could not measure is not a comparison that went through
        return max(code, 1) if failed else code
    except Interrupted as stop:
        print(f"{stop}: stopped; the rounds on disk are kept, and the same command resumes "
              "them", file=sys.stderr, flush=True)
        return exit_code(stop.signum)


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m bench paired-rounds",
                           description="The same sweep in several Python environments, in "
                           "interleaved rounds side by side, then compared round by round.")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=PYTHON",
                        help="an environment: a name and its interpreter (the first is the "
                        "baseline)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME:VAR=VALUE",
                        help="an environment variable for one environment")
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS,
                        help=f"rounds at most (default {DEFAULT_ROUNDS}): they stop once every "
                        f"measurement is decided, and from round {FIRST_LOOK} on measure only "
                        "what is not")
    parser.add_argument("--out-dir", type=user_path, default=Path("results/paired"))
    parser.add_argument("--run-args", default="", help="`python -m bench run` options")
    parser.add_argument("--threshold", default="", help="passed to `python -m bench paired`")
    parser.add_argument("--one-at-a-time", action="store_true",
                        help="run a round's environments one after the other, not side by "
                        "side taking turns (where two processes cannot share the device's "
                        "memory, say)")
    parser.add_argument("--every-round", action="store_true",
                        help="measure every configuration in all --rounds rounds, decided or "
                        "not (an A/A measurement for a noise model wants them all)")
    parser.add_argument("--cpus", default=AUTO, help="where the sides measure, taking turns: "
                        f"{AUTO} (the idlest CPU at each round's start, or as many as the "
                        f"sweep's --threads; the default), CPU numbers such as 2,3, or {ALL} "
                        "(not pinned: where the system puts them)")
    args = parser.parse_args(argv)
    try:
        choose_cpus(args.cpus)  # refused now, not at the first round
    except ValueError as exc:
        parser.error(f"--cpus {exc}")
    if args.rounds < 2:
        parser.error(f"--rounds must be at least 2 to pair, got {args.rounds}")
    envs = parse_environments(args.env, args.set)
    threshold = check_threshold(args.threshold) if args.threshold else ""
    return measure_and_compare(envs, args.rounds, args.out_dir, split_run_args(args.run_args),
                               args.one_at_a_time, threshold, args.every_round, args.cpus)


if __name__ == "__main__":
    sys.exit(main())
