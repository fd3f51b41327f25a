"""A page or file a command writes never replaces what was measured or stored, and a path
the system cannot use is one line and exit 2, not a traceback. Real runs, a real DuckDB
store, real subprocesses."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys

import pytest

from bench.errors import UsageError
from bench.output_path import check_output
from tests.conftest import ROOT, run_cli
from tests.support.refusals import refused_in_one_line as one_line


@pytest.fixture
def stored(real_run, tmp_path):
    """A copy of a real run, and a DuckDB store that holds it."""
    run = tmp_path / "run"
    shutil.copytree(real_run, run)
    store = tmp_path / "h.duckdb"
    proc = run_cli("history", "add", str(run), "--store", str(store))
    assert proc.returncode == 0, proc.stderr
    return run, store


def unchanged(path, before: bytes) -> bool:
    return path.read_bytes() == before


@pytest.mark.slow
def test_the_dashboard_is_not_written_over_its_own_store(stored):
    _, store = stored
    before = store.read_bytes()
    one_line(run_cli("history", "report", "--store", str(store), "--out", str(store)),
             "holds a database")
    assert unchanged(store, before)
    assert run_cli("history", "changes", "--store", str(store)).returncode == 0


@pytest.mark.slow
@pytest.mark.parametrize("name", ["results.csv", "samples.csv", "env.json", "sweep.json"])
def test_a_page_is_not_written_over_a_run_s_own_file(stored, name):
    run, store = stored
    before = (run / name).read_bytes()
    one_line(run_cli("report", str(run), "--out", str(run / name)), "is in the run folder")
    one_line(run_cli("history", "report", "--store", str(store), "--out", str(run / name)),
             "is in the run folder")
    assert unchanged(run / name, before)


def test_compare_and_paired_pages_and_decisions_keep_off_the_runs(stored, tmp_path):
    run, _ = stored
    other = tmp_path / "other"
    shutil.copytree(run, other)
    before = (other / "results.csv").read_bytes()
    one_line(run_cli("compare", str(run), str(other), "--out", str(other / "results.csv")),
             "is in the run folder")
    rounds = {side: tmp_path / side for side in ("a", "b")}
    for side, folder in rounds.items():
        for number in (1, 2):
            shutil.copytree(run, folder / f"round-0{number}")
    for option in ("--out", "--decisions"):
        target = rounds["a"] / "round-01" / "samples.csv"
        kept = target.read_bytes()
        one_line(run_cli("paired", str(rounds["a"]), str(rounds["b"]), option, str(target)),
                 f"{option} {target} is in the run folder")
        assert unchanged(target, kept)
    one_line(run_cli("paired", str(rounds["a"]), str(rounds["b"]), "--decisions",
                     str(tmp_path)), "is a folder")
    # nor beside a side's rounds, where a page named as the next round made that round fail
    for name in ("round-03", "README"):
        target = rounds["b"] / name
        one_line(run_cli("paired", str(rounds["a"]), str(rounds["b"]), "--out", str(target)),
                 f"--out {target} is in {rounds['b']}, a folder the command reads")
        assert not target.exists()
    assert unchanged(other / "results.csv", before)


@pytest.mark.slow
def test_a_page_beside_the_runs_is_still_written(stored, tmp_path):
    run, store = stored
    page = tmp_path / "page.html"
    assert run_cli("report", str(run), "--out", str(page)).returncode == 0
    assert page.read_text().startswith("<!DOCTYPE html>") or "<html" in page.read_text()
    # written again: a page of its own may be replaced
    assert run_cli("history", "report", "--store", str(store), "--out", str(page)).returncode == 0


@pytest.mark.slow
def test_a_name_too_long_is_one_line(stored, tmp_path):
    run, store = stored
    long = tmp_path / ("n" * 300)
    err = one_line(run_cli("history", "add", str(run), "--store", f"{long}.duckdb"),
                   "File name too long")
    assert len(err) < 400  # the path shortened, not printed whole
    one_line(run_cli("history", "add", str(long), "--store", str(store)))
    one_line(run_cli("run", "--scenarios", "sequential", "--batch-sizes", "1", "--devices",
                     "cpu", "--quiet", "--out-dir", str(long)), "File name too long")


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() == 0 and shutil.which("setpriv") is None,
                    reason="root reads any folder, and setpriv to drop that is missing")
def test_a_folder_that_may_not_be_entered_is_one_line(stored, tmp_path):
    run, _ = stored
    closed = tmp_path / "closed"
    closed.mkdir()
    shutil.copytree(run, closed / "run")
    closed.chmod(0)
    try:
        prefix = []
        if os.geteuid() == 0:  # root passes permission checks unless the capability is dropped
            caps = "-dac_override,-dac_read_search,-fowner"
            prefix = ["setpriv", f"--bounding-set={caps}", f"--inh-caps={caps}"]
        for args in (["history", "add", str(run), "--store", str(closed / "s.duckdb")],
                     ["history", "add", str(closed / "run"), "--store", str(tmp_path / "x.duckdb")],
                     ["run", "--resume", str(closed / "run")]):
            proc = subprocess.run([*prefix, sys.executable, "-m", "bench", *args], cwd=ROOT,
                                  capture_output=True, text=True, timeout=120)
            one_line(proc, "Permission denied")
    finally:
        closed.chmod(0o755)


@pytest.mark.slow
def test_a_run_s_lock_and_page_and_a_rounds_record_are_kept(stored, tmp_path):
    run, store = stored
    other = tmp_path / "other"
    shutil.copytree(run, other)
    (run / "report.html").write_text("the run's own page")
    one_line(run_cli("compare", str(other), str(run), "--out", str(run / "report.html")),
             "is in the run folder")
    one_line(run_cli("history", "report", "--store", str(store), "--out",
                     str(run / ".lock")), "is in the run folder")
    assert (run / "report.html").read_text() == "the run's own page"
    # `report` writes the run's own page, as it does by default
    assert run_cli("report", str(run), "--out", str(run / "report.html")).returncode == 0
    rounds = tmp_path / "rounds"
    rounds.mkdir()
    (rounds / "rounds.json").write_text("{}")
    for name in ("rounds.json", "paired.html", "decisions.json"):
        one_line(run_cli("compare", str(run), str(other), "--out", str(rounds / name)),
                 "is one of the files of the paired rounds")
    assert (rounds / "rounds.json").read_text() == "{}"


def test_a_store_s_write_ahead_log_is_refused_like_the_store(stored, tmp_path):
    _, store = stored
    log = tmp_path / "h.duckdb.wal"
    log.write_bytes(b"not yet checkpointed")
    one_line(run_cli("history", "report", "--store", str(store), "--out", str(log)),
             "holds a database or its log")
    assert log.read_bytes() == b"not yet checkpointed"
    # a .wal beside no database is any file
    page = tmp_path / "page.wal"
    assert run_cli("history", "report", "--store", str(store), "--out",
                   str(page)).returncode == 0


@pytest.mark.slow
def test_a_device_or_a_pipe_is_neither_replaced_nor_waited_on(stored, tmp_path):
    """A page renamed over a device node replaced the device itself (``--out /dev/null`` as
    root), and a pipe opened to read its first bytes waited for a writer forever."""
    run, store = stored
    other = tmp_path / "other"
    shutil.copytree(run, other)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    targets = [fifo]
    if os.geteuid() == 0:  # only root makes device nodes: a copy of /dev/null's
        null = tmp_path / "null"
        os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        targets.append(null)
    for target in targets:
        kind = stat.S_IFMT(target.lstat().st_mode)
        for command in (("report", str(run)), ("compare", str(run), str(other)),
                        ("history", "report", "--store", str(store))):
            one_line(run_cli(*command, "--out", str(target), timeout=60),
                     f"--out {target} is not a plain file")
        one_line(run_cli("history", "add", str(run), "--store", str(target), timeout=60),
                 f"history store {target} is not a plain file")
        assert stat.S_IFMT(target.lstat().st_mode) == kind  # still the pipe, the device


def test_a_run_s_page_is_rewritten_from_that_run_alone(real_run, tmp_path):
    """`report A --out A/report.html` rewrites A's page; B's page, or one page of A and B
    over A's, would replace what `run` wrote for another run."""
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(real_run, a)
    shutil.copytree(real_run, b)
    check_output(a / "report.html", inputs=[a], may_replace=("report.html",))
    for inputs, page in (([a], b / "report.html"), ([a, b], a / "report.html")):
        with pytest.raises(UsageError, match=f"--out {page} is in the run folder {page.parent}"):
            check_output(page, inputs=inputs, may_replace=("report.html",))
