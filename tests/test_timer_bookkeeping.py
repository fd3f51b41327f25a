"""What the timer counts: the warm-up's iterations stay out of the samples, and every iteration
of a timed block is one sample, on a real step whose iterations are counted as they run."""

import time

import pytest

from bench.measure.timers import TimingOptions, time_step
from bench.schema import PHASES, STEP
from multinet import StepSpec, build_step

# The first iterations of the counted step are this much slower, as a cold step is (Adam's
# state created, the allocator growing), only far more visibly.
COLD_MS = 40.0


class Counted:
    """A real step that counts its iterations, per pass, and is slow for the first few."""

    def __init__(self, cold_iterations: int = 0):
        self.step = build_step(StepSpec("separate_losses", 2))
        self.cold = cold_iterations
        self.iterations = {"phases": 0, "step": 0}

    def _begin(self, way: str) -> None:
        self.iterations[way] += 1
        if sum(self.iterations.values()) <= self.cold:
            time.sleep(COLD_MS / 1e3)

    def phases(self):
        stages = self.step.phases()
        (first_name, first), rest = stages[0], stages[1:]

        def begin_then_first():
            self._begin("phases")
            first()
        return [(first_name, begin_then_first), *rest]

    def run(self):
        self._begin("step")
        self.step.run()

    @property
    def last_loss(self):
        return self.step.last_loss


def timed_after_a_cold_start():
    step = Counted(cold_iterations=6)
    # stopped by max_samples: a budget a busy machine could spend before the twelfth sample
    options = TimingOptions(warmup_iters=5, warmup_s=0, min_samples=3, max_samples=12,
                            target_rel_ci=0, budget_s=600)
    return step, time_step(step, "cpu", options)


def test_the_warm_up_s_iterations_are_never_timed():
    step, timing = timed_after_a_cold_start()
    assert timing.stop_reason == "max_samples"
    # five asked for, then one more, synchronized, that sizes the blocks
    assert timing.warmup_iters == 6
    # every slow iteration was spent warming up: the timed passes began after them
    assert step.iterations == {"phases": 12, "step": 6 + 12}


# Where other processes hold every core, a sub-millisecond phase can wait longer than a
# cold iteration's 40 ms for its turn, so its median says nothing about the start there.
@pytest.mark.quiet
def test_no_sample_holds_a_cold_iteration():
    _, timing = timed_after_a_cold_start()
    # the phase pass runs first in each round, and its forward would hold the slow start
    # (medians, since a busy machine adds outliers of its own)
    assert timing.summary(PHASES[0]).median < COLD_MS
    assert timing.summary(STEP).median < COLD_MS


def test_the_warm_up_lasts_its_time_as_well_as_its_iterations():
    # iterations of at least 40 ms and 0.2 s of warm-up: though a single iteration is asked
    # for, more follow it until 0.2 s have passed (at most five, fewer if the machine is slow
    # to wake a sleeper), then the one that sizes the blocks
    step = Counted(cold_iterations=10**6)
    options = TimingOptions(warmup_iters=1, warmup_s=0.2, min_samples=3, max_samples=3,
                            target_rel_ci=0, budget_s=60)
    timing = time_step(step, "cpu", options)
    assert 1 + 1 + 1 <= timing.warmup_iters <= 1 + 5 + 1
    assert step.iterations["step"] == timing.warmup_iters + 3


def test_every_iteration_of_a_block_is_one_sample():
    step = Counted()
    # 29 is no multiple of any block size the step could get: the last block is cut short
    # (the budget only ends a timer that lost count, which would otherwise never stop; 30 s
    # is past what a machine busy with other work takes for 29 samples)
    options = TimingOptions(warmup_iters=1, warmup_s=0, min_samples=3, max_samples=29,
                            target_rel_ci=0, budget_s=30)
    timing = time_step(step, "cpu", options)
    warm = timing.warmup_iters
    assert timing.n_samples == 29
    assert step.iterations == {"phases": 29, "step": warm + 29}
    for phase in PHASES:
        assert len(timing.device_ms[phase]) == len(timing.block[phase]) == 29
    assert len(timing.block[STEP]) == 29
