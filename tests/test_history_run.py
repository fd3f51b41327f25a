"""`run --history`: a complete run goes into the store; a store that fails loses nothing."""

from __future__ import annotations

import subprocess
import sys

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


def test_a_store_that_fails_when_the_run_is_added_is_a_note_and_the_run_stands(tmp_path):
    # a store that cannot be reached is refused before the sweep (tests/test_store_urls.py);
    # this one passes that check, then cannot be made: its folder's place is a file
    (tmp_path / "a-file").write_text("")
    store = tmp_path / "a-file" / "history.duckdb"
    proc = run("--out-dir", str(tmp_path / "run"), "--history", str(store))
    assert proc.returncode == 0, proc.stderr
    assert "note: not added to the history store: cannot create the folder of history " \
           f"store {store}" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert set(pd.read_csv(tmp_path / "run" / "results.csv")["status"]) == {"ok"}
