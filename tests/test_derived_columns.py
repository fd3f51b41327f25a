"""Every column the writer derives from a configuration's raw samples, against numpy and
scipy (the reference route, computed apart from bench/measure/stats.py) on samples skewed
to the right as timings are: there the mean, the median and the quartiles all differ, and
the host's clock differs from the device's, so a column taken from the wrong one shows."""

import numpy as np
import pytest
from scipy import stats

from bench.analyze.phase_bounds import COMPUTE, LAUNCH, NEITHER
from bench.measure.result import ConfigResult
from bench.measure.timers import Timing
from bench.schema import PHASES, STEP
from bench.sweep.writer import result_rows, sample_rows
from multinet import StepSpec

# 12 device samples of a step, skewed: median 2.075, mean 2.398, one 6 ms outlier
DEVICE = [1.9, 2.0, 2.1, 1.95, 2.05, 6.0, 2.2, 2.0, 1.98, 2.3, 2.1, 2.2]
HOST = [1.7, 1.6, 1.75, 1.65, 1.8, 1.7, 1.72, 1.69, 1.71, 1.66, 1.9, 1.68]  # median 1.70
BLOCKS = [0] * 4 + [1] * 4 + [2] * 4
CPU_SHARE = [0.97, 0.2, 0.95]  # the second block was disturbed


def cuda_result(world_size: int = 1, peak_tflops: float | None = 50.0) -> ConfigResult:
    timing = Timing(clock="cuda_event", cpu_share=list(CPU_SHARE), warmup_iters=7,
                    stop_reason="budget", elapsed_s=0.75)
    for i, phase in enumerate((*PHASES, STEP)):
        share = 1.0 if phase == STEP else (i + 1) / 10  # forward 0.1, backward 0.2, ...
        timing.device_ms[phase] = [share * d for d in DEVICE]
        # the optimizer's host took half as long, relative to its device time, as the others'
        host_share = share / 2 if phase == PHASES[2] else share
        timing.host_ms[phase] = [host_share * h for h in HOST]
        timing.block[phase] = list(BLOCKS)
    # backward: 2e10 FLOP in 0.41 ms = 48.8 TFLOP/s, 97.6% of a 50 TFLOP/s peak
    flops = {PHASES[1]: {"flops": 2 * 10 ** 10}, STEP: {"flops": 3 * 10 ** 10}}
    return ConfigResult(StepSpec("sequential", 16, "cuda:0"), "Some GPU", 2, "now",
                        timing=timing, phase_columns=flops, peak_tflops=peak_tflops,
                        world_size=world_size)


def rows_by_phase(result: ConfigResult) -> dict[str, dict]:
    return {r["phase"]: r for r in result_rows(result, "run", "2.x", "host")}


def quartiles(values) -> tuple[float, float, float]:
    return tuple(np.percentile(values, [25, 50, 75]))  # linear, as the writer documents


def test_each_statistic_of_a_skewed_phase_is_numpy_s():
    row = rows_by_phase(cuda_result())[STEP]
    q1, median, q3 = quartiles(DEVICE)
    assert median == pytest.approx(2.075) and np.mean(DEVICE) == pytest.approx(2.39833, abs=1e-5)
    assert row["median_ms"] == pytest.approx(median)
    assert row["iqr_ms"] == pytest.approx(q3 - q1)
    assert row["mean_ms"] == pytest.approx(np.mean(DEVICE))
    assert row["std_ms"] == pytest.approx(np.std(DEVICE, ddof=1))
    assert (row["min_ms"], row["max_ms"]) == (1.9, 6.0)
    assert row["n_samples"] == 12
    # the interval of the median from the binomial: the widest symmetric pair of ranks
    # whose coverage 1 - 2 P(B <= j - 1) is at least 95%, B ~ Binomial(12, 1/2)
    j = max(j for j in range(1, 7) if 1 - 2 * stats.binom.cdf(j - 1, 12, 0.5) >= 0.95)
    ordered = sorted(DEVICE)
    assert (row["ci_low_ms"], row["ci_high_ms"]) == (ordered[j - 1], ordered[12 - j])
    assert row["rel_ci"] == pytest.approx((ordered[12 - j] - ordered[j - 1]) / 2 / median)
    assert row["noisy"] == ((q3 - q1) / median > 0.10)


def test_host_columns_are_the_host_clock_s_and_the_bound_follows_them():
    rows = rows_by_phase(cuda_result())
    q1, median, q3 = quartiles(HOST)
    for i, phase in enumerate(PHASES):
        share = (i + 1) / 10 / (2 if phase == PHASES[2] else 1)
        assert rows[phase]["host_median_ms"] == pytest.approx(share * median), phase
        assert rows[phase]["host_iqr_ms"] == pytest.approx(share * (q3 - q1)), phase
    step = rows[STEP]
    assert step["host_median_ms"] == pytest.approx(median)
    # host 1.70 of the device's 2.075 ms is 82%, over the 80% of a launch-bound phase (the
    # optimizer's 41% is not); backward reaches 97.6% of the peak, so it is compute-bound
    # whatever its host did
    assert median / quartiles(DEVICE)[1] == pytest.approx(0.8193, abs=1e-4)
    assert [rows[p]["bound"] for p in (*PHASES, STEP)] == [LAUNCH, COMPUTE, NEITHER, LAUNCH]


def test_rates_take_the_global_batch_and_the_device_median():
    for world in (1, 2):
        rows = rows_by_phase(cuda_result(world_size=world))
        device_median = quartiles(DEVICE)[1]
        assert rows[STEP]["global_batch_size"] == 16 * world
        assert rows[STEP]["samples_per_s"] == pytest.approx(16 * world / device_median * 1e3)
        backward = rows[PHASES[1]]
        tflops = 2e10 / (0.2 * device_median * 1e-3) / 1e12
        assert backward["tflops_per_s"] == pytest.approx(tflops)
        assert backward["peak_fraction"] == pytest.approx(tflops / 50.0)
        assert rows[STEP]["tflops_per_s"] == pytest.approx(3e10 / (device_median * 1e-3) / 1e12)
        assert "tflops_per_s" not in rows[PHASES[0]]  # no FLOPs counted there
    # without a known peak the rate stays, its fraction and the compute bound go
    unknown = rows_by_phase(cuda_result(peak_tflops=None))
    assert "peak_fraction" not in unknown[PHASES[1]]
    assert unknown[PHASES[1]]["bound"] == LAUNCH  # its host took 82% of its time


def test_block_counts_and_bookkeeping_are_the_timing_s():
    rows = rows_by_phase(cuda_result())
    for row in rows.values():
        # three blocks, the one at 0.2 under 75% of the median share (0.95)
        assert (row["blocks"], row["disturbed_blocks"]) == (3, 1)
        assert (row["warmup_iters"], row["stop_reason"], row["measure_s"]) == (7, "budget", 0.75)
        assert (row["repeat"], row["world_size"], row["status"]) == (2, 1, "ok")


def test_sample_rows_keep_every_sample_with_its_block():
    samples = sample_rows(cuda_result(), "run")
    step = [s for s in samples if s["phase"] == STEP]
    assert [s["device_ms"] for s in step] == pytest.approx(DEVICE)
    assert [s["host_ms"] for s in step] == pytest.approx(HOST)
    assert [s["block"] for s in step] == BLOCKS
    assert [s["iteration"] for s in step] == list(range(12))
    assert len(samples) == 4 * 12 and {s["repeat"] for s in samples} == {2}
