"""How long adding a large run to the history store takes: a synthetic run of 1,000
configurations (every phase, 200 samples a phase), added to a new store, best of a few
tries (each into a fresh store, so each is a first add).

    python -m bench.selfcheck.history_speed [--store postgresql://...] [--configs 1000]

Without ``--store``, a DuckDB file in a temporary folder. With a PostgreSQL URL, each try
adds under a new run id (a stored run is never replaced) into that database.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.history.add import add_run
from bench.history.store import open_store
from tests.support.synthetic import sweep_run

SCENARIOS = ["sequential", "shared_input", "separate_losses", "detached", "gan",
             "shared_trunk", "n_chain", "n_ensemble"]


def synthetic(folder: Path, configs: int, run_id: str) -> Path:
    batches = list(range(1, configs // (len(SCENARIOS) * 3) + 2))
    return sweep_run(folder, scenarios=SCENARIOS, batch_sizes=batches, limit=configs,
                     run_id=run_id)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", help="a postgresql:// URL (default: a temporary DuckDB file)")
    parser.add_argument("--configs", type=int, default=1000)
    parser.add_argument("--tries", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        times = []
        for i in range(args.tries):
            run = synthetic(Path(tmp) / f"run-{i}", args.configs, f"speed-{i}-{time.time_ns()}")
            url = args.store or str(Path(tmp) / f"store-{i}.duckdb")
            with open_store(url, write=True) as store:
                t0 = time.perf_counter()
                outcome = add_run(store, run)
                times.append(time.perf_counter() - t0)
            print(f"try {i + 1}: {outcome.rows} rows and {outcome.samples} samples added in "
                  f"{times[-1]:.2f} s")
    print(f"best of {args.tries}: {min(times):.2f} s to add {args.configs} configurations")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
