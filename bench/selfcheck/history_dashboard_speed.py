"""How long ``python -m bench history report`` takes over a large store, and how large its
page is: 100 synthetic runs of 300 configurations each (four machines, each with its own
GPU, five torch versions in turn, a run every half day), added with ``add_run`` to a new
DuckDB file; then the command timed as a user runs it (a fresh process, end to end), best
of a few tries. The bar: under 10 s and under 15 MB.

    python -m bench.selfcheck.history_dashboard_speed [--runs 100] [--configs 300]
        [--samples 50] [--tries 3] [--keep DIR]

The rows' intervals of the median come from their samples, as a real run's do, so the
page's size counts them and the change detection that the report runs over the whole store
weighs them. The raw samples per phase (``--samples``) only matter to those intervals and to
the comparison of each machine's two latest runs: fewer make the store quicker to build.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd

from bench import PROJECT_ROOT
from bench.history.add import add_run
from bench.history.store import open_store
from tests.support.synthetic import sweep_run

SCENARIOS = ["sequential", "shared_input", "separate_losses", "detached", "gan",
             "shared_trunk", "n_chain", "n_ensemble"]
# (hostname, GPU, how slow it is against the model)
MACHINES = (("node-h100", "NVIDIA H100 80GB HBM3", 0.6),
            ("node-a100", "NVIDIA A100-SXM4-80GB", 0.8),
            ("node-l4", "NVIDIA L4", 1.5),
            ("node-4090", "NVIDIA GeForce RTX 4090", 1.0))
VERSIONS = (("2.5.1+cu124", 1.0), ("2.6.0+cu126", 0.97), ("2.7.1+cu128", 0.95),
            ("2.8.0+cu128", 1.02), ("2.9.0+cu130", 0.93))


def one_run(folder: Path, index: int, runs: int, configs: int, samples: int) -> Path:
    """Run ``index`` of ``runs``: its machine in turn, its torch version by when it ran."""
    host, gpu, machine_speed = MACHINES[index % len(MACHINES)]
    version, version_speed = VERSIONS[index * len(VERSIONS) // runs]
    day, hour = divmod(index, 2)
    started = pd.Timestamp("2026-01-01T08:00:00+00:00") + pd.Timedelta(days=day, hours=12 * hour)
    batches = list(range(1, configs // (len(SCENARIOS) * 3) + 2))
    run = sweep_run(folder, scenarios=SCENARIOS, batch_sizes=batches, limit=configs,
                    run_id=f"run-{index:03d}", seed=index, samples_per_phase=samples,
                    device_name=gpu, slowdown=machine_speed * version_speed,
                    env={"torch_version": version, "hostname": host,
                         "started_at": started.isoformat()})
    return run


def build_store(folder: Path, runs: int, configs: int, samples: int) -> Path:
    """The runs, written in parallel and added one by one (a DuckDB file has one writer)."""
    store = folder / "history.duckdb"
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool, \
            open_store(str(store), write=True) as opened:
        jobs = [pool.submit(one_run, folder / f"run-{i:03d}", i, runs, configs, samples)
                for i in range(runs)]
        for job in jobs:
            add_run(opened, job.result())
    return store


def embedded_data_bytes(page: Path) -> int:
    found = re.search(rb'id="history-data">(.*?)</script>', page.read_bytes(), re.DOTALL)
    return len(found.group(1)) if found else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--configs", type=int, default=300)
    parser.add_argument("--samples", type=int, default=50, help="raw samples per phase")
    parser.add_argument("--tries", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="build the store in this folder and keep it")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        store = build_store(folder, args.runs, args.configs, args.samples)
        print(f"store: {args.runs} runs x {args.configs} configurations ({args.samples} "
              f"samples a phase) built in {time.perf_counter() - t0:.0f} s: {store}")
        page, times = folder / "history.html", []
        for i in range(args.tries):
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "bench", "history", "report",
                                   "--store", str(store), "--out", str(page)],
                                  cwd=PROJECT_ROOT, capture_output=True, text=True)
            times.append(time.perf_counter() - t0)
            if proc.returncode != 0:
                print(proc.stderr, file=sys.stderr)
                return 1
            print(f"try {i + 1}: {times[-1]:.2f} s; {proc.stdout.strip()}")
        size, data = page.stat().st_size, embedded_data_bytes(page)
        print(f"history report: best of {args.tries} {min(times):.2f} s (bar: 10 s); page "
              f"{size / 1e6:.2f} MB (bar: 15 MB), of which the data {data / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
