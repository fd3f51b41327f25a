"""Energy per step: NVML's energy counter read around each block, the mean-power estimate
where the counter is missing, and nothing at all without NVML.

This machine has no NVIDIA driver, so the counter is a stand-in for ``pynvml`` whose value
the test controls; the expected joules follow by hand. The path without a driver runs the
real code."""

import pynvml
import pytest

from bench.measure import configuration
from bench.measure.configuration import NvmlHandles, measure_configuration, measure_group
from bench.measure.energy import ENERGY_COLUMNS, EnergyMeter, energy_columns, iterations
from bench.measure.nvml import NvmlSampler, nvml_session
from bench.measure.timers import Timing, TimingOptions, time_steps
from bench.schema import COUNTER, ESTIMATE, PHASES, STEP
from bench.sweep.writer import result_rows
from multinet import StepSpec
from tests.test_nvml import FakeNvml

QUICK = TimingOptions(warmup_iters=2, warmup_s=0, min_samples=10, max_samples=150,
                      target_rel_ci=10, budget_s=60, min_rounds=3)


class Counter:
    """A device's energy counter in millijoules, as NVML gives it."""

    def __init__(self, millijoules: int = 0, fail_after: int | None = None):
        self.mj, self.reads, self.fail_after = millijoules, 0, fail_after

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        self.reads += 1
        if self.fail_after is not None and self.reads > self.fail_after:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_UNKNOWN)
        return self.mj


class NoCounter:
    """A GPU before Volta: the counter is not supported."""

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)


class Burner:
    """A step that uses a known energy per iteration, in both passes: the boundaries' pass
    calls each phase once per iteration, the unbroken pass calls ``run``."""

    def __init__(self, counter: Counter, mj_per_iteration: int):
        self.counter, self.mj = counter, mj_per_iteration
        self.last_loss = None

    def _burn(self):
        self.counter.mj += self.mj

    def phases(self):
        return [(PHASES[0], self._burn), *((p, lambda: None) for p in PHASES[1:])]

    def run(self):
        self._burn()


def a_timing(step_ms, phases=True):
    timing = Timing(clock="cuda_event")
    timing.device_ms[STEP] = list(step_ms)
    if phases:
        timing.device_ms[PHASES[0]] = [0.1] * len(step_ms)
    return timing


def test_the_meter_sums_each_step_s_blocks_and_skips_what_lies_between():
    counter = Counter(10_000)
    meter = EnergyMeter(counter, "h", 2)
    assert meter.counting
    for index, before, after in [(0, 10_000, 10_400), (1, 10_900, 12_900), (0, 13_000, 13_600)]:
        counter.mj = before
        meter(index, "before")
        counter.mj = after
        meter(index, "after")
    # step 0: 400 + 600 mJ; step 1: 2000 mJ; the gaps (10400 -> 10900 -> 13000) are nobody's
    assert meter.joules(0) == pytest.approx(1.0) and meter.joules(1) == pytest.approx(2.0)
    # 1 J over 10 step-pass and 10 phase-pass iterations: 0.05 J each; a batch of 8
    assert meter.columns(0, a_timing([2.0] * 10), 8, power_w=300.0) == pytest.approx(
        {"energy_j_per_step": 0.05, "samples_per_j": 160.0, "energy_source": COUNTER})
    # a replayed CUDA graph has only the unbroken pass: 2 J over 5 iterations
    assert meter.columns(1, a_timing([2.0] * 5, phases=False), 8, None) == pytest.approx(
        {"energy_j_per_step": 0.4, "samples_per_j": 20.0, "energy_source": COUNTER})


def test_energy_of_steps_timed_together_is_each_one_s_own():
    counter = Counter()
    low, high = Burner(counter, 2), Burner(counter, 5)
    meter = EnergyMeter(counter, "h", 2)
    timings = time_steps([low, high], "cpu", QUICK, block_hook=meter)
    # the warm-up burned energy too, before the first block: it is not counted
    assert counter.mj > 2 * iterations(timings[0]) + 5 * iterations(timings[1])
    assert iterations(timings[0]) == 2 * timings[0].n_samples > 0
    assert meter.joules(0) == pytest.approx(0.002 * iterations(timings[0]))
    assert meter.joules(1) == pytest.approx(0.005 * iterations(timings[1]))
    cols = meter.columns(1, timings[1], 4, power_w=None)
    assert cols == pytest.approx({"energy_j_per_step": 0.005, "samples_per_j": 800.0,
                                  "energy_source": COUNTER})


def test_without_the_counter_mean_power_times_the_step_is_an_estimate():
    meter = EnergyMeter(NoCounter(), "h", 1)
    assert not meter.counting and meter.joules(0) is None
    meter(0, "before")  # does nothing, raises nothing
    # 300 W x 2.5 ms (the step's median) = 0.75 J; 15 samples / 0.75 J = 20 per joule
    assert meter.columns(0, a_timing([2.0, 2.5, 3.0]), 15, power_w=300.0) == pytest.approx(
        {"energy_j_per_step": 0.75, "samples_per_j": 20.0, "energy_source": ESTIMATE})


