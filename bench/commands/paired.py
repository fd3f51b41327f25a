"""``python -m bench paired``: environments measured in interleaved rounds, compared round by
round (``python -m bench.tools.paired`` runs the rounds; ``bench/analyze/paired.py``
judges them)."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.analyze.paired import compare_paired
from bench.analyze.reader import load_run
from bench.analyze.significance import DEFAULT_THRESHOLD, REGRESSION
from bench.commands.compare import percent
from bench.commands.report import write_html
from bench.errors import UsageError
from bench.present.paired import paired_sections, paired_terminal


def add_parser(sub) -> None:
    p = sub.add_parser(
        "paired", help="compare environments measured in interleaved rounds",
        description="Each folder holds one environment's rounds (round-01, round-02, ...); "
        "round i of the baseline pairs with round i of each candidate, measured back to "
        "back. A change must hold across the rounds to be called one.")
    p.add_argument("baseline", type=Path, metavar="BASELINE_ROUNDS",
                   help="folder of the baseline's rounds")
    p.add_argument("candidates", type=Path, nargs="+", metavar="CANDIDATE_ROUNDS",
                   help="folders of the candidates' rounds")
    p.add_argument("--rounds", type=int, help="pair only the first N rounds")
    p.add_argument("--threshold", type=percent, default=DEFAULT_THRESHOLD, metavar="PCT",
                   help=f"smallest change that counts, in percent (default "
                   f"{DEFAULT_THRESHOLD * 100:g})")
    p.add_argument("--fail-on-regression", action="store_true",
                   help="exit with 1 when any regression is found")
    p.add_argument("--out", type=Path, help="the HTML page (default: paired.html beside the "
                   "baseline's folder)")
    p.set_defaults(main=main)


def rounds_in(folder: Path, count: int | None) -> list:
    """The runs of ``folder``'s round-* subfolders, in round order."""
    if not folder.is_dir():
        raise UsageError(f"{folder}: no such folder of rounds")
    paths = sorted(p for p in folder.glob("round-*") if p.is_dir())
    if not paths:
        raise UsageError(f"{folder} holds no round-* folder; `python -m bench.tools.paired` "
                         "writes them")
    return [load_run(p) for p in paths[:count]]


def main(args: argparse.Namespace, argv: list[str]) -> int:
    if args.rounds is not None and args.rounds < 2:
        raise UsageError(f"--rounds must be at least 2 to pair, got {args.rounds}")
    baseline = rounds_in(args.baseline, args.rounds)
    names = [args.baseline.name, *(c.name for c in args.candidates)]
    tables = []
    for folder in args.candidates:
        candidate = rounds_in(folder, args.rounds)
        n = min(len(baseline), len(candidate))
        tables.append(compare_paired(baseline[:n], candidate[:n], args.threshold))
    print(paired_terminal(names, tables, args.threshold))
    intro, sections = paired_sections(names, tables, args.threshold)
    path = write_html(args.out or args.baseline.resolve().parent / "paired.html",
                      f"multinet-bench paired comparison: {', '.join(names[1:])} against "
                      f"{names[0]}", sections, intro)
    print(f"\nPaired comparison page: {path}")
    # a change of everything at once is the common shift's verdict, one for the comparison
    regressions = sum(int((t["verdict"] == REGRESSION).sum())
                      + ((t.attrs.get("common_shift") or {}).get("verdict") == REGRESSION)
                      for t in tables)
    return 1 if regressions and args.fail_on_regression else 0
