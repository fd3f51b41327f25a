"""The history store, against both databases: DuckDB in a temporary folder, and a real
PostgreSQL server that the tests start (skipped, with the reason, where its binaries are
absent). The same tests run against each."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from bench.history import add as history_add
from bench.history.add import ADDED, ALREADY, add_run
from bench.history.store import StoreError, open_store
from bench.history.store_schema import MIGRATIONS
from bench.schema import COLUMNS
from tests.support.synthetic import sweep_run
from tests.conftest import ROOT
from tests.postgres_server import free_port


def a_run(tmp_path, name, **kwargs):
    return sweep_run(tmp_path / name, scenarios=["sequential", "gan"], batch_sizes=[1, 8],
                     run_id=name, samples_per_phase=20, **kwargs)


def history(*args, env=None):
    return subprocess.run([sys.executable, "-m", "bench", "history", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env=env)


def counts(url):
    with open_store(url, write=True) as store:
        return {t: store.execute(f"SELECT count(*) FROM {t}")[0][0]
                for t in ("runs", "results", "samples")}


def test_two_runs_added_twice_are_there_once_each(tmp_path, store_url):
    a, b = a_run(tmp_path, "run-a"), a_run(tmp_path, "run-b", slowdown=1.2)
    with open_store(store_url, write=True) as store:
        first = [add_run(store, a), add_run(store, b)]
        again = [add_run(store, a), add_run(store, b)]
    assert [o.what for o in first] == [ADDED, ADDED]
    assert [o.what for o in again] == [ALREADY, ALREADY]
    rows_a = pd.read_csv(a / "results.csv")
    samples_a = pd.read_csv(a / "samples.csv")
    # 2 scenarios x 2 batches x 3 setups x 4 phases, per run; 20 samples a measured phase
    assert len(rows_a) == 48 and len(samples_a) == 48 * 20
    assert counts(store_url) == {"runs": 2, "results": 96, "samples": 2 * 48 * 20}


def test_what_is_stored_reads_back_as_written(tmp_path, store_url):
    run = a_run(tmp_path, "run-a")
    with open_store(store_url, write=True) as store:
        add_run(store, run)
        stored = store.frame("SELECT * FROM results ORDER BY config_id, phase")
        (torch,) = store.execute("SELECT torch_version FROM runs WHERE run_id = 'run-a'")[0]
    written = pd.read_csv(run / "results.csv").sort_values(["config_id", "phase"])
    assert torch == written["torch_version"].iloc[0]
    assert {c.name for c in COLUMNS} <= set(stored.columns)
    assert stored["median_ms"].tolist() == pytest.approx(written["median_ms"].tolist())
    assert stored["batch_size"].tolist() == written["batch_size"].tolist()


def test_a_stored_run_is_never_modified(tmp_path, store_url):
    run = a_run(tmp_path, "run-a")
    with open_store(store_url, write=True) as store:
        add_run(store, run)
    other = a_run(tmp_path / "elsewhere", "run-a", slowdown=2.0)  # same id, other contents
    proc = history("add", str(other), "--store", store_url)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "run run-a is already in the store with other contents" in proc.stderr
    with open_store(store_url, write=True) as store:
        (median,) = store.execute("SELECT max(median_ms) FROM results")[0]
    assert median == pytest.approx(pd.read_csv(run / "results.csv")["median_ms"].max())


def test_a_failed_add_leaves_the_store_as_it_was(tmp_path, store_url, monkeypatch):
    with open_store(store_url, write=True) as store:
        add_run(store, a_run(tmp_path, "run-a"))
    before = counts(store_url)
    real = history_add.Store.insert_frame

    def fail_on_samples(self, table, df):
        if table == "samples":
            raise StoreError("disk full (planted)")
        real(self, table, df)

    monkeypatch.setattr(history_add.Store, "insert_frame", fail_on_samples)
    with open_store(store_url, write=True) as store, pytest.raises(StoreError, match="planted"):
        add_run(store, a_run(tmp_path, "run-b"))
    assert counts(store_url) == before  # neither run-b's runs row nor its results


def test_a_damaged_folder_is_refused_in_one_line(tmp_path, store_url):
    run = a_run(tmp_path, "run-a")
    (run / "results.csv").write_text("schema_version,run_id\n1,run-a\n")
    proc = history("add", str(run), "--store", store_url)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert counts(store_url) == {"runs": 0, "results": 0, "samples": 0}


def test_two_processes_adding_at_once_both_land(tmp_path, store_url):
    runs = [a_run(tmp_path, f"run-{i}") for i in range(2)]
    open_store(store_url, write=True).close()  # created first: the race is over the adds
    procs = [subprocess.Popen([sys.executable, "-m", "bench", "history", "add", str(r),
                               "--store", store_url], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for r in runs]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert counts(store_url)["runs"] == 2


def test_migrations_apply_once_and_a_newer_store_is_refused(store_url):
    for _ in range(2):
        with open_store(store_url, write=True) as store:
            versions = store.execute("SELECT version FROM schema_migrations ORDER BY version")
    assert [v for (v,) in versions] == [v for v, _, _ in MIGRATIONS]
    with open_store(store_url, write=True) as store:
        store.execute("INSERT INTO schema_migrations VALUES (999, 'from the future', '')")
    with pytest.raises(StoreError, match="has schema version 999; .* knows up to"):
        open_store(store_url, write=True)


def test_a_store_that_cannot_be_reached_is_named_in_one_line(tmp_path):
    closed = f"postgresql://someone:secret@127.0.0.1:{_closed_port()}/nothing"
    for url, expected in ((closed, "cannot reach history store postgresql://someone@127.0.0.1"),
                          (str(tmp_path), "is a folder")):
        proc = history("add", str(tmp_path / "nothing"), "--store", url)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.count("\n") == 1 and expected in proc.stderr, proc.stderr
        assert "secret" not in proc.stderr


def _closed_port() -> int:
    return free_port()  # bound and released: nothing listens there


def test_the_readme_s_query_reads_the_store(tmp_path, monkeypatch):
    readme = (ROOT / "bench" / "history" / "README.md").read_text()
    snippet = readme.split("Reading it elsewhere:\n\n```python\n", 1)[1].split("```", 1)[0]
    run = a_run(tmp_path, "run-a")
    store = tmp_path / "results" / "history.duckdb"
    with open_store(str(store), write=True) as history:
        add_run(history, run)
    monkeypatch.chdir(tmp_path)  # the snippet names the default store, results/history.duckdb
    scope: dict = {}
    exec(snippet, scope)
    steps = scope["steps"]
    written = pd.read_csv(run / "results.csv")
    assert len(steps) == int((written["phase"] == "step").sum()) == 12
    assert set(steps["torch_version"]) == set(written["torch_version"])
