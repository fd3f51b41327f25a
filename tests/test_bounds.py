"""What bounds a phase: the rule by hand, the rows the writer derives, and the report's
section on a synthetic GPU run (this machine has no GPU) and on a CPU run."""

import math

import pytest

from bench.analyze.phase_bounds import (COMPUTE, COMPUTE_PEAK_FRACTION, LAUNCH, LAUNCH_HOST_SHARE,
                                        NEITHER, phase_bound)
from bench.analyze.reader import load_run
from bench.measure.result import ConfigResult
from bench.measure.timers import Timing
from bench.schema import PHASES, STEP
from bench.sweep.writer import result_rows
from tests.support.synthetic import sweep_run
from multinet import StepSpec


def test_the_rule_by_hand():
    assert (LAUNCH_HOST_SHARE, COMPUTE_PEAK_FRACTION) == (0.8, 0.5)
    # host 0.9 of the device's 1.0 ms: launch-bound
    assert phase_bound("cuda:0", 1.0, 0.9, 0.01) == LAUNCH
    assert phase_bound("cuda:0", 1.0, 0.8, None) == LAUNCH  # at the threshold
    assert phase_bound("cuda:1", 1.0, 0.79, 0.49) == NEITHER
    # 60% of the peak is compute-bound, even with a host that waits on a full queue
    assert phase_bound("cuda", 1.0, 0.95, 0.6) == COMPUTE
    assert phase_bound("cuda:0", 2.0, 0.5, 0.5) == COMPUTE
    # cannot be said: not CUDA, not measured, a CUDA graph's untimed phase, no host time
    assert phase_bound("cpu", 1.0, 1.0, 0.9) == ""
    assert phase_bound("mps", 1.0, 1.0, None) == ""
    assert phase_bound("cuda:0", 1.0, 0.9, None, measured=False) == ""
    assert phase_bound("cuda:0", "", "", "") == ""
    assert phase_bound("cuda:0", math.nan, 0.9, math.nan) == ""
    assert phase_bound("cuda:0", 1.0, math.nan, 0.1) == ""
    assert phase_bound("cuda:0", 1.0, math.nan, 0.7) == COMPUTE


def a_cuda_result(device="cuda:0", peak_tflops=100.0):
    timing = Timing(clock="cuda_event")
    for phase in (*PHASES, STEP):
        timing.device_ms[phase] = [1.0, 1.0, 1.0]
    timing.host_ms[PHASES[0]] = [0.9] * 3  # launch-bound forward
    timing.host_ms[PHASES[1]] = [0.2] * 3  # backward: 60 TFLOP/s of 100, compute-bound
    timing.host_ms[PHASES[2]] = [0.5] * 3  # optimizer: neither
    timing.host_ms[STEP] = [0.7] * 3
    phases = {PHASES[1]: {"flops": 60 * 10 ** 9}, STEP: {"flops": 40 * 10 ** 9}}
    return ConfigResult(StepSpec("sequential", 4, device), "Some GPU", 1, "now", timing=timing,
                        phase_columns=phases, peak_tflops=peak_tflops)


def test_the_writer_puts_the_bound_on_every_row():
    rows = {r["phase"]: r for r in result_rows(a_cuda_result(), "run", "2.x", "host")}
    assert rows[PHASES[1]]["peak_fraction"] == pytest.approx(0.6)
    assert [rows[p]["bound"] for p in (*PHASES, STEP)] == [LAUNCH, COMPUTE, NEITHER, NEITHER]
    # the step's 40 TFLOP/s is under half the peak, and its host took 0.7 of its time
    assert rows[STEP]["peak_fraction"] == pytest.approx(0.4)
    cpu = result_rows(a_cuda_result("cpu", None), "run", "2.x", "host")
    assert {r.get("bound", "") for r in cpu} == {""}
    # without a known peak only the launch share decides
    unknown = {r["phase"]: r["bound"] for r in result_rows(a_cuda_result(peak_tflops=None),
                                                           "run", "2.x", "host")}
    assert unknown[PHASES[0]] == LAUNCH and unknown[PHASES[1]] == NEITHER


def test_a_synthetic_gpu_run_has_launch_and_compute_bound_configurations(tmp_path):
    run = load_run(sweep_run(tmp_path / "run", scenarios=["sequential"],
                             batch_sizes=[1, 64, 1024], setups=("separate",)))
    steps = run.results[run.results["phase"] == STEP].set_index("batch_size")
    assert list(steps["bound"]) == [LAUNCH, NEITHER, COMPUTE]
    # bs1: host 0.94 x 0.8 ms of a 0.804 ms step; bs1024: 0.9 x 4.096 of 4.896 ms at peak,
    # FLOPs of forward and backward only (0.8 of the step's share)
    assert steps.loc[1, "host_median_ms"] / steps.loc[1, "median_ms"] == pytest.approx(
        0.94 * 0.8 / 0.804, rel=0.03)
    assert steps.loc[1024, "peak_fraction"] == pytest.approx(0.9 * 4.096 / 4.896 * 0.8,
                                                             rel=0.03)
    # energy: the board's 120 + 0.05 x 64 W over the step's time
    assert steps.loc[64, "energy_j_per_step"] == pytest.approx(123.2 * 1.056e-3, rel=0.03)
    assert set(steps["energy_source"]) == {"counter"}
