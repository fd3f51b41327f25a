"""A busy machine is seen: blocks in which the process did not run, and other processes
using the CPU when a run starts. Real processes and real signals."""

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from bench.measure.environment_capture import machine_load
from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def test_blocks_the_process_was_stopped_in_are_counted_disturbed(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench", "run", "--scenarios", "sequential", "--batch-sizes",
         "8", "--optimizer-setups", "separate,single", "--devices", "cpu", "--threads", "1",
         "--target-ci", "0", "--budget-s", "5", "--min-rounds", "10", "--warmup-s", "0",
         "--workers", "1",
         "--quiet", "--out-dir", str(out)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)
    time.sleep(3)  # past the start (importing torch), into the ten seconds of timing
    stops = 0
    # until the run ends: on a slow start the first stops land before any block is timed
    while proc.poll() is None and stops < 100:
        # 300 ms stopped inside a block of about 50 ms: its CPU time stands still, the wall
        # clock does not. A block is disturbed against the step's median block, so most
        # blocks must run undisturbed: 1.2 s between stops leaves several blocks whole even
        # where a busy machine stretches them (a stop every 0.4 s once left none)
        proc.send_signal(signal.SIGSTOP)
        time.sleep(0.3)
        proc.send_signal(signal.SIGCONT)
        stops += 1
        time.sleep(1.2)
    assert proc.wait(timeout=120) == 0, proc.stderr.read().decode()
    df = pd.read_csv(out / "results.csv")
    steps = df[df.phase == "step"]
    assert stops >= 5 and steps.disturbed_blocks.sum() >= 3
    assert (steps.disturbed_blocks <= steps.blocks).all()


def test_other_processes_using_the_cpu_make_a_busy_machine():
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
            for _ in range(os.cpu_count() or 1)]
    try:
        time.sleep(0.3)
        load = machine_load(0.5)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    assert load["busy"] and load["others_share"] > 0.5
