"""``python -m bench history add RUN_DIR...``: load run folders into the history store."""

from __future__ import annotations

import argparse
import signal
import sys

from bench.cli import user_path
from bench.history.add import ADDED, add_run, known_outcome, stored_fingerprints
from bench.history.location import check_store_apart
from bench.errors import UsageError
from bench.history.record import RunRecord, read_record
from bench.history.store import check_store, open_store, store_url
from bench.sweep.interrupt import checkpoint, exit_code, stop_at_checkpoints


def add_parser(sub, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("add", parents=[parent], help="add run folders to the store",
                       description="Load run folders (results, samples, environment) into "
                       "the history store. A run already there is left as it is; a damaged "
                       "folder is refused and leaves the store unchanged.")
    p.add_argument("run_dirs", nargs="+", type=user_path, metavar="RUN_DIR")
    p.set_defaults(main=main)


def main(args: argparse.Namespace, argv: list[str]) -> int:
    try:
        with stop_at_checkpoints():  # between runs, or while the store is waited for
            return add_all(args)
    except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM (bench/__main__.py), say while
        # the store is waited for: each run goes in whole or not at all
        print("interrupted: the runs not said added above were not added, and the store "
              "holds no part of them; the same command adds them (those added are left as "
              "they are)", file=sys.stderr)
        return exit_code(getattr(stop, "signum", signal.SIGINT))


def add_all(args: argparse.Namespace) -> int:
    """Every folder read and checked, and every run already stored looked up read-only,
    before the store is opened to write (which makes or moves its tables): a command that
    refuses any folder, or a run stored with other contents, leaves the store as it was."""
    for folder in args.run_dirs:  # the store must not become one of a run's files
        check_store_apart(store_url(args.store), folder,
                          "--store" if args.store is not None else "the history store")
    check_store(args.store, args.schema)
    checked = [read_record(folder) for folder in args.run_dirs]
    first_of: dict[str, RunRecord] = {}
    for record in checked:
        seen = first_of.setdefault(record.run_id, record)
        if seen.fingerprint != record.fingerprint:
            raise UsageError(f"{seen.folder} and {record.folder} are both run {record.run_id}, "
                             "with other contents: add one of them")
    stored = stored_fingerprints(args.store, args.schema, [r.run_id for r in checked])
    for record in checked:
        if record.run_id in stored:
            known_outcome(record, stored[record.run_id])  # refuses other contents
    with open_store(args.store, write=True, schema=args.schema) as store:
        for record in checked:
            outcome = add_run(store, record)
            detail = (f"{outcome.rows} rows, {outcome.samples} samples"
                      if outcome.what == ADDED else "left as it is")
            print(f"{outcome.run_id}: {outcome.what} ({detail}) in {store.name}")
            checkpoint()
    return 0
