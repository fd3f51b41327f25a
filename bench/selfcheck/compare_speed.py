"""How long `compare` takes on two large runs, end to end.

``python -m bench.selfcheck.compare_speed [--configs 1000] [--repeats 3] [--timings 3]`` builds
two synthetic GPU runs (the real schema, 200 samples per phase, four phases) of that many
configurations and repeats, the candidate 3% slower, then times ``python -m bench compare``
on them in a fresh process, from the import of pandas and plotly to the page written, as a
user would see it. The target: under 5 s for 1,000 configurations x 3 repeats a side.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import PROJECT_ROOT
from bench.schema import REQUIRED_PHASES
from tests.support.synthetic import sweep_run

SCENARIOS = ("sequential", "shared_input", "separate_losses", "shared_trunk", "gan")
SETUPS = 3  # sweep_run's optimizer setups
SAMPLES = 200
TARGET_S = 5.0


def build_run(folder: Path, configs: int, repeats: int, seed: int, slowdown: float) -> Path:
    """``configs`` configurations: scenarios x batch sizes 1, 2, 3... x 3 setups."""
    per_scenario = -(-configs // len(SCENARIOS))
    batches = list(range(1, -(-per_scenario // SETUPS) + 1))
    return sweep_run(folder, scenarios=SCENARIOS, batch_sizes=batches, repeats=repeats,
                     samples_per_phase=SAMPLES, run_id=folder.name, seed=seed,
                     slowdown=slowdown, limit=configs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.selfcheck.compare_speed",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3, help="repeats in each run")
    parser.add_argument("--timings", type=int, default=3, help="timed compare runs")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        base = build_run(Path(tmp) / "baseline", args.configs, args.repeats, 1, 1.0)
        cand = build_run(Path(tmp) / "candidate", args.configs, args.repeats, 2, 1.03)
        built = time.perf_counter() - start
        sizes = sum((p / f).stat().st_size for p in (base, cand)
                    for f in ("results.csv", "samples.csv")) / 1e6
        env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
        times = []
        for _ in range(args.timings):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "bench", "compare", str(base), str(cand),
                            "--out", str(Path(tmp) / "comparison.html")],
                           check=True, env=env, stdout=subprocess.DEVNULL)
            times.append(time.perf_counter() - start)
    rows = args.configs * len(REQUIRED_PHASES) * args.repeats
    print(f"compare of two runs of {args.configs} configurations x {args.repeats} repeats "
          f"({rows} results rows and {rows * SAMPLES} samples a side, {sizes:.0f} MB of CSV; "
          f"built in {built:.0f} s): median wall time {statistics.median(times):.2f} s over "
          f"{len(times)} runs (min {min(times):.2f} s)")
    ok = statistics.median(times) < TARGET_S
    print(f"target: under {TARGET_S:g} s: " + ("met" if ok else "MISSED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
