"""A PostgreSQL store whose tables another session holds (a transaction left open, a
migration by hand): an add waits, says so, and stops at once on a signal with nothing
written, as an add waiting for a DuckDB file does; a lock held past the wait ends it in one
line. A real server, a real lock, real subprocesses and signals."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid

import psycopg
import pytest

from bench.history.store import open_store
from bench.history.store_error import StoreError
from tests.conftest import ROOT
from tests.test_history_shared import history, renamed

pytestmark = pytest.mark.slow


def stored_runs(url: str) -> list[str]:
    with open_store(url) as store:
        return [run_id for (run_id,) in store.execute("SELECT run_id FROM runs ORDER BY 1")]


def first_line(proc: subprocess.Popen, timeout: float = 120) -> str:
    """The first line the process writes on stderr; fails, rather than waiting for good,
    where none comes."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(proc.stderr.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        proc.kill()
        pytest.fail(f"nothing said on stderr in {timeout} s")


@pytest.fixture
def held_store(postgres, real_run, tmp_path):
    """A store holding one run, its runs table locked by another session until the test
    ends (as a session left idle in a transaction holds it)."""
    url = postgres.create_database(f"t{uuid.uuid4().hex[:12]}")
    first = history("add", str(real_run), "--store", url)
    assert first.returncode == 0, first.stderr
    holder = psycopg.connect(url)
    holder.execute("LOCK TABLE multinet_bench.runs IN SHARE ROW EXCLUSIVE MODE")
    yield url
    holder.rollback()
    holder.close()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_add_waiting_for_a_lock_says_so_and_a_signal_stops_it_with_nothing_added(
        held_store, real_run, tmp_path, signum):
    before = stored_runs(held_store)
    other = renamed(real_run, tmp_path / "b", "run-b")
    proc = subprocess.Popen([sys.executable, "-m", "bench", "history", "add", str(other),
                             "--store", held_store], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    # the note comes once the insert has waited SAY_WAIT_AFTER_S: it is waiting on the lock
    line = first_line(proc)
    assert line.startswith("note: waiting for history store postgresql://postgres@"), line
    assert "another session may hold its tables" in line
    proc.send_signal(signum)
    started = time.monotonic()
    out, err = proc.communicate(timeout=60)
    # at once, not when the lock is let go (the holder keeps it to the test's end)
    assert time.monotonic() - started < 10
    assert proc.returncode == 128 + signum, err
    assert "run-b" not in out and "interrupted: the runs not said added above were not " \
        "added" in err and "Traceback" not in err
    assert stored_runs(held_store) == before


def test_a_lock_held_past_the_wait_ends_the_add_in_one_line(held_store, real_run):
    """The wait's end (LOCK_WAIT_S; here a short lock_timeout set on the session) is said as
    what it is, not as the server's "canceling statement due to lock timeout"."""
    with open_store(held_store, write=True) as store:
        store.execute("SET lock_timeout = '300ms'")
        with pytest.raises(StoreError) as caught:
            with store.transaction():
                store.execute("INSERT INTO runs (run_id) VALUES ('run-c')")
    said = str(caught.value)
    assert said.startswith("history store postgresql://postgres@") and "\n" not in said
    assert "another session held its tables for 60 s" in said
    assert "nothing was written" in said
