"""``python -m bench schema``: the results columns as the Markdown table in results/README.md."""

from __future__ import annotations

import argparse

from bench.schema import SAMPLE_COLUMNS, markdown_table


def add_parser(sub) -> None:
    p = sub.add_parser("schema", help="print the documentation of the CSV columns")
    p.add_argument("--samples", action="store_true", help="the samples file's columns instead")
    p.set_defaults(main=main)


def main(args: argparse.Namespace, argv: list[str]) -> int:
    print(markdown_table(SAMPLE_COLUMNS) if args.samples else markdown_table())
    return 0
