"""``python -m bench history report [--out FILE]``: the whole history store as one offline
HTML page."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.analyze.judge import DEFAULT_THRESHOLD
from bench.cli import percent, user_path
from bench.errors import UsageError
from bench.history.dashboard import build_dashboard
from bench.history.store import open_store
from bench.output_path import check_output
from bench.present.history_page import write_history_page

DEFAULT_OUT = Path("results") / "history.html"


def add_parser(sub, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("report", parents=[parent], help="write the store's offline dashboard",
                       description="One HTML page of every run in the store, which works "
                       "offline: each configuration's time across torch versions and "
                       "devices with its interval (choose the configuration in the page), a "
                       "device x torch version matrix, and each machine's latest run "
                       "against its previous one, judged as `compare` judges two runs.")
    p.add_argument("--out", type=user_path, default=DEFAULT_OUT,
                   help=f"the HTML file (default: {DEFAULT_OUT})")
    p.add_argument("--threshold", type=percent, default=DEFAULT_THRESHOLD, metavar="PCT",
                   help="smallest change that counts, in percent (default "
                   f"{DEFAULT_THRESHOLD * 100:g})")
    p.set_defaults(main=main)


def main(args: argparse.Namespace, argv: list[str]) -> int:
    check_output(args.out)
    # a report reads: the store is opened read-only, and never made where none is
    with open_store(args.store, schema=args.schema) as store:
        dashboard = build_dashboard(store, args.threshold)
    try:
        path = write_history_page(args.out, dashboard)
    except OSError as exc:
        raise UsageError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    size = path.stat().st_size / 1e6
    print(f"History page: {path} ({len(dashboard.runs)} runs, "
          f"{dashboard.data.table['config_count']} configurations, {size:.1f} MB)")
    return 0
