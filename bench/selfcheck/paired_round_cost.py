"""``python -m bench.selfcheck.paired_round_cost``: what one paired round of the default sweep
costs as the rounds ran before (each configuration's network attribution pass and each
side's report.html, the sides wherever the system put them) and as they run now (neither,
the sides pinned to one CPU they share).

A paired round runs the sweep once in each environment, side by side, taking turns; a
side's work between two of its turns (the attribution pass, the report) holds the other
waiting. The two settings are measured alternately, ``--pairs`` times each (ABAB...), as
A/A rounds of this interpreter against itself, so that a machine whose speed drifts over
minutes lands on both alike; the wall time of each round, and their medians, are printed
(and written as JSON with ``--out``).
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import PROJECT_ROOT
from bench.cli import OneLineParser

# (--cpus, --run-args): the rounds as they were (each side's network attribution pass and
# report.html, the sides wherever the system put them), and as they run now
SETTINGS = {"as before (attribution pass, reports, not pinned)":
            ("all", "--attribution-s 0.25 --report"),
            "as now (no pass, no report, one CPU)": ("auto", "")}


def one_round(cpus: str, run_args: str, extra: list[str]) -> float:
    """Wall seconds of one A/A paired round of the default sweep: two rounds, the fewest
    that pair, measured whole (``--every-round``), and their time halved."""
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "-m", "bench", "paired-rounds", "--env",
                   f"a={sys.executable}", "--env", f"b={sys.executable}", "--rounds", "2",
                   "--every-round", "--cpus", cpus, "--out-dir", str(Path(folder) / "rounds"),
                   "--run-args", " ".join([run_args, *extra])]
        started = time.monotonic()
        subprocess.run(command, cwd=PROJECT_ROOT, check=True, capture_output=True)
        return (time.monotonic() - started) / 2


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m bench.selfcheck.paired_round_cost",
                           description="One paired round of the default sweep as the rounds "
                           "ran before and as they run now, alternately.")
    parser.add_argument("--pairs", type=int, default=1)
    parser.add_argument("--run-args", default="", help="more options for each round's sweep")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.pairs < 1:
        parser.error(f"--pairs must be at least 1, got {args.pairs}")
    seconds: dict[str, list[float]] = {name: [] for name in SETTINGS}
    for _ in range(args.pairs):
        for name, (cpus, run_args) in SETTINGS.items():
            seconds[name].append(one_round(cpus, run_args, args.run_args.split()))
            print(f"{name}: {seconds[name][-1]:.1f} s", flush=True)
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    first, second = medians.values()
    print(f"medians: {', '.join(f'{n} {m:.1f} s' for n, m in medians.items())}; "
          f"the second takes {second / first:.2f} of the first's time")
    if args.out:
        args.out.write_text(json.dumps({"seconds": seconds, "medians": medians}, indent=2)
                            + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
