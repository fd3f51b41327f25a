"""The CPU findings of results/reference/findings.md, measured afresh.

Three sweeps, each with three repeats in random order, on the CPU:

1. ``n_chain`` at N = 2, 4, 8: one optimizer (``single``) against one per network
   (``separate``), with the ``loop`` and the ``foreach`` implementation;
2. ``bf16`` autocast against ``fp32`` on ``shared_input``;
3. ``compile=modules`` against ``none`` on ``sequential``, compile time apart.

``python -m bench.selfcheck.cpu_findings [--out-dir DIR] [--batch-size N]`` prints the tables;
the run folders stay in DIR for ``report`` and ``compare``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from bench import PROJECT_ROOT
from bench.analyze.reader import load_run
from bench.axes import COMPILE, N_NETWORKS, OPTIMIZER_IMPL, OPTIMIZER_SETUP, PRECISION
from bench.schema import OK, OPTIMIZER_PHASE, STEP

COMMON = ["--devices", "cpu", "--optimizer", "adam", "--repeats", "3", "--quiet"]
SWEEPS = {
    "n_chain": ["--scenarios", "n_chain", "--n-networks", "2,4,8", "--optimizer-setups",
                "separate,single", "--optimizer-impl", "loop,foreach"],
    "autocast": ["--scenarios", "shared_input", "--precision", "fp32,bf16",
                 "--optimizer-setups", "separate"],
    "torch_compile": ["--scenarios", "sequential", "--compile", "none,modules",
                      "--optimizer-setups", "separate"],
}


def run(name: str, out_dir: Path, batch: int) -> pd.DataFrame:
    folder = out_dir / name
    if not (folder / "results.csv").exists():
        cmd = [sys.executable, "-m", "bench", "run", *SWEEPS[name], *COMMON,
               "--batch-sizes", str(batch), "--out-dir", str(folder)]
        subprocess.run(cmd, cwd=PROJECT_ROOT, check=True, env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)})
    df = load_run(folder).results
    return df[df.status == OK]


def medians(df: pd.DataFrame, by: list[str], phase: str = STEP) -> pd.Series:
    """The median over repeats of each configuration's median, in ms."""
    return df[df.phase == phase].groupby(by)["median_ms"].median()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.selfcheck.cpu_findings")
    parser.add_argument("--out-dir", type=Path, default=Path("results/cpu-findings"))
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args(argv)

    chain = run("n_chain", args.out_dir, args.batch_size)
    by = [OPTIMIZER_IMPL.name, N_NETWORKS.name, OPTIMIZER_SETUP.name]
    step = medians(chain, by).unstack()
    opt = medians(chain, by, OPTIMIZER_PHASE).unstack()
    table = pd.DataFrame({"separate step ms": step["separate"], "single step ms": step["single"],
                          "single/separate step": step["single"] / step["separate"],
                          "separate optimizer ms": opt["separate"],
                          "single optimizer ms": opt["single"],
                          "single/separate optimizer": opt["single"] / opt["separate"]})
    print(f"n_chain, batch {args.batch_size}: one optimizer against one per network")
    print(table.round(3).to_string())

    autocast = run("autocast", args.out_dir, args.batch_size)
    p = medians(autocast, [PRECISION.name, "phase"], STEP)
    by_phase = autocast.groupby([PRECISION.name, "phase"])["median_ms"].median().unstack()
    print(f"\nshared_input, batch {args.batch_size}: bf16 autocast against fp32 (ms)")
    print(by_phase.round(3).to_string())
    print(f"bf16 / fp32 step: {p['bf16'].iloc[0] / p['fp32'].iloc[0]:.2f}")

    compiled = run("torch_compile", args.out_dir, args.batch_size)
    steps = compiled[compiled.phase == STEP].sort_values("repeat")
    by_repeat = steps.pivot(index="repeat", columns=COMPILE.name, values="median_ms")
    print(f"\nsequential, batch {args.batch_size}: compile=modules against none, step ms "
          "per repeat (each repeat builds and compiles afresh)")
    print(by_repeat.round(3).to_string())
    print(f"modules / none, median over repeats: "
          f"{(by_repeat['modules'] / by_repeat['none']).median():.2f}")
    compile_s = steps[steps[COMPILE.name] == "modules"]["compile_s"].round(2).tolist()
    print(f"compile time of the first iteration, per repeat: {compile_s} s (the first in a "
          "process pays for loading the compiler; later ones find inductor's caches warm)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