def test_a_counter_lost_midway_or_that_never_moved_gives_the_estimate():
    counter = Counter(5_000, fail_after=2)  # the probe, a block's before, then it fails
    meter = EnergyMeter(counter, "h", 1)
    meter(0, "before")
    meter(0, "after")
    assert not meter.counting and meter.joules(0) is None
    still = EnergyMeter(Counter(5_000), "h", 1)
    still(0, "before")
    still(0, "after")
    assert still.joules(0) == 0.0
    assert still.columns(0, a_timing([4.0]), 2, power_w=100.0)["energy_source"] == ESTIMATE
    assert energy_columns(2, joules=0.0, iterations=4, power_w=100.0, step_ms=4.0) == \
        pytest.approx({"energy_j_per_step": 0.4, "samples_per_j": 5.0,
                       "energy_source": ESTIMATE})


def test_a_counter_that_goes_back_was_reset_and_gives_the_estimate():
    """The driver reloaded between a block's readings: the counter restarts near zero, and
    the difference (here -9,900 mJ) is no energy; the figure falls back to the estimate."""
    counter = Counter(10_000)
    meter = EnergyMeter(counter, "h", 1)
    meter(0, "before")
    counter.mj = 10_400
    meter(0, "after")
    assert meter.joules(0) == pytest.approx(0.4)
    meter(0, "before")
    counter.mj = 500
    meter(0, "after")
    assert not meter.counting and meter.joules(0) is None
    # 200 W x 3 ms = 0.6 J a step, 8 samples
    assert meter.columns(0, a_timing([3.0] * 4), 8, power_w=200.0) == pytest.approx(
        {"energy_j_per_step": 0.6, "samples_per_j": 8 / 0.6, "energy_source": ESTIMATE})


def test_neither_counter_nor_power_leaves_the_columns_empty():
    meter = EnergyMeter(None, None, 1)
    assert not meter.counting
    assert meter.columns(0, a_timing([1.0]), 4, power_w=None) == {}
    assert energy_columns(4, joules=None, iterations=10, power_w=0.0, step_ms=1.0) == {}


@pytest.mark.slow
def test_a_group_measured_with_a_counter_gets_a_figure_per_configuration(monkeypatch):
    """time_together wired to the meter: a counter that moves 100 mJ between any two readings
    gives each configuration 0.1 J per block of its own, over its own iterations."""
    fake = FakeNvml(pid=0)
    fake.mj = 0

    def energy(handle):
        fake.mj += 100
        return fake.mj

    fake.nvmlDeviceGetTotalEnergyConsumption = energy
    monkeypatch.setattr(configuration.NvmlHandles, "sampler",
                        lambda self, device: NvmlSampler(fake, "h", interval_s=0.01))
    specs = [StepSpec("sequential", 2, optimizer_setup=s) for s in ("separate", "single")]
    results = measure_group(specs, QUICK, nvml=NvmlHandles(None))
    for result in results:
        timing, cols = result.timing, result.config_columns
        blocks = len(timing.cpu_share)
        expected = 0.1 * blocks / (2 * timing.n_samples)
        assert cols["energy_source"] == COUNTER
        assert cols["energy_j_per_step"] == pytest.approx(expected)
        assert cols["samples_per_j"] == pytest.approx(2 / expected)
        assert cols["power_w_mean"] == 350  # the group's, from the sampler


@pytest.mark.slow
def test_on_the_cpu_the_real_path_leaves_the_columns_empty_and_raises_nothing():
    module, _ = nvml_session()
    if module is not None:
        pytest.skip("an NVIDIA driver is present")
    result = measure_configuration(StepSpec("sequential", 2), QUICK, nvml=NvmlHandles(None))
    assert result.status == "ok"
    assert not set(ENERGY_COLUMNS) & set(result.config_columns)
    rows = result_rows(result, "run", "2.x", "host")
    assert {row[c] if c in row else "" for row in rows for c in ENERGY_COLUMNS} == {""}


@pytest.mark.gpu
def test_on_a_gpu_each_configuration_of_a_group_gets_a_plausible_figure():
    """The real counter (or, on a GPU without it, the estimate): joules per step over the
    step's time is the board's mean power while it ran, which no GPU puts under 10 W or
    over 2 kW."""
    specs = [StepSpec("sequential", 256, "cuda:0", s, "adam", "foreach")
             for s in ("separate", "single")]
    results = measure_group(specs, TimingOptions(warmup_iters=3, warmup_s=0, min_samples=20,
                                                 budget_s=0.5), nvml=NvmlHandles(None))
    for result in results:
        cols = result.config_columns
        assert cols["energy_source"] in (COUNTER, ESTIMATE)
        watts = cols["energy_j_per_step"] / (result.timing.summary(STEP).median / 1e3)
        assert 10 < watts < 2000, watts
        assert cols["samples_per_j"] == pytest.approx(256 / cols["energy_j_per_step"])
        rows = result_rows(result, "run", "2.x", "host")
        assert {r["bound"] for r in rows if r["phase"] == STEP} <= {"launch", "compute",
                                                                     "neither"}
