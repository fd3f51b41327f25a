"""The CPU timer path on a real, tiny step."""

import pytest
import torch

from bench.errors import UsageError
from bench.measure.timers import TimingOptions, time_step, time_steps
from bench.schema import REQUIRED_PHASES, STEP, TARGET
from multinet import StepSpec, build_step

TINY = StepSpec("separate_losses", 2)


def test_samples_for_every_phase_and_the_step():
    options = TimingOptions(warmup_iters=2, warmup_s=0, min_samples=8, budget_s=0.2)
    timing = time_step(build_step(TINY), "cpu", options)
    n = timing.n_samples
    assert n >= 8
    assert timing.clock == "perf_counter"
    assert timing.warmup_iters == 3  # two, then one synchronized to size the blocks
    for phase in REQUIRED_PHASES:  # the scenario has no target update: no `target` samples
        assert len(timing.device_ms[phase]) == len(timing.host_ms[phase]) == n
        assert all(t > 0 for t in timing.device_ms[phase])
    assert timing.device_ms[TARGET] == []
    # on the CPU the host clock is the device clock (how the phases add up to the step:
    # tests/test_phase_attribution.py)
    assert timing.device_ms == timing.host_ms


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


def test_the_cross_check_pairs_its_rounds():
    """Rounds from an H100 whose host slowed between rounds: the medians of the two sides
    differ by 21%, while each round's two measurements agree within 3% at the median."""
    from bench.measure.crosscheck import CrossCheck
    cc = CrossCheck("sequential/seed/cuda:0/bs32", 16, 3, [3.132, 3.188, 2.411],
                    [3.529, 2.597, 2.354], [3.329, 3.345, 2.344])
    assert cc.harness_ms / cc.reference_ms == pytest.approx(3.132 / 2.597)
    assert cc.ratio == pytest.approx(2.411 / 2.354)  # the middle of 0.888, 1.228, 1.024
    assert cc.phase_sum_ratio == pytest.approx(3.345 / 3.188)  # of 1.063, 1.049, 0.972


class Logged:
    """A real step whose stages and whole iterations are written down as they run."""

    def __init__(self, name, log):
        self.step, self.name, self.log = build_step(TINY), name, log

    def phases(self):
        return [(phase, self._logged(fn)) for phase, fn in self.step.phases()]

    def _logged(self, fn):
        def run():
            self.log.append(self.name)
            fn()
        return run

    def run(self):
        self.log.append(self.name)
        self.step.run()

    @property
    def last_loss(self):
        return self.step.last_loss


def test_steps_timed_together_take_turns_a_block_each_round():
    log = []
    a, b = Logged("a", log), Logged("b", log)
    # No budget: sampling stops at the first check after six rounds, converged or not. A
    # machine busy with other work cannot stretch it to a seventh (a wide interval would,
    # where a budget waited for the target).
    options = TimingOptions(warmup_iters=1, warmup_s=0, min_samples=4, target_rel_ci=10,
                            budget_s=0, min_rounds=6)
    ta, tb = time_steps([a, b], "cpu", options)
    assert ta.stop_reason == tb.stop_reason and ta.stop_reason in ("converged", "budget")
    for timing in (ta, tb):
        assert sorted(set(timing.block[STEP])) == list(range(6)) == sorted(set(
            timing.block["forward"]))
        assert len(timing.cpu_share) == 6
    # The blocks ran a b | b a | a b | b a | a b | b a after the warm-ups (a, b): a different
    # step leads each round, so two rounds meet in a step's blocks back to back. Written as
    # runs of one step's work: a b, then a b a b a b a (without taking turns, 14 runs).
    runs = [name for i, name in enumerate(log) if i == 0 or log[i - 1] != name]
    assert runs == ["a", "b"] * 4 + ["a"]


def test_a_block_the_process_did_not_run_in_counts_as_disturbed():
    from bench.measure.timers import Timing
    timing = Timing(clock="perf_counter", cpu_share=[0.95, 0.97, 0.96, 0.40, 0.94, 0.70])
    # the typical share is the median, 0.945; under 75% of it (0.709): 0.40 and 0.70
    assert timing.disturbed_blocks == 2


def test_a_target_update_is_timed_as_a_phase_of_its_own():
    """SAC's iteration ends in its target critics' Polyak update: a fourth phase, whose
    samples line up with the others' and which the step contains."""
    options = TimingOptions(warmup_iters=1, warmup_s=0, min_samples=6, budget_s=0.2)
    timing = time_step(build_step(StepSpec("sac", 8, size="tiny")), "cpu", options)
    assert timing.phases == ("forward", "backward", "optimizer", TARGET)
    n = len(timing.device_ms[STEP])
    for phase in (*REQUIRED_PHASES, TARGET):
        assert len(timing.device_ms[phase]) == n and all(t > 0 for t in timing.device_ms[phase])
    # three updates' worth of work in the other phases, one averaging in the target phase
    assert timing.summary(TARGET).median < timing.summary("optimizer").median
