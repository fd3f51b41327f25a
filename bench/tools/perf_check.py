"""``make perf-check``: how far the harness's own figures can be trusted on this machine.

Measures, on the CPU:

1. the harness's ``step`` median against ``torch.utils.benchmark.Timer.blocked_autorange``
   on the same built step (``sequential``, ``separate``, batch 1 and 32), alternating in one
   process at the same thread count (target: within 3%);
2. the sum of the phase medians against the ``step`` median (target: within 5%);
3. three back-to-back measurements of one configuration, in one process and in three
   separate ``python -m bench run`` processes (target: largest / smallest <= 1.05);
4. the wall time of the default sweep, ``python -m bench run`` (target: under 2 minutes on a
   2-core machine).

It prints a table and writes ``results/perf_check.json``; the exit code is 0 whatever the
figures, since they describe the machine as much as the harness.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from bench import PROJECT_ROOT
from bench.axes import BATCH_SIZE
from bench.cli import user_path
from bench.measure.crosscheck import cross_check
from bench.measure.timers import TimingOptions, time_step
from bench.output_path import check_links
from bench.schema import STEP
from multinet import StepSpec, build_step

BACK_TO_BACK = ["--scenarios", "sequential", "--batch-sizes", "32", "--optimizer-setups",
                "separate", "--devices", "cpu", "--quiet"]


def bench_process(args: list[str], out_dir: Path) -> float:
    """Run ``python -m bench run`` and return its wall time in seconds."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bench", "run", *args, "--out-dir", str(out_dir)],
                   cwd=PROJECT_ROOT, env=env, check=True, capture_output=True)
    return time.perf_counter() - t0


def step_median(run_dir: Path) -> float:
    df = pd.read_csv(run_dir / "results.csv")
    return float(df.loc[df.phase == STEP, "median_ms"].iloc[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench perf-check",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--skip-sweep", action="store_true", help="skip the default-sweep timing")
    parser.add_argument("--out", type=user_path, default=Path("results/perf_check.json"))
    args = parser.parse_args(argv)
    check_links(args.out, "--out")  # now, not once the figures are measured
    torch.set_num_threads(args.threads)
    report: dict = {"threads": args.threads, "torch": torch.__version__, "rows": []}

    def row(name: str, value: float, target: str, ok: bool, detail: str = "") -> None:
        report["rows"].append({"figure": name, "value": value, "target": target, "ok": ok,
                               "detail": detail})
        print(f"{'ok  ' if ok else 'MISS'} {name:<58} {value:8.3f}  ({target}) {detail}",
              flush=True)

    options = TimingOptions(budget_s=2.0)
    for batch in (1, 32):
        cc = cross_check(StepSpec("sequential", batch, "cpu", "separate"), options,
                         rounds=args.rounds, min_run_time=1.0)
        label = BATCH_SIZE.config_token(batch)
        report[f"cross_check_{label}"] = cc.as_dict()
        row(f"{label}: harness / blocked_autorange (step median)", cc.ratio, "within 3%",
            abs(cc.ratio - 1) <= 0.03, f"{cc.harness_ms:.4f} vs {cc.reference_ms:.4f} ms")
        row(f"{label}: sum of phase medians / step median", cc.phase_sum_ratio, "within 5%",
            abs(cc.phase_sum_ratio - 1) <= 0.05)

    spec = StepSpec("sequential", 32, "cpu", "separate")
    in_process = [time_step(build_step(spec), "cpu", options).summary(STEP).median
                  for _ in range(3)]
    ratio = max(in_process) / min(in_process)
    row("3 back-to-back measurements, one process: max / min", ratio, "<= 1.05", ratio <= 1.05,
        " ".join(f"{m:.3f}" for m in in_process))

    with tempfile.TemporaryDirectory() as tmp:
        medians = []
        for i in range(3):
            bench_process([*BACK_TO_BACK, "--threads", str(args.threads)], Path(tmp) / f"b{i}")
            medians.append(step_median(Path(tmp) / f"b{i}"))
        ratio = max(medians) / min(medians)
        row("3 back-to-back runs, separate processes: max / min", ratio, "<= 1.05",
            ratio <= 1.05, " ".join(f"{m:.3f}" for m in medians))
        if not args.skip_sweep:
            wall = bench_process(["--quiet"], Path(tmp) / "default")
            row("default sweep (python -m bench run), wall seconds", wall, "< 120 s", wall < 120)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
