"""The steady allocator, in fresh processes: with glibc's default policy a batch-128 step
takes thousands of fresh pages from the kernel every iteration; with the thresholds fixed
it takes none once warm. The run records which policy it measured under."""

import json
import os
import subprocess
import sys

import pytest

from bench.measure import allocator
from tests.conftest import ROOT, run_cli

# Minor page faults of each of ten warm steps, counted by the kernel (getrusage), and their
# median: a one-off event in the process (a thread starting, say: 8 MiB, 2048 pages, seen
# once in ten steps on a CI machine) is not the step's own, and moves a mean but not it.
FAULTS = """
import resource, statistics
from bench.measure.allocator import steady_allocator
print(steady_allocator()["policy"])
from multinet.step import StepSpec, build_step
step = build_step(StepSpec("sequential", 128))
for _ in range(5):
    step.run()
faults = []
for _ in range(10):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    step.run()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(statistics.median(faults))
"""


def faults_per_step(policy: str) -> tuple[str, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), allocator.VARIABLE: policy}
    proc = subprocess.run([sys.executable, "-c", FAULTS], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    said, faults = proc.stdout.split("\n")[:2]
    return said, float(faults)


@pytest.mark.slow
@pytest.mark.skipif(allocator._glibc() is None, reason="the thresholds are glibc's")
def test_a_warm_step_takes_no_fresh_pages_under_the_steady_policy():
    said, steady = faults_per_step("")
    assert said == "steady" and steady < 10
    said, default = faults_per_step("default")
    # glibc's own policy maps and unmaps the step's large activations every iteration
    assert said.startswith("glibc's default") and default > 1000


@pytest.mark.slow
def test_the_run_records_the_policy_it_measured_under(tmp_path, monkeypatch):
    sweep = ["run", "--scenarios", "sequential", "--batch-sizes", "2", "--devices", "cpu",
             "--optimizer-setups", "separate", "--min-samples", "3", "--budget-s", "0",
             "--warmup-s", "0", "--quiet"]
    monkeypatch.delenv(allocator.VARIABLE, raising=False)
    proc = run_cli(*sweep, "--out-dir", str(tmp_path / "steady"))
    assert proc.returncode == 0, proc.stderr
    recorded = json.loads((tmp_path / "steady" / "env.json").read_text())["allocator"]
    expected = ({"policy": "steady", "mmap_threshold": 32 * 2 ** 20,
                 "trim_threshold": 2 ** 31 - 1} if allocator._glibc() is not None
                else {"policy": "unchanged: not glibc"})
    assert recorded == expected
    monkeypatch.setenv(allocator.VARIABLE, "default")
    proc = run_cli(*sweep, "--out-dir", str(tmp_path / "default"))
    assert proc.returncode == 0, proc.stderr
    recorded = json.loads((tmp_path / "default" / "env.json").read_text())["allocator"]
    assert recorded == {"policy": f"glibc's default ({allocator.VARIABLE}=default)"}
