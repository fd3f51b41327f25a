"""``python -m bench compare``: a baseline against candidates, with significance-aware flags."""

from __future__ import annotations

import argparse
import os

from bench.analyze.run_comparison import Side, compare_runs, load_side
from bench.analyze.judge import DEFAULT_THRESHOLD, REGRESSION
from bench.analyze.run_files import shared_run_ids
from bench.cli import percent, user_path
from bench.errors import UsageError
from bench.commands.report import write_html, write_pngs
from bench.output_path import check_output
from bench.present.comparison_page import comparison_sections, comparison_title, format_terminal


def add_parser(sub) -> None:
    p = sub.add_parser(
        "compare", help="compare runs, flagging significant changes",
        description="Match configurations across runs, and flag a change as a regression or "
        "an improvement only when it exceeds the threshold, its 95% interval excludes no "
        "change, and it stays significant after the Benjamini-Hochberg correction. With "
        "several repeats on each side the interval is Welch's t over the repeats' medians; "
        "with one run a side, a configuration is judged by its departure from the shift "
        "common to its phase, against the spread of every configuration about it, and the "
        "shift itself is reported, not counted: one run per side cannot tell it from the "
        "machine's drift. A side may pool several run folders: DIR,DIR.")
    p.add_argument("baseline", type=run_folders, metavar="BASELINE_DIR",
                   help="run folder (or DIR,DIR,...)")
    p.add_argument("candidates", type=run_folders, nargs="+", metavar="CANDIDATE_DIR",
                   help="one or more run folders (each may be DIR,DIR,...)")
    p.add_argument("--threshold", type=percent, default=DEFAULT_THRESHOLD, metavar="PCT",
                   help=f"smallest change that counts, in percent (default "
                   f"{DEFAULT_THRESHOLD * 100:g})")
    p.add_argument("--fail-on-regression", action="store_true",
                   help="exit with 1 when any regression is found (a shift common to every "
                   "configuration, with one run a side, is not one)")
    p.add_argument("--out", type=user_path, help="the HTML page (default: comparison.html in "
                   "the first candidate's run folder)")
    p.add_argument("--png", action="store_true",
                   help="also write each chart as a PNG (needs kaleido and a Chromium)")
    p.set_defaults(main=main)


def run_folders(text: str) -> str:
    """A side as given, DIR or DIR,DIR,..., each folder's ``~`` the home folder
    (as ``user_path`` makes it): the side is split only where it is read, so each part is
    expanded here, and the text is otherwise left as given, for messages that quote it."""
    return ",".join(os.path.expanduser(part) for part in text.split(","))


def main(args: argparse.Namespace, argv: list[str]) -> int:
    if args.out is not None:
        check_output(args.out, inputs=[args.baseline, *args.candidates])
    baseline = load_side(args.baseline)
    candidates = [load_side(c) for c in args.candidates]
    for argument, candidate in zip(args.candidates, candidates):
        refuse_the_same_runs(baseline, candidate, argument)
    comparison = compare_runs(baseline, candidates, args.threshold)
    print(format_terminal(comparison))
    intro, sections = comparison_sections(comparison)
    out = args.out or candidates[0].runs[0].path / "comparison.html"
    path = write_html(out, comparison_title(comparison), sections, intro)
    print()
    print(f"Comparison page: {path}")
    if args.png:
        write_pngs(sections, path)
    if comparison.count(REGRESSION) and args.fail_on_regression:
        return 1
    return 0


def refuse_the_same_runs(baseline: Side, candidate: Side, argument: str) -> None:
    """A candidate holding a run of the baseline (the same folder, or a copy) agrees with
    it by construction, not by measurement: "0 regressions" would say nothing."""
    shared = shared_run_ids(baseline.runs, candidate.runs)
    if shared:
        raise UsageError(f"{argument} holds run {shared[0]!r:.80}, which the baseline holds "
                         "too: a run compared with itself agrees by construction; compare "
                         "two runs")
