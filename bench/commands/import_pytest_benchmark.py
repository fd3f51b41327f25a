"""``python -m bench import-pytest-benchmark FILE.json --out-dir DIR``."""

from __future__ import annotations

import argparse

from bench.cli import user_path


def add_parser(sub) -> None:
    p = sub.add_parser("import-pytest-benchmark",
                       help="turn a saved suite run (pytest-benchmark JSON) into a run folder")
    p.add_argument("file", type=user_path,
                   help="JSON from --benchmark-json or --benchmark-autosave")
    p.add_argument("--out-dir", type=user_path, required=True)
    p.set_defaults(main=main)


def main(args: argparse.Namespace, argv: list[str]) -> int:
    from bench.suite.importer import import_run

    run_id, n = import_run(args.file, args.out_dir)
    print(f"Imported {n} configurations as run {run_id} into {args.out_dir}")
    return 0
