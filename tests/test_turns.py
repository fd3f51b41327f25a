"""Processes taking turns, in real processes with real pipes: one works at a time, the turn
goes round A B, B A, a process that exits leaves the others going, and sweeps run side by
side record their turns and share their groups' order."""

import json
import os
import signal
import subprocess
import sys

import pandas as pd
import pytest

from bench.errors import UsageError
from bench.measure import turns
from bench.schema import TURNS_VARIABLE
from bench.sweep.interrupt import Interrupted
from bench.sweep import side_by_side
from bench.sweep.side_by_side import cycle_order, run_side_by_side
from tests.conftest import ROOT

# Each turn: note the start, work a little (a busy loop, so an overlap would show), note
# the end. The log lines are "name start end" in monotonic nanoseconds, shared by processes.
WORKER = """
import sys, time
from bench.measure.turns import take_turn
name, count, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]
for _ in range(count):
    take_turn()
    start = time.monotonic_ns()
    while time.monotonic_ns() - start < 3_000_000:
        pass
    with open(log, "a") as f:
        f.write(f"{name} {start} {time.monotonic_ns()}\\n")
"""


def workers(log, counts: dict[str, int]) -> list[tuple[list[str], dict[str, str]]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return [([sys.executable, "-c", WORKER, name, str(count), str(log)], env)
            for name, count in counts.items()]


def turns_in(log) -> list[tuple[str, int, int]]:
    rows = [line.split() for line in log.read_text().splitlines()]
    return sorted(((n, int(s), int(e)) for n, s, e in rows), key=lambda r: r[1])


def test_two_processes_never_work_at_once_and_alternate_abba(tmp_path):
    log = tmp_path / "turns.log"
    assert run_side_by_side(workers(log, {"a": 6, "b": 6}), seed=1, cwd=ROOT) == [0, 0]
    done = turns_in(log)
    assert len(done) == 12
    for (_, _, end), (_, start, _) in zip(done, done[1:]):
        assert end <= start  # the next turn starts after the last one ended
    assert "".join(name for name, _, _ in done) == "abbaabbaabba"


def test_a_process_that_exits_leaves_the_others_going(tmp_path):
    log = tmp_path / "turns.log"
    statuses = run_side_by_side(workers(log, {"a": 2, "b": 5}) + [
        ([sys.executable, "-c", "import sys; sys.exit(3)"], dict(os.environ))], seed=2, cwd=ROOT)
    assert statuses == [0, 0, 3]
    names = "".join(name for name, _, _ in turns_in(log))
    assert sorted(names) == sorted("aabbbbb") and names.endswith("bbb")


def test_a_process_that_stops_taking_turns_but_runs_on_is_reported(tmp_path, monkeypatch,
                                                                     capfd):
    monkeypatch.setattr(side_by_side, "EXIT_GRACE_S", 0.2)
    log = tmp_path / "turns.log"
    deserter = ("import os, time\nfrom bench.measure.turns import current, take_turn\n"
                "take_turn()\nturns = current()\nos.close(turns.read_fd)\n"
                "os.close(turns.write_fd)\ntime.sleep(2)\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    statuses = run_side_by_side(workers(log, {"a": 3}) + [([sys.executable, "-c", deserter],
                                                           env)], seed=3, cwd=ROOT)
    assert statuses == [0, 0]
    assert "stopped taking turns while still running" in capfd.readouterr().err


def test_more_than_two_take_each_cycle_in_a_fresh_order():
    import random
    rng = random.Random(0)
    orders = [tuple(cycle_order(3, c, rng)) for c in range(20)]
    assert all(sorted(o) == [0, 1, 2] for o in orders) and len(set(orders)) > 2
    assert [cycle_order(2, c, rng) for c in range(3)] == [[0, 1], [1, 0], [0, 1]]


def test_alone_a_turn_returns_at_once_and_a_gone_coordinator_stops_it(monkeypatch, capfd):
    monkeypatch.setattr(turns, "_read", False)
    monkeypatch.delenv(TURNS_VARIABLE, raising=False)
    turns.take_turn()
    assert turns.current() is None and turns.shared_seed() is None
    hear_r, hear_w = os.pipe()
    say_r, say_w = os.pipe()
    monkeypatch.setattr(turns, "_read", False)
    monkeypatch.setenv(TURNS_VARIABLE, f"{hear_r},{say_w},42")
    try:
        assert turns.shared_seed() == 42
        assert TURNS_VARIABLE not in os.environ  # a process it starts has none of its pipes
        os.write(hear_w, b".")
        turns.take_turn()  # handed back at once
        assert os.read(say_r, 1) == b"."
        os.close(hear_w)  # the coordinator is gone: nothing more would pair
        with pytest.raises(Interrupted) as stopped:
            turns.take_turn()
        assert stopped.value.signum == signal.SIGTERM and turns.current().open is False
        assert "coordinator is gone: stopping here" in capfd.readouterr().err
    finally:
        for fd in (hear_r, say_r, say_w):
            os.close(fd)
        monkeypatch.setattr(turns, "_read", False)


def test_a_malformed_or_foreign_variable_is_refused_with_what_it_expects(tmp_path):
    with pytest.raises(UsageError, match="expected READ_FD,WRITE_FD,SEED"):
        turns.parse("3,4")
    with open(tmp_path / "file", "w") as f:  # a descriptor that is no pipe
        with pytest.raises(UsageError, match=f"descriptor {f.fileno()} is not a pipe"):
            turns.parse(f"{f.fileno()},{f.fileno()},1")
    proc = subprocess.run([sys.executable, "-m", "bench", "run", "--scenarios", "sequential",
                           "--devices", "cpu", "--out-dir", str(tmp_path / "run")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT), TURNS_VARIABLE: "x"})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(f"error: {TURNS_VARIABLE}='x'")


SWEEP = ["--scenarios", "sequential,shared_input,separate_losses", "--batch-sizes", "1,2", "--devices", "cpu",
         "--optimizer-setups", "separate,single", "--min-samples", "3", "--min-rounds", "2",
         "--budget-s", "0", "--warmup-s", "0", "--threads", "1", "--quiet", "--workers", "1"]


@pytest.mark.slow
def test_sweeps_side_by_side_share_the_groups_order_and_say_they_took_turns(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    commands = [([sys.executable, "-m", "bench", "run", "--out-dir", str(tmp_path / n), *SWEEP],
                 env) for n in ("a", "b")]
    assert run_side_by_side(commands, seed=7, cwd=ROOT) == [0, 0]
    orders = [list(dict.fromkeys(pd.read_csv(tmp_path / n / "results.csv")["group"]))
              for n in ("a", "b")]
    # 90 orders are possible (batch sizes go smallest first within a scenario): the same
    # one twice by chance is 1 in 90
    assert len(orders[0]) == 6 and orders[0] == orders[1]
    for n in ("a", "b"):
        env_record = json.loads((tmp_path / n / "env.json").read_text())
        assert env_record["took_turns"] == {"groups_order_seed": 7}
