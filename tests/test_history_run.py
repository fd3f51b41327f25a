"""`run --history`: a complete run goes into the store; a store that fails loses nothing."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from bench.history.store import open_store
from tests.conftest import ROOT
from tests.postgres_server import free_port

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


def test_a_store_that_fails_is_a_note_and_the_run_stands(tmp_path):
    down = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    proc = run("--out-dir", str(tmp_path / "run"), "--history", down)
    assert proc.returncode == 0, proc.stderr
    assert "note: not added to the history store: cannot reach history store " \
           "postgresql://postgres@127.0.0.1" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert set(pd.read_csv(tmp_path / "run" / "results.csv")["status"]) == {"ok"}
