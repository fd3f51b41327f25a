"""``python -m bench history``: the store of every run (``bench/history/``).

Subcommands, a module each: ``add`` (run folders into the store), ``report`` (the offline
dashboard) and ``changes`` (where a configuration's time moved along one machine's history,
and what changed in the environment there: ``bench/history/changes.py``). Each takes ``--store``: a DuckDB file, or a
``postgresql://`` URL; without it, $BENCH_HISTORY, else ``results/history.duckdb``; and
``--schema``, the schema the project's tables live in there. Only ``add`` writes.
"""

from __future__ import annotations

import argparse
import importlib

SUBCOMMANDS = ("bench.commands.history_add", "bench.commands.history_report",
               "bench.commands.history_changes")


def store_option() -> argparse.ArgumentParser:
    """The ``--store`` option every subcommand takes."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--store", metavar="URL",
                        help="a DuckDB file or a postgresql:// URL (default: $BENCH_HISTORY, "
                        "else results/history.duckdb); a password in PGPASSWORD or a "
                        "service file stays off the command line")
    parent.add_argument("--schema", metavar="NAME",
                        help="the schema of the project's tables in the store (default: "
                        "$BENCH_HISTORY_SCHEMA, else multinet_bench)")
    return parent


def add_parser(sub) -> None:
    p = sub.add_parser("history", help="the store of every run: add, report, changes",
                       description=__doc__.split("\n\n")[1].replace("\n", " "))
    subcommands = p.add_subparsers(dest="history_command", required=True,
                                   metavar="{add,report,changes}")
    parent = store_option()
    for module in SUBCOMMANDS:
        importlib.import_module(module).add_parser(subcommands, parent)
