"""The CPU timer path on a real, tiny step."""

import pytest
import torch

from bench.errors import UsageError
from bench.timers import PHASES, STEP, TIMED_PHASES, TimingOptions, time_step
from multinet import StepSpec, build_step

TINY = StepSpec("separate_losses", 2)


def test_samples_for_every_phase_and_the_step():
    options = TimingOptions(warmup_iters=2, warmup_s=0, min_samples=8, budget_s=0.2)
    timing = time_step(build_step(TINY), "cpu", options)
    n = timing.n_samples
    assert n >= 8
    assert timing.clock == "perf_counter"
    assert timing.warmup_iters == 3  # two, then one synchronized to size the blocks
    for phase in TIMED_PHASES:
        assert len(timing.device_ms[phase]) == len(timing.host_ms[phase]) == n
        assert all(t > 0 for t in timing.device_ms[phase])
    # on the CPU the host clock is the device clock
    assert timing.device_ms == timing.host_ms
    # the instrumented and the plain pass run the same work, so their fastest iterations
    # agree (minima: other work on a shared machine only ever adds time)
    phase_sum = sum(min(timing.device_ms[p]) for p in PHASES)
    assert 0.5 < phase_sum / min(timing.device_ms[STEP]) < 2


def test_stops_at_max_samples_exactly():
    options = TimingOptions(warmup_iters=1, warmup_s=0, min_samples=3, max_samples=7,
                            target_rel_ci=0, budget_s=60)
    timing = time_step(build_step(TINY), "cpu", options)
    assert (timing.n_samples, timing.stop_reason) == (7, "max_samples")


def test_stops_when_converged():
    # a 1000% target is met as soon as the minimum count is
    options = TimingOptions(warmup_iters=1, warmup_s=0, min_samples=6, target_rel_ci=10,
                            budget_s=60)
    timing = time_step(build_step(TINY), "cpu", options)
    assert timing.stop_reason == "converged"


def test_stops_when_the_budget_is_spent():
    options = TimingOptions(warmup_iters=1, warmup_s=0, min_samples=4, target_rel_ci=0,
                            budget_s=0.05)
    timing = time_step(build_step(TINY), "cpu", options)
    assert timing.stop_reason == "budget"
    assert timing.elapsed_s >= 0.05


def test_timing_runs_the_same_computation_as_plain_iterations():
    timed, plain = build_step(TINY), build_step(TINY)
    options = TimingOptions(warmup_iters=1, warmup_s=0, min_samples=4, max_samples=4)
    timing = time_step(timed, "cpu", options)
    # warm-up iterations + one instrumented and one plain iteration per sample
    for _ in range(timing.warmup_iters + 2 * timing.n_samples):
        plain.run()
    assert all(torch.equal(a, b) for a, b in zip(timed.parameters(), plain.parameters()))


@pytest.mark.parametrize("kwargs", [{"min_samples": 0}, {"max_samples": 2, "min_samples": 3},
                                    {"budget_s": -1}, {"warmup_iters": 1.5}])
def test_bad_options(kwargs):
    with pytest.raises(UsageError):
        TimingOptions(**kwargs)
