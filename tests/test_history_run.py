"""`run --history`: a complete run goes into the store; a store that fails loses nothing."""

from __future__ import annotations

import subprocess
import sys
import time

import pandas as pd
import pytest

from bench.history.store import open_store
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

FAST = ["--scenarios", "sequential", "--batch-sizes", "2", "--devices", "cpu",
        "--warmup-iters", "1", "--warmup-s", "0", "--min-samples", "3", "--min-rounds", "6",
        "--budget-s", "0.02", "--quiet"]


def run(*args):
    return subprocess.run([sys.executable, "-m", "bench", "run", *FAST, *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_a_complete_run_is_added_to_the_store(tmp_path):
    store = tmp_path / "history.duckdb"
    proc = run("--out-dir", str(tmp_path / "run"), "--history", str(store))
    assert proc.returncode == 0, proc.stderr
    rows = pd.read_csv(tmp_path / "run" / "results.csv")
    run_id = rows["run_id"].iloc[0]
    assert f"History: {run_id} added in {store}" in proc.stdout
    with open_store(str(store), write=True) as history:
        assert history.execute("SELECT run_id FROM runs") == [(run_id,)]
        assert history.execute("SELECT count(*) FROM results")[0][0] == len(rows)


def test_a_store_taken_away_during_the_sweep_is_an_error_and_the_run_stands(tmp_path):
    """The store passes the check before the sweep (its folder may be made), then, while the
    sweep measures, a file takes the folder's place: the run is written, not stored, and
    the exit code says so."""
    store = tmp_path / "stores" / "history.duckdb"
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "bench", "run", *FAST, "--out-dir",
                             str(out), "--history", str(store)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / "results.csv").exists():  # past the check: the sweep writes
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
        time.sleep(0.02)
    (tmp_path / "stores").write_text("")
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 1, stderr
    assert "error: not added to the history store: cannot create the folder of history " \
           f"store {store}" in stderr
    assert "Traceback" not in stderr and "History:" not in stdout
    assert set(pd.read_csv(out / "results.csv")["status"]) == {"ok"}
