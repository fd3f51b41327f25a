"""Comparison groups measured a round at a time, several in turn, until each one's question
is decided, on one budget for the whole run.

Why in turn: this machine's speed moves between levels that last a few seconds, and a group
measured in one stretch meets one or two of them, whichever were current: two runs of the
same sweep then differed by up to 40% per group, all of a group's members alike, though
nothing changed. Visited a round at a time, each group in turn (``interleave`` at once: 8 on
the CPU), a group's rounds are spread over the whole of their stretch of the run, and its
medians average the levels instead of drawing one. Nothing else changes within a group:
its members still take turns block by block, and their ratios still pair by round.

Why until decided: a run asks which member of each group is faster. A group whose answer
is decided at a planned look (``bench/analyze/sequential.py``) stops there, and the time it
leaves goes to the groups still undecided. The run's budget is ``budget_s`` per
configuration, as before, plus ``RESERVE`` of it; a group is owed its own share, and takes
more, up to ``MAX_SHARE`` times its share, only from what is free: what groups that
finished early left, less what the groups still to finish are owed. A group of one (or a
sweep with ``compare_by = "none"``) asks for its medians to within ``target_rel_ci``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch

from bench.analyze.sequential import UNDECIDED, in_run_plan, judge_rounds
from bench.measure.configuration import NvmlHandles
from bench.measure.result import ConfigResult
from bench.measure.timers import Stopping, Timing, TimingOptions
from bench.schema import STEP
from bench.sweep.failures import GroupAttempt, OomLimits
from bench.sweep.groups import Group

# Groups timed at once where the sweep does not say: on the CPU, enough that each group's
# rounds spread over several of the machine's speed levels; on an accelerator one (its
# memory is for one group's steps, and a GPU's speed does not jump about).
CPU_INTERLEAVE = 8
# What the run may spend besides every configuration's budget_s, and the most a group may
# take of its own share: time that decided groups left goes to those still undecided.
RESERVE, MAX_SHARE = 0.25, 4.0
THRESHOLD = 0.05  # the in-run verdict's: within 5% of the reference is the same


def width(options: TimingOptions, device: str) -> int:
    """How many groups are timed at once."""
    if options.interleave:
        return options.interleave
    return CPU_INTERLEAVE if torch.device(device).type == "cpu" else 1


def round_medians(timing: Timing) -> dict[int, float]:
    """The median of each round's block of the unbroken step."""
    rounds = np.asarray(timing.block[STEP])
    values = np.asarray(timing.device_ms[STEP])
    return {int(r): float(np.median(values[rounds == r])) for r in np.unique(rounds)}


def step_log_ratios(timings: Sequence[Timing]) -> np.ndarray:
    """Members (but the reference) x rounds: the log-ratio of each round's step median to
    the reference's in the same round; NaN where a round lacks one of the two."""
    reference = round_medians(timings[0])
    rounds = sorted(reference)
    rows = []
    for timing in timings[1:]:
        mine = round_medians(timing)
        rows.append([np.log(mine[r] / reference[r]) if r in mine else np.nan for r in rounds])
    return np.asarray(rows, dtype=float)


def ratio_question(min_rounds: int, threshold: float = THRESHOLD, processes: int = 1
                   ) -> Callable[[Sequence[Timing], int], bool]:
    """Whether every member's step, against the group's reference, is decided (faster,
    slower or the same) at the planned look ``rounds`` completes; False between looks.

    ``processes``: the workers whose rounds the run's verdict pools (``bench/sweep/
    workers.py``). Each decides on its own rounds as the verdict will see them, every
    worker bringing about as many: its rounds counted ``processes`` times. Deciding alone
    would take each worker the rounds the whole run needs, and a run of two workers twice
    the time of one. The verdict itself is judged on the rounds every worker took, at the
    level of the look they reached (``bench/analyze/ratios.py``): where the workers
    disagree it stays undecided, and its error rate is the plan's whatever stopped it."""
    plan = in_run_plan(min_rounds)

    def answered(timings: Sequence[Timing], rounds: int) -> bool:
        look = plan.look_at(rounds)
        if look is None:
            return False
        pooled = np.tile(step_log_ratios(timings), (1, processes))
        judged = judge_rounds(pooled, plan, look, threshold)
        return all(j.verdict != UNDECIDED for j in judged)

    return answered


class SharedBudget:
    """The run's sampling seconds, shared by its groups (see the module's docstring)."""

    def __init__(self, shares: Sequence[float]):
        self.owed = list(shares)
        self.spent = [0.0] * len(shares)
        self.finished = [False] * len(shares)
        self.total = (1 + RESERVE) * sum(shares)

    def free(self) -> float:
        claimed = sum(spent if done else max(spent, owed) for spent, owed, done in
                      zip(self.spent, self.owed, self.finished))
        return self.total - claimed

    def may_go_on(self, index: int) -> Callable[[float], bool]:
        def check(spent_s: float) -> bool:
            self.spent[index] = spent_s
            own = self.owed[index]
            return spent_s < own or (spent_s < MAX_SHARE * own and self.free() > 0)
        return check

    def finish(self, index: int) -> None:
        self.finished[index] = True


def measure_in_turn(todo: Sequence[tuple[int, Group]], options: TimingOptions,
                    nvml: NvmlHandles, oom: OomLimits,
                    stop_requested: Callable[[], bool],
                    turn: Callable[[], None] = lambda: None,
                    processes: int = 1) -> Iterator[list[ConfigResult]]:
    """The results of each group of ``todo`` ((repeat, group) in order), as each finishes:
    up to ``width`` groups timed at once, a round of each in turn, new ones started in
    order as others finish. Once ``stop_requested``, no group starts, and those timed stop
    as soon as they have their fewest rounds. ``turn``: called before every round, where a
    process takes turns with others (``bench/sweep/turns.py``). ``processes``: the workers
    measuring the run, whose rounds its verdicts pool (``ratio_question``)."""
    budget = SharedBudget([options.budget_s * len(group) for _, group in todo])
    question = ratio_question(options.min_rounds, processes=processes)
    pending = deque(enumerate(todo))
    at_once = width(options, todo[0][1][0].device) if todo else 1
    active: list[tuple[int, GroupAttempt]] = []
    while pending or active:
        while pending and len(active) < at_once and not stop_requested():
            index, (repeat, group) = pending.popleft()
            stopping = Stopping(answered=question if len(group) > 1 else None,
                                may_go_on=budget.may_go_on(index), turn=turn)
            active.append((index, GroupAttempt(group, options, repeat=repeat, nvml=nvml,
                                               oom=oom, stopping=stopping)))
        if not active:
            return
        others = len(active) > 1  # each visit then follows another group's round
        for entry in list(active):
            index, attempt = entry
            if stop_requested():
                attempt.hurry()
            if attempt.visit(rewarm=others):
                active.remove(entry)
                budget.finish(index)
                yield attempt.finish()
