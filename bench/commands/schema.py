"""``python -m bench schema``: the results columns as the Markdown table in results/README.md,
or with ``--axes`` the sweep's axes as the table in bench/sweep/README.md."""

from __future__ import annotations

import argparse

from bench.axes import markdown_table as axes_table
from bench.schema import (NETWORK_COLUMNS, OPERATOR_COLUMNS, RATIO_COLUMNS, SAMPLE_COLUMNS,
                          markdown_table)


def add_parser(sub) -> None:
    p = sub.add_parser("schema", help="print the documentation of the CSV columns")
    p.add_argument("--samples", action="store_true", help="the samples file's columns instead")
    p.add_argument("--axes", action="store_true", help="the sweep's axes instead")
    p.add_argument("--ratios", action="store_true", help="the ratios file's columns instead")
    p.add_argument("--networks", action="store_true",
                   help="the per-network file's columns (networks.csv) instead")
    p.add_argument("--operators", action="store_true",
                   help="the traced operators' file's columns (operators.csv) instead")
    p.set_defaults(main=main)


def main(args: argparse.Namespace, argv: list[str]) -> int:
    if args.axes:
        print(axes_table())
    elif args.ratios:
        print(markdown_table(RATIO_COLUMNS))
    elif args.networks:
        print(markdown_table(NETWORK_COLUMNS))
    elif args.operators:
        print(markdown_table(OPERATOR_COLUMNS))
    else:
        print(markdown_table(SAMPLE_COLUMNS) if args.samples else markdown_table())
    return 0
