"""``python -m bench report``: one self-contained HTML page for one or more run folders."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.analyze.reader import load_run
from bench.cli import user_path
from bench.errors import UsageError
from bench.output_path import check_output
from bench.present.images import ImagesUnavailable, write_images
from bench.present.page import figures_of, write_page
from bench.present.report_page import report_sections, report_title


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="write the HTML report of one or more runs",
                       description="Charts of phase times, scaling, optimizer setups and "
                       "memory, the environment, and what was noisy or not measured; one "
                       "HTML file that works offline.")
    p.add_argument("run_dirs", nargs="+", type=user_path, metavar="RUN_DIR",
                   help="run folders (each holding results.csv)")
    p.add_argument("--out", type=user_path, help="the HTML file (default: report.html in the run "
                   "folder; with several, beside the first one)")
    p.add_argument("--png", action="store_true",
                   help="also write each chart as a PNG (needs kaleido and a Chromium)")
    p.set_defaults(main=main)


def default_out(run_dirs: list[Path]) -> Path:
    first = Path(run_dirs[0])
    return first / "report.html" if len(run_dirs) == 1 else first.resolve().parent / "report.html"


def write_html(path: Path, title: str, sections, intro) -> Path:
    try:
        return write_page(path, title, sections, intro)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None


def write_pngs(sections, html_path: Path) -> None:
    folder = html_path.with_name(html_path.stem + "-png")
    try:
        paths = write_images(figures_of(sections), folder)
    except ImagesUnavailable as exc:
        print(f"note: {exc}; the HTML page is written without them", file=sys.stderr)
        return
    print(f"PNG: {len(paths)} chart(s) in {folder}")


def main(args: argparse.Namespace, argv: list[str]) -> int:
    if args.out is not None:
        check_output(args.out, inputs=args.run_dirs, may_replace=("report.html",))
    runs = [load_run(d) for d in args.run_dirs]
    intro, sections = report_sections(runs)
    path = write_html(args.out or default_out(args.run_dirs), report_title(runs), sections,
                      intro)
    print(f"Report: {path}")
    if args.png:
        write_pngs(sections, path)
    return 0
