"""``python -m bench.selfcheck.tests_under_load``: the test suite's tiers run while a
CPU-bound process spins on each core, ``--times`` times in a row each, to show that what
the tests assert holds on a machine others are using.

A burner is ``python3 -c "while True: pass"``, one per core (``os.cpu_count()``), started
before the tiers and stopped after; each tier is its make target (``make test``, ``make
test-all``) from the project's root, with ``MAKE_ARGS`` passed on. Each run's exit code,
wall time and pytest's last line are printed and, with ``--out``, written as JSON; with
``--logs``, each run's whole output is kept there as ``<tier>-<n>.log`` (pytest's
``--durations`` table, passed in ``ARGS``, says which tests the load slowed most); the
command exits 1 when any run failed.

    python -m bench.selfcheck.tests_under_load --tiers test,test-all --times 3 --out load.json
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench import PROJECT_ROOT
from bench.cli import OneLineParser

TIERS = ("test", "test-all")
BURNER = "while True: pass"


def parse(argv: list[str] | None):
    parser = OneLineParser(prog="python -m bench.selfcheck.tests_under_load",
                           description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiers", default=",".join(TIERS),
                        help=f"make targets, in order (default: {','.join(TIERS)})")
    parser.add_argument("--times", type=int, default=3, help="runs of each tier (default 3)")
    parser.add_argument("--burners", type=int, default=os.cpu_count() or 1,
                        help="CPU-bound processes beside the tests (default: one per core)")
    parser.add_argument("--make-args", default="", help="passed to make, e.g. 'PYTHON=...'")
    parser.add_argument("--out", type=Path, help="the runs as JSON")
    parser.add_argument("--logs", type=Path, help="a folder for each run's whole output")
    args = parser.parse_args(argv)
    tiers = [t for t in args.tiers.split(",") if t]
    unknown = [t for t in tiers if t not in TIERS]
    if unknown or not tiers:
        parser.error(f"--tiers {args.tiers!r}: give one or more of {', '.join(TIERS)}")
    if args.times < 1 or args.burners < 0:
        parser.error("--times must be at least 1 and --burners at least 0")
    return args, tiers


def one_run(tier: str, make_args: str, log: Path | None) -> dict:
    started = time.monotonic()
    proc = subprocess.run(["make", tier, *shlex.split(make_args)], cwd=PROJECT_ROOT,
                          capture_output=True, text=True)
    if log is not None:
        log.write_text(proc.stdout + proc.stderr)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    last = next((line.strip("= ") for line in reversed(lines)
                 if " passed" in line or " failed" in line), lines[-1] if lines else "")
    return {"tier": tier, "returncode": proc.returncode,
            "wall_s": round(time.monotonic() - started, 1), "pytest": last,
            "failed": [line for line in lines if line.startswith("FAILED")]}


def main(argv: list[str] | None = None) -> int:
    args, tiers = parse(argv)
    # stopped by SIGTERM too, the burners go with it (the `finally` below)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    if args.logs is not None:
        args.logs.mkdir(parents=True, exist_ok=True)
    burners = [subprocess.Popen([sys.executable, "-c", BURNER]) for _ in range(args.burners)]
    runs = []
    try:
        for tier in tiers:
            for i in range(args.times):
                log = args.logs / f"{tier}-{i + 1}.log" if args.logs is not None else None
                run = one_run(tier, args.make_args, log)
                runs.append(run)
                print(f"make {tier} #{i + 1} with {args.burners} burner(s): exit "
                      f"{run['returncode']}, {run['wall_s']:.0f} s, {run['pytest']}", flush=True)
                for line in run["failed"]:
                    print(f"  {line}", flush=True)
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
    if args.out is not None:
        args.out.write_text(json.dumps({"burners": args.burners, "runs": runs}, indent=1) + "\n")
    return 0 if all(run["returncode"] == 0 for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
