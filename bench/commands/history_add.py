"""``python -m bench history add RUN_DIR...``: load run folders into the history store."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.history.add import ADDED, add_run
from bench.history.record import read_record
from bench.history.store import check_store, open_store


def add_parser(sub, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("add", parents=[parent], help="add run folders to the store",
                       description="Load run folders (results, samples, environment) into "
                       "the history store. A run already there is left as it is; a damaged "
                       "folder is refused and leaves the store unchanged.")
    p.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    p.set_defaults(main=main)


def main(args: argparse.Namespace, argv: list[str]) -> int:
    # the store is checked, then the first folder read, before the store is opened to
    # write (which makes its tables): a folder refused leaves no store made for it
    check_store(args.store, args.schema)
    first = read_record(args.run_dirs[0])
    with open_store(args.store, write=True, schema=args.schema) as store:
        for folder in [first, *args.run_dirs[1:]]:
            outcome = add_run(store, folder)
            detail = (f"{outcome.rows} rows, {outcome.samples} samples"
                      if outcome.what == ADDED else "left as it is")
            print(f"{outcome.run_id}: {outcome.what} ({detail}) in {store.name}")
    return 0
