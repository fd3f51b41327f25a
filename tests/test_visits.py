"""Comparison groups visited a round at a time, in turn, each until its question is decided,
on a budget the run shares: the budget's arithmetic, the question asked at the looks only,
and the order of visits in a real sweep."""

import math

import numpy as np
import pytest

from bench.analyze.sequential import UNDECIDED, in_run_plan, judge_rounds
from bench.measure.configuration import NvmlHandles
from bench.measure.timers import Timing, TimingOptions
from bench.sweep import visits
from bench.sweep.failures import GroupAttempt, OomLimits
from bench.sweep.visits import (MAX_SHARE, RESERVE, SharedBudget, measure_in_turn,
                                ratio_question, step_log_ratios)
from multinet import StepSpec


def test_a_group_may_go_past_its_share_only_with_what_others_left():
    budget = SharedBudget([1.0, 1.0, 1.0])
    assert budget.total == pytest.approx(3 * (1 + RESERVE))
    first, second = budget.may_go_on(0), budget.may_go_on(1)
    assert first(0.9)  # within its own share
    # at its share, with the others owed theirs: 3.75 - (1.0 + 1.0 + 1.0) = 0.75 is free
    assert second(1.0) and budget.free() == pytest.approx(0.75)
    # group 0 finishes having spent 0.4: 0.6 of its share comes free too
    first(0.4)
    budget.finish(0)
    assert budget.free() == pytest.approx(3.75 - 0.4 - 1.0 - 1.0)
    assert second(2.0)  # 3.75 - 0.4 - 2.0 - 1.0 = 0.35 > 0
    assert not second(2.4)  # 3.75 - 0.4 - 2.4 - 1.0 < 0
    # never past MAX_SHARE of its own, however much is free
    wide = SharedBudget([1.0, 100.0])
    wide.finish(1)
    assert wide.may_go_on(0)(MAX_SHARE - 0.01) and not wide.may_go_on(0)(MAX_SHARE)


def timing(per_round: list[float], per_block: int = 3) -> Timing:
    """A step's samples, ``per_block`` a round at each of ``per_round``'s values."""
    t = Timing(clock="perf_counter")
    for r, value in enumerate(per_round):
        t.device_ms["step"] += [value * 0.99, value, value * 1.01][:per_block]
        t.block["step"] += [r] * per_block
    return t


def test_the_step_log_ratios_pair_each_round_with_the_reference_s():
    machine = [1.0, 3.0, 1.5, 2.0]  # the machine's speed moves both alike
    reference = timing([10 * m for m in machine])
    member = timing([8 * m for m in machine])
    assert step_log_ratios([reference, member]) == pytest.approx(
        np.full((1, 4), math.log(0.8)))


def test_the_question_is_asked_at_the_planned_looks_only():
    answered = ratio_question(min_rounds=10)
    rng = np.random.default_rng(1)
    reference = [10.0 * (1 + 0.001 * x) for x in rng.normal(size=13)]
    faster = timing([0.8 * r for r in reference])
    same = timing(reference)
    # a clear 20% at the first look (ten rounds): decided; eleven rounds: no look
    assert answered([timing(reference[:10]), timing([0.8 * r for r in reference[:10]])], 10)
    assert not answered([timing(reference[:11]), timing([0.8 * r for r in reference[:11]])],
                        11)
    # thirteen rounds are the second look: a member identical to the reference is the same
    assert answered([timing(reference), same, faster], 13)
    assert in_run_plan(10).look_at(13) == 2


def test_groups_are_visited_a_round_each_in_turn(monkeypatch):
    order = []
    visit = GroupAttempt.visit

    def recording(self, rewarm=False):
        order.append((self.results[0].spec.batch_size, rewarm))
        return visit(self, rewarm)

    monkeypatch.setattr(GroupAttempt, "visit", recording)
    specs = [StepSpec("sequential", b) for b in (1, 2, 3)]
    # no target reached (target_rel_ci 0): each group takes its three rounds
    options = TimingOptions(warmup_iters=1, warmup_s=0, min_samples=1, min_rounds=2,
                            max_rounds=3, target_rel_ci=0, budget_s=10, interleave=2)
    todo = [(1, (spec,)) for spec in specs]
    done = list(measure_in_turn(todo, options, NvmlHandles(None), OomLimits(), lambda: False))
    assert [r.spec.batch_size for (r,) in done] == [1, 2, 3]
    # two at once, a round each in turn; the third starts when the first is done. Each
    # visit after another group's round warms its step up again (rewarm)
    assert order[:6] == [(1, True), (2, True), (1, True), (2, True), (1, True), (2, True)]
    assert [b for b, _ in order[6:]] == [3, 3, 3] and order[-1] == (3, False)
    assert all(r.timing.stop_reason == "max_rounds" for (r,) in done)


def test_a_stop_request_starts_nothing_and_hurries_what_runs():
    specs = [StepSpec("sequential", b) for b in (1, 2)]
    # no target reached (target_rel_ci 0): only the stop request can end its rounds
    options = TimingOptions(warmup_iters=1, warmup_s=0, min_samples=1, min_rounds=2,
                            target_rel_ci=0, budget_s=60, interleave=1)
    asked = iter([False, False, True, True, True, True, True, True])
    done = list(measure_in_turn([(1, (s,)) for s in specs], options, NvmlHandles(None),
                                OomLimits(), lambda: next(asked, True)))
    (result,), = done
    assert result.spec.batch_size == 1 and result.timing.stop_reason == "signal"
    assert len(set(result.timing.block["step"])) == 2  # its fewest rounds, no more


def test_the_width_is_the_sweep_s_else_eight_on_the_cpu():
    assert visits.width(TimingOptions(interleave=3), "cpu") == 3
    assert visits.width(TimingOptions(), "cpu") == visits.CPU_INTERLEAVE == 8
    assert visits.width(TimingOptions(), "cuda:0") == 1


def test_a_worker_decides_as_the_run_s_pooled_rounds_will():
    # 3% faster, the rounds within +-2%: six rounds of one process leave it undecided; six
    # from each of two workers (twelve, the run's verdict pools them) decide it
    reference = timing([10.0] * 6)
    member = timing([9.7 * (1 + 0.02 * x) for x in (1, -1, 0.5, -0.5, 1, -1)])
    assert not ratio_question(min_rounds=6)([reference, member], 6)
    assert ratio_question(min_rounds=6, processes=2)([reference, member], 6)
    # the same as twelve rounds judged at once: the six twice over, at the first look
    twice = np.tile(step_log_ratios([reference, member]), (1, 2))
    (judged,) = judge_rounds(twice, in_run_plan(6), 1, 0.05)
    assert judged.verdict != UNDECIDED and judged.high < 1
