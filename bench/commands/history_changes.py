"""``python -m bench history changes``: where a configuration's time moved along one machine's
history, and what changed in the environment there (``bench/history/changes.py``)."""

from __future__ import annotations

import argparse

from bench.analyze.judge import DEFAULT_THRESHOLD
from bench.cli import percent
from bench.history.changes import Change, scan
from bench.history.store import open_store
from bench.schema import PHASES, STEP

TITLES = ("machine", "config", "when", "ratio [95% interval]", "change", "attributed to")


def add_parser(sub, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "changes", parents=[parent], help="find where times changed along each machine's "
        "history", description="Along each machine's history of each configuration, find "
        "the runs where its time changed and persisted: at each boundary between runs, the "
        "median of up to 5 runs after it against that of up to 5 runs before, a change when "
        "it exceeds the threshold, the two sides' 95% intervals do not overlap, the first "
        "two runs after it both show it and it stays significant after the "
        "Benjamini-Hochberg correction. Each change names what the environment records "
        "differently in the runs on either side (torch, CUDA, driver, project commit).")
    p.add_argument("--machine", help="one machine's history (as `runs.machine` names it)")
    p.add_argument("--config", metavar="CONFIG",
                   help="a config_id, or a part of one: every configuration containing it")
    p.add_argument("--phase", default=STEP, choices=(*PHASES, STEP),
                   help=f"the phase whose time is followed (default {STEP})")
    p.add_argument("--threshold", type=percent, default=DEFAULT_THRESHOLD, metavar="PCT",
                   help=f"smallest change that counts, in percent (default "
                   f"{DEFAULT_THRESHOLD * 100:g})")
    p.set_defaults(main=main)


def main(args: argparse.Namespace, argv: list[str]) -> int:
    with open_store(args.store, schema=args.schema) as store:
        found = scan(store, args.machine, args.config, args.phase, args.threshold)
        name = store.name
    if not found.changes:
        print(f"no changes in {found.series} series (phase {args.phase}, {name})")
    else:
        count = len(found.changes)
        print(f"{count} change{'s' * (count != 1)} in {found.series} series "
              f"(phase {args.phase}, {name}):")
        print("\n".join(table(found.changes)))
    if found.detectable is not None:
        print(f"At the noise of these histories, a step under ~{found.detectable:.0%} would "
              "most likely go unseen (the median over every boundary judged of the step it "
              "would have found 80% of the time; more runs on each side see smaller ones)")
    return 0


def row(change: Change) -> tuple[str, ...]:
    """A change's cells, in the order of ``TITLES``."""
    return (change.machine, change.config_id,
            f"{change.before_started_at[:10]} -> {change.after_started_at[:10]} "
            f"({change.after_run})",
            f"{change.ratio:.3f} [{change.ratio_low:.3f}, {change.ratio_high:.3f}]",
            change.direction, change.explanation)


def table(changes: list[Change]) -> list[str]:
    """Fixed-width lines: the titles, then one line per change."""
    cells = [TITLES, *(row(c) for c in changes)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(TITLES) - 1)]
    return ["  ".join([*(f"{c:<{w}}" for c, w in zip(line, widths)), line[-1]])
            for line in cells]
