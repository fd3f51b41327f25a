"""How long the report of a 100-configuration run takes to write, and how large it is.

``python -m bench.selfcheck.report_speed [--configs 100] [--repeats 3]`` builds a synthetic
GPU run (the real schema, CUDA and NVML columns filled, 200 samples per phase), then times
``python -m bench report`` on it in a fresh process, import of pandas and plotly included,
as a user would see it. The targets: under 5 s and under 6 MB.
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
from tests.support.synthetic import sweep_run

SCENARIOS = ("sequential", "shared_input", "separate_losses", "two_heads", "gan")
TARGET_S, TARGET_MB = 5.0, 6.0


def build_run(folder: Path, configs: int) -> Path:
    """``configs`` configurations: scenarios x batch sizes x 3 setups."""
    per_scenario = -(-configs // len(SCENARIOS))
    batches = [2 ** i for i in range(-(-per_scenario // 3))]
    return sweep_run(folder, scenarios=SCENARIOS, batch_sizes=batches, run_id="speed",
                     limit=configs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.selfcheck.report_speed",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3, help="timed report runs")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        run = build_run(Path(tmp) / "run", args.configs)
        rows = sum(1 for _ in open(run / "results.csv")) - 1
        out = Path(tmp) / "report.html"
        env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "bench", "report", str(run), "--out",
                            str(out)], check=True, env=env, stdout=subprocess.DEVNULL)
            times.append(time.perf_counter() - start)
        size_mb = out.stat().st_size / 1e6
    wall = statistics.median(times)
    print(f"report of {rows // 4} configurations ({rows} rows): median wall time "
          f"{wall:.2f} s over {len(times)} runs (min {min(times):.2f} s), HTML {size_mb:.2f} MB")
    ok = wall < TARGET_S and size_mb < TARGET_MB
    print(f"targets: under {TARGET_S:g} s and under {TARGET_MB:g} MB: "
          + ("met" if ok else "MISSED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
