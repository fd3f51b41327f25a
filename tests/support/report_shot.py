"""How tall report pages are, and their screenshots: each page drawn whole in headless
Chromium, 1400 px wide, its height printed and, with ``--png``, written beside it as a PNG
of the same name (``report.html`` -> ``report.png``), so a reader sees the page without
running anything.

    python -m tests.support.report_shot PAGE.html... [--png] [--width 1400] [--section ID]

``--section ID`` shoots the section whose heading has that id alone (``networks``: "Where
the step goes"), into ``PAGE-ID.png``.

Needs Chromium (Debian: apt-get install chromium).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tests.support.chromium import Chromium, find_chromium


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pages", nargs="+", type=Path)
    parser.add_argument("--png", action="store_true", help="write a screenshot beside each")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--section", metavar="ID", help="only the section with this heading id")
    args = parser.parse_args(argv)
    executable = find_chromium()
    if executable is None:
        print("report_shot: chromium is not installed (Debian: apt-get install chromium)",
              file=sys.stderr)
        return 2
    missing = [str(p) for p in args.pages if not p.is_file()]
    if missing:
        print(f"report_shot: no such page: {', '.join(missing)}", file=sys.stderr)
        return 2
    with Chromium(executable, timeout=180) as browser:
        for page in args.pages:
            if args.png:
                suffix = f"-{args.section}.png" if args.section else ".png"
                out = page.with_name(page.stem + suffix)
                height = browser.screenshot(page, out, args.width, args.section)
                print(f"{page}: {height} px tall at {args.width} px wide; screenshot {out}")
            else:
                print(f"{page}: {browser.page_height(page, args.width)} px tall at "
                      f"{args.width} px wide")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
