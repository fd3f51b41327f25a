"""Paired rounds' sides pinned to the CPUs they share: which CPUs ``--cpus`` names, and real
processes taking turns whose every thread lands there once they are ready, not before."""

import json
import os
import subprocess
import sys
import time

import pytest

from bench.sweep.pinning import choose_cpus, cpu_times, idlest_first
from bench.sweep.side_by_side import run_side_by_side
from tests.conftest import ROOT
from tests.support.refusals import refused_in_one_line

ALLOWED = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
needs_affinity = pytest.mark.skipif(len(ALLOWED) < 2, reason="pinning shows only where a "
                                    "process may run on two CPUs or more (Linux)")

# Records its affinity while starting up, then, after its first turn, that of its main
# thread, of a thread it started before the turn, and of one it starts after.
WORKER = """
import json, os, sys, threading
from bench.sweep.turns import take_turn
before = sorted(os.sched_getaffinity(0))
release = threading.Event()
early = threading.Thread(target=release.wait)
early.start()
take_turn()
seen = {}
late = threading.Thread(target=lambda: seen.update(late=sorted(os.sched_getaffinity(0))))
late.start(); late.join()
with open(sys.argv[1], "w") as f:
    json.dump({"before": before, "main": sorted(os.sched_getaffinity(0)),
               "early": sorted(os.sched_getaffinity(early.native_id)), **seen}, f)
release.set()
early.join()
"""


def affinities(tmp_path, cpus):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    outs = [tmp_path / f"{name}.json" for name in ("a", "b")]
    commands = [([sys.executable, "-c", WORKER, str(out)], env) for out in outs]
    assert run_side_by_side(commands, seed=3, cpus=cpus, cwd=ROOT) == [0, 0]
    return [json.loads(out.read_text()) for out in outs]


@needs_affinity
def test_every_thread_of_each_side_lands_on_the_shared_cpu_once_ready(tmp_path):
    last = ALLOWED[-1]
    for seen in affinities(tmp_path, (last, ALLOWED[0])):
        assert seen["before"] == ALLOWED  # its start-up ran wherever the system put it
        # torch is not imported by the worker: one thread runs, so one CPU, the first named
        assert seen["main"] == seen["early"] == seen["late"] == [last]


@needs_affinity
def test_without_cpus_nothing_is_pinned(tmp_path):
    for seen in affinities(tmp_path, None):
        assert seen["main"] == seen["early"] == seen["late"] == ALLOWED


def test_cpu_times_count_idle_and_iowait_as_not_busy():
    text = ("cpu  20 0 10 200 10 0 0 0 0 0\n"
            "cpu0 10 0 5 100 5 0 0 0 0 0\n"
            "cpu1 10 1 5 100 5 2 3 4 0 0\n"
            "intr 1 2 3\ncpu2 1 2\n")
    # busy: user nice system irq softirq steal; all: those and idle, iowait
    assert cpu_times(text) == {0: (15, 120), 1: (25, 130)}


def test_the_idlest_cpu_comes_first_and_the_later_one_on_a_tie():
    before = {0: (100, 1000), 1: (100, 1000), 2: (100, 1000), 3: (100, 1000)}
    after = {0: (600, 2000), 1: (110, 2000), 2: (110, 2000), 3: (1100, 2000)}
    # busy shares 0.50, 0.01, 0.01, 1.00
    assert idlest_first([0, 1, 2, 3], before, after) == (2, 1, 0, 3)
    assert idlest_first([0, 1, 2, 3], before, before) == (3, 2, 1, 0)  # nothing to tell
    assert idlest_first([0, 1], {}, {}) == (1, 0)  # no /proc/stat


@needs_affinity
@pytest.mark.quiet
def test_auto_leaves_a_cpu_another_process_keeps_busy_for_last():
    busy = subprocess.Popen([sys.executable, "-c", "import os\n"
                             f"os.sched_setaffinity(0, {{{ALLOWED[-1]}}})\nwhile True: pass"])
    try:
        time.sleep(1.0)
        assert choose_cpus("auto")[-1] == ALLOWED[-1]
    finally:
        busy.kill()
        busy.wait()


@needs_affinity
def test_auto_names_every_allowed_cpu_all_pins_nothing_and_a_list_is_kept_in_order():
    assert sorted(choose_cpus("auto")) == ALLOWED
    assert choose_cpus(" ALL ") is None
    assert choose_cpus(f"{ALLOWED[-1]},{ALLOWED[0]}") == (ALLOWED[-1], ALLOWED[0])


@needs_affinity
def test_a_cpu_outside_the_allowed_given_twice_or_not_a_number_is_refused():
    allowed = ",".join(map(str, ALLOWED))
    with pytest.raises(ValueError, match=f"4096 is not one of the CPUs this process may use "
                                         f"\\({allowed}\\)"):
        choose_cpus(f"{ALLOWED[0]},4096")
    with pytest.raises(ValueError, match="a CPU is given twice"):
        choose_cpus(f"{ALLOWED[0]},{ALLOWED[0]}")
    for text in ("one", "1-2", "", "-1,"):
        with pytest.raises(ValueError, match="expected auto, all or CPU numbers|is not one of"):
            choose_cpus(text)


def test_paired_rounds_refuse_cpus_it_may_not_use_in_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "bench", "paired-rounds",
                           "--env", f"a={sys.executable}", "--env", f"b={sys.executable}",
                           "--cpus", "4096", "--out-dir", str(tmp_path / "out")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    refused_in_one_line(proc, "--cpus", "4096")
    assert not (tmp_path / "out").exists()


def test_a_turns_variable_with_malformed_cpus_is_refused_with_what_it_expects():
    from bench.errors import UsageError
    from bench.sweep import turns
    for text in ("3,4,1;", "3,4,1;x", "3,4,1;-2", "3,4,1;2;3"):
        with pytest.raises(UsageError, match=";CPU,CPU"):
            turns.parse(text)
