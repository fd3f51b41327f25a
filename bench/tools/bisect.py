"""``python -m bench bisect``: the first environment, in an ordered list, at which each
change appears, by paired comparisons of midpoints against the first environment.

    python -m bench bisect --env 2.11=.venvs/torch-2.11.0/bin/python \\
        --env 2.12=.venvs/torch-2.12.0/bin/python ... --env 2.14=.venvs/torch-2.14.1/bin/python \\
        --run-args "--scenarios sequential --batch-sizes 32" --out-dir results/bisect

Environments are given as ``python -m bench paired-rounds`` takes them (``--env
NAME=PYTHON``, in order, ``--set NAME:VAR=VALUE``). Each comparison is
``compare_environments``'s (paired rounds, then a verdict per measurement) into ``OUT_DIR/<first>-vs-<other>/``; the search is
``bench/analyze/bisection.py``'s, and the report says for each culprit step its changes
with their intervals and what env.json records differently on either side. The report is
also written to ``OUT_DIR/bisection.txt``. Comparisons on disk are kept: the same command
after a stop resumes them. The guide: ``bench/tools/bisect.md``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bench.analyze.bisection import bisect
from bench.analyze.judge import IMPROVEMENT, REGRESSION
from bench.atomic import write_text_atomic
from bench.cli import OneLineParser, percent, user_path
from bench.output_path import broken_link
from bench.present.bisection_text import bisection_text
from bench.sweep.interrupt import Interrupted, exit_code
from bench.tools.compare_environments import compare_environments
from bench.tools.paired import (DEFAULT_ROUNDS, check_threshold, fail, parse_environments,
                                split_run_args)
from bench.tools.paired_environments import MAX_NAME_BYTES

REPORT = "bisection.txt"


def parse(argv: list[str] | None):
    parser = OneLineParser(prog="python -m bench bisect",
                           description="Find the first environment of an ordered list at which "
                           "each change appears, by paired comparisons of midpoints.")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=PYTHON",
                        help="an environment, in order (the first is every comparison's "
                        "baseline)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME:VAR=VALUE",
                        help="an environment variable for one environment")
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS,
                        help=f"paired rounds per comparison (default {DEFAULT_ROUNDS})")
    parser.add_argument("--out-dir", type=user_path, default=Path("results/bisect"))
    parser.add_argument("--run-args", default="", help="`python -m bench run` options")
    parser.add_argument("--threshold", default="", help="smallest change that counts, in "
                        "percent (default 5)")
    parser.add_argument("--one-at-a-time", action="store_true",
                        help="run each round's two environments one after the other")
    args = parser.parse_args(argv)
    if args.rounds < 2:
        parser.error(f"--rounds must be at least 2 to pair, got {args.rounds}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    envs = parse_environments(args.env, args.set)
    threshold = percent(check_threshold(args.threshold)) if args.threshold else None
    run_args = split_run_args(args.run_args)
    if args.out_dir.exists() and not args.out_dir.is_dir():
        raise fail(f"--out-dir {args.out_dir} is a file, not a folder")
    if (line := broken_link(args.out_dir, "--out-dir")) is not None:  # before any round
        raise fail(line)
    # each comparison's folder is named FIRST-vs-OTHER: both names in one folder's name
    longest = max(len(f"{envs[0].name}-vs-{env.name}".encode()) for env in envs[1:])
    if longest > MAX_NAME_BYTES:
        raise fail(f"--env names: a comparison's folder is named FIRST-vs-OTHER, {longest} "
                   f"bytes here, too long for a folder's name (at most {MAX_NAME_BYTES}); "
                   "give shorter names")
    seen: dict[str, dict] = {}

    def against_first(k: int):
        first, other = envs[0], envs[k]
        print(f"[bisection] {other.name} against {first.name}", flush=True)
        options = {"threshold": threshold} if threshold is not None else {}
        comparison = compare_environments(first, other, args.out_dir / f"{first.name}-vs-"
                                          f"{other.name}", run_args, rounds=args.rounds,
                                          one_at_a_time=args.one_at_a_time, **options)
        seen.update(comparison.envs)
        changed = comparison.table["verdict"].isin([REGRESSION, IMPROVEMENT]).sum()
        print(f"[bisection] {other.name} against {first.name}: {changed} of "
              f"{len(comparison.table)} measurements changed, over {comparison.rounds} rounds",
              flush=True)
        return comparison.table

    try:
        found = bisect(len(envs), against_first)
    except Interrupted as stop:
        print(f"{stop}: stopped; the comparisons on disk are kept, and the same command "
              "resumes them", file=sys.stderr, flush=True)
        return exit_code(stop.signum)
    text = bisection_text(found, [env.name for env in envs], seen)
    print()
    print(text)
    write_text_atomic(args.out_dir / REPORT, text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
