"""The runner against the pytest-benchmark suite on the same configurations.

Runs the default sweep on the CPU both ways, one after the other: ``python -m bench run``
(adaptive stopping) and the suite (``pytest bench/suite``, fixed rounds), imports the suite's
JSON into the run schema, and reports the two wall times and, per configuration and phase,
how far the two medians are apart.

``python -m bench.selfcheck.suite_vs_runner [--out-dir DIR] [--rounds N]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from bench import PROJECT_ROOT
from bench.suite.importer import import_run

ENV = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=PROJECT_ROOT, env=ENV, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.selfcheck.suite_vs_runner")
    parser.add_argument("--out-dir", type=Path, default=Path("results/suite-vs-runner"))
    parser.add_argument("--rounds", type=int, default=50, help="the suite's rounds")
    args = parser.parse_args(argv)
    out = args.out_dir.resolve()
    out.mkdir(parents=True, exist_ok=True)

    runner_s = timed([sys.executable, "-m", "bench", "run", "--devices", "cpu", "--quiet",
                      "--out-dir", str(out / "runner")])
    suite_json = out / "suite.json"
    suite_s = timed([sys.executable, "-m", "pytest", "bench/suite", "-q", "-p",
                     "no:cacheprovider", "--benchmark-enable", "--benchmark-only",
                     # as the runner's timer does: a collection is not charged to one round
                     "--benchmark-disable-gc",
                     "--suite-devices=cpu", f"--suite-rounds={args.rounds}",
                     "--benchmark-save-data", f"--benchmark-json={suite_json}"])
    import_run(suite_json, out / "suite")

    key = ["config_id", "phase"]
    runner = pd.read_csv(out / "runner" / "results.csv").set_index(key)["median_ms"]
    suite = pd.read_csv(out / "suite" / "results.csv").set_index(key)["median_ms"]
    ratio = (runner / suite).dropna()
    deviation = (ratio - 1).abs().sort_values(ascending=False)
    print(f"wall time: runner {runner_s:.1f} s, suite {suite_s:.1f} s "
          f"({args.rounds} rounds per benchmark)")
    print(f"runner/suite median ratio over {len(ratio)} configuration-phases: "
          f"median {ratio.median():.3f}, within 5% for {(deviation <= 0.05).mean():.0%}; "
          f"largest disagreement {deviation.iloc[0]:.1%} ({'/'.join(deviation.index[0])})")
    steps = deviation[[phase == "step" for _, phase in deviation.index]]
    print(f"step rows only: largest disagreement {steps.iloc[0]:.1%}, within 5% for "
          f"{(steps <= 0.05).mean():.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
