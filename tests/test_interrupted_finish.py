"""A Ctrl-C or a SIGTERM once the sweep is over (its page being written, its store being waited for)
loses nothing measured and says, in one line, the commands that finish the rest. A real
``python -m bench run`` process, a real SIGINT and SIGTERM, a real DuckDB store held by another
process."""

import os
import shlex
import signal
import subprocess
import sys

import duckdb
import pytest

from bench.history.store import open_store
from bench.schema import TURNS_VARIABLE
from tests.conftest import ROOT
from tests.test_processes import QUICK, configs_on_disk, start, wait_until

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_while_the_store_is_waited_for_names_the_add_that_finishes_it(tmp_path,
                                                                               signum, code):
    out, store = tmp_path / "run", tmp_path / "h.duckdb"
    proc = start(["run", "--scenarios", "sequential", "--batch-sizes", "1,2",
                  "--optimizer-setups", "single", "--devices", "cpu", *QUICK,
                  "--max-samples", "5", "--out-dir", str(out), "--history", str(store)],
                 tmp_path, "run")
    # the store was checked before the sweep began; from its first configuration on, hold
    # the file as another writer would, so that the run's add waits for it
    wait_until(lambda: configs_on_disk(out) >= 1 or proc.poll() is not None)
    holder = duckdb.connect(str(store))
    try:
        wait_until(lambda: "Report: " in (tmp_path / "run.out").read_text()
                   or proc.poll() is not None)
        assert proc.poll() is None, (tmp_path / "run.err").read_text()
        proc.send_signal(signum)
        assert proc.wait(timeout=60) == code
    finally:
        holder.close()
    err = (tmp_path / "run.err").read_text()
    line = next(line for line in err.splitlines() if line.startswith("interrupted: "))
    assert "Traceback" not in err and line == err.strip().splitlines()[-1], err
    assert f"the run in {out} is complete" in line
    assert configs_on_disk(out) == 2 and (out / "report.html").exists()
    add = shlex.split(line.split("`")[3])  # the second command quoted: the store's add
    assert add[0] in ("python", sys.executable) and add[1:5] == ["-m", "bench", "history", "add"]
    done = subprocess.run([sys.executable, *add[1:]], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and "added" in done.stdout, done.stderr
    with open_store(str(store)) as history:
        assert history.execute("SELECT count(*) FROM runs") == [(1,)]


@pytest.mark.parametrize("signum, code, ignored", [(signal.SIGINT, 130, False),
                                                   (signal.SIGTERM, 143, False),
                                                   (signal.SIGINT, 130, True)])
def test_a_side_stopped_before_its_first_turn_keeps_its_folder_for_the_resume(tmp_path, signum,
                                                                            code, ignored):
    """A side of a paired round stopped while it waits for its first turn (its folder made,
    its sweep recorded) keeps its folder: the other side may have measured meanwhile, and
    the round resumes only where both folders are (its folder was taken back, and the paired
    command it told to resume then refused the round). ``ignored``: started ignoring SIGINT,
    as a job a script starts with `&` is; it still stops on it (it was dropped until the
    sweep's own handler came, and the run waited for good)."""
    turn_in, turn_back = os.pipe()  # never written: the first turn never comes
    asked, ask = os.pipe()  # where the run says it is ready for its turn
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT), TURNS_VARIABLE: f"{turn_in},{ask},1"}
    proc = subprocess.Popen([sys.executable, "-m", "bench", "run", "--scenarios", "sequential",
                             "--batch-sizes", "1", "--devices", "cpu", *QUICK, "--out-dir",
                             str(out), "--no-report"], cwd=ROOT, env=env,
                            pass_fds=(turn_in, ask),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
                            if ignored else None)
    os.close(ask)
    try:
        assert os.read(asked, 1) == b"."  # folder made, sweep recorded, waiting its turn
        assert (out / "sweep.json").exists()
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        for fd in (turn_in, turn_back, asked):
            os.close(fd)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    # one line, said where it happened, not followed by the command line's own
    assert [line for line in err.splitlines() if line.startswith("interrupted")] == [
        f"interrupted before anything was measured: {out} is kept for the paired rounds, "
        "whose command resumes it side by side"], err
    assert (out / "sweep.json").exists() and configs_on_disk(out) == 0
    if signum == signal.SIGINT and not ignored:  # once is enough: the folder resumes whole
        done = subprocess.run([sys.executable, "-m", "bench", "run", "--resume", str(out),
                               "--quiet", "--no-report"], cwd=ROOT, capture_output=True,
                              text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert done.returncode == 0, done.stderr
        assert configs_on_disk(out) == 3


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_add_stopped_while_it_waits_for_the_store_says_what_is_left(real_run, tmp_path,
                                                                       signum, code):
    """`history add` waiting for a DuckDB file another process holds says that it waits;
    Ctrl-C or SIGTERM then ends it with a line saying the run was not added and the same
    command adds it (SIGTERM ended it silently; Ctrl-C said a bare `interrupted`)."""
    store = tmp_path / "h.duckdb"
    duckdb.connect(str(store)).close()  # made, so that the check before the add opens it
    holder = duckdb.connect(str(store))
    try:
        proc = start(["history", "add", str(real_run), "--store", str(store)], tmp_path, "add")
        wait_until(lambda: "waiting for history store" in (tmp_path / "add.err").read_text()
                   or proc.poll() is not None)
        assert proc.poll() is None, (tmp_path / "add.err").read_text()
        proc.send_signal(signum)
        assert proc.wait(timeout=60) == code
    finally:
        holder.close()
    err = (tmp_path / "add.err").read_text()
    assert "Traceback" not in err
    assert err.splitlines() == [
        f"note: waiting for history store {store}: another process has it open (up to 60 s)",
        "interrupted: the runs not said added above were not added, and the store holds no "
        "part of them; the same command adds them (those added are left as they are)"], err
    done = subprocess.run([sys.executable, "-m", "bench", "history", "add", str(real_run),
                           "--store", str(store)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and " added (" in done.stdout, done.stderr
