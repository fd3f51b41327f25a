"""Timing joint training steps, phase by phase: warm-up, blocks, rounds and when to stop.
Warm-up and synchronization live here and in ``bench/measure/clocks.py``, once.

Two passes alternate, a block at a time: one with boundaries between ``forward``,
``backward`` and ``optimizer``, and one that runs the whole step with no boundaries
(``phase = step``). The gap between the phases' sum and ``step`` is what the boundaries cost.

Steps that are compared with each other (the optimizer setups of one configuration, say) are
timed together, round-robin: each round runs one block of each, a different one leading each
round, in one process. Whatever the machine does over the minutes of a sweep (its speed
drifts, another process takes a core) then lands on all of them alike, and the ratio of two
of them can be taken block by block, within a round (``bench/analyze/ratios.py``). A step
timed alone is a round-robin of one.

Warm-up runs before anything is counted: the first iterations of a configuration pay for
cuDNN autotuning of a new shape, allocator growth and Adam's lazily created state.
Repetition is adaptive: rounds are added until the median of every phase of every step is
known to within ``target_rel_ci`` (half its 95% confidence interval, relative to it) or the
time budget is spent (``budget_s`` per step), and never fewer than ``min_samples``, nor
``min_rounds`` rounds. Steps timed together stop instead when the question a sweep asks of
them is decided (``Stopping``, ``bench/sweep/visits.py``). The
garbage collector is paused while a block runs (as ``timeit`` does), so a collection
triggered by one configuration's garbage is not charged to another's iteration.

A busy machine is seen per block: the process's CPU time over the block's wall time, per
thread it should keep busy. A block whose share falls well under the step's typical block
was disturbed (another process took the CPU); the rows count such blocks.

Data-parallel ranks must run the same number of iterations, or their collectives deadlock;
but warm-up and stopping are decided by each rank's own clock and samples. Given ``agree``
(an element-wise maximum over the ranks, taken between rounds, outside anything timed),
every decision is made on the agreed figures: warm-up goes on while any rank wants more,
the block is sized for the slowest rank, and sampling stops once every rank's medians have
converged or the longest-running rank's budget is spent.
"""

from __future__ import annotations

import dataclasses
import gc
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from bench.errors import UsageError
from bench.measure.clocks import MAX_BLOCK, make_clock, phase_names, synchronizer
from bench.measure.stats import Summary, summarize
from bench.measure.timing_words import BUDGET, CONVERGED, DECIDED, MAX_ROUNDS, MAX_SAMPLES
from bench.schema import PHASES, STEP, TIMED_PHASES
from multinet.step import JointStep

# Each block of iterations should last about this long: short enough that the passes and the
# steps of a round alternate many times per configuration, long enough that one sync per
# block is negligible.
BLOCK_TARGET_S = 0.05
# A block in which the process ran less than this share of what it runs in its step's
# typical block was disturbed: on a machine to itself the share barely moves between blocks.
DISTURBED_SHARE = 0.75

# The element-wise maximum of each value over the ranks of a data-parallel run.
Agree = Callable[[list[float]], list[float]]


def alone(values: list[float]) -> list[float]:
    """A single process agrees with itself."""
    return values


# What each timing option may be: finite, and within what one configuration can use (an
# hour of warm-up or of sampling is already more than a sweep wants).
BOUNDS = {"warmup_iters": (0, 100_000), "warmup_s": (0, 3600), "min_samples": (1, 10_000_000),
          "max_samples": (1, 10_000_000), "target_rel_ci": (0, 10), "budget_s": (0, 3600),
          "min_rounds": (1, 100_000), "max_rounds": (0, 100_000), "interleave": (0, 1000),
          "attribution_s": (0, 3600)}


@dataclass(frozen=True)
class TimingOptions:
    warmup_iters: int = 3
    warmup_s: float = 0.1
    min_samples: int = 10
    max_samples: int = 2000
    target_rel_ci: float = 0.02
    budget_s: float = 1.5  # per step timed, warm-up excluded
    # rounds at least, where steps are timed together: their ratios' intervals come from the
    # rounds' blocks, and below six no order-statistic interval of a median reaches 95%
    min_rounds: int = 10
    # rounds at most (0: no limit): environments compared in paired rounds all run as many,
    # so that their turns keep timing the same configuration side by side
    max_rounds: int = 0
    # comparison groups timed at once, a round of each in turn (0: 8 on the CPU, one on an
    # accelerator); see bench/sweep/visits.py
    interleave: int = 0
    # seconds of each configuration's attribution pass, past its fewest rounds (its first
    # pass only: bench/measure/attribution.py); 0: no pass
    attribution_s: float = 1.0

    def __post_init__(self) -> None:
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        for name, (low, high) in BOUNDS.items():
            value = getattr(self, name)
            whole = isinstance(defaults[name], int)
            kind = "an integer" if whole else "a number"
            if isinstance(value, bool) or not isinstance(value, int if whole else (int, float)):
                raise UsageError(f"{name} must be {kind}, got {value!r}")
            # nan compares false with everything, inf is past any bound: both refused here
            if not low <= value <= high:
                raise UsageError(f"{name} must be {kind} from {low} to {high}, got {value!r}")
        if self.max_samples < self.min_samples:
            raise UsageError(f"need min_samples <= max_samples, got {self.min_samples} and "
                             f"{self.max_samples}")
        if self.max_rounds and self.max_rounds < self.min_rounds:
            raise UsageError(f"need min_rounds <= max_rounds, got {self.min_rounds} and "
                             f"{self.max_rounds}")


@dataclass
class Timing:
    """Raw samples of one configuration, in milliseconds, per phase (``step`` included).

    ``device_ms`` is the time the work took where it ran (CUDA events on CUDA, the host
    clock elsewhere); ``host_ms`` is the host time between the same boundaries, which on
    CUDA is the dispatch time.
    """

    clock: str
    # the phases the step has, in the order a clock's rows give them (see clocks.phase_names)
    phases: tuple[str, ...] = PHASES
    device_ms: dict[str, list[float]] = field(default_factory=lambda: {p: [] for p in TIMED_PHASES})
    host_ms: dict[str, list[float]] = field(default_factory=lambda: {p: [] for p in TIMED_PHASES})
    # the round each sample was taken in: samples of two steps timed together pair by it
    block: dict[str, list[int]] = field(default_factory=lambda: {p: [] for p in TIMED_PHASES})
    # per block: the process's CPU time over its wall time and the threads it should keep busy
    cpu_share: list[float] = field(default_factory=list)
    warmup_iters: int = 0
    # the first warm-up iteration alone, synchronized: where torch.compile compiles
    first_iter_s: float = 0.0
    stop_reason: str = ""
    elapsed_s: float = 0.0

    def summary(self, phase: str) -> Summary:
        return summarize(self.device_ms[phase])

    def host_summary(self, phase: str) -> Summary:
        return summarize(self.host_ms[phase])

    @property
    def n_samples(self) -> int:
        return len(self.device_ms[STEP])

    @property
    def disturbed_blocks(self) -> int:
        """Blocks whose CPU share fell under DISTURBED_SHARE of the typical block's."""
        if not self.cpu_share:
            return 0
        typical = statistics.median(self.cpu_share)
        return sum(share < DISTURBED_SHARE * typical for share in self.cpu_share)

    def add_block(self, round_: int, phases: tuple[list[list[float]], list[list[float]]],
                  steps: tuple[list[float], list[float]], cpu_share: float) -> None:
        for device, host in zip(*phases):
            for phase, d, h in zip(self.phases, device, host):
                self.device_ms[phase].append(d)
                self.host_ms[phase].append(h)
                self.block[phase].append(round_)
        self.device_ms[STEP].extend(steps[0])
        self.host_ms[STEP].extend(steps[1])
        self.block[STEP].extend([round_] * len(steps[0]))
        self.cpu_share.append(cpu_share)


def warm_up(step: JointStep, device: torch.device, options: TimingOptions,
            agree: Agree = alone) -> tuple[int, float, float]:
    """Run untimed iterations. Returns their count, the first one's seconds (synchronized:
    a compiled step compiles there) and a last synchronized iteration's seconds (the
    slowest rank's), from which the block size is chosen."""
    sync = synchronizer(device)
    sync()
    t0 = time.perf_counter()
    step.run()
    sync()
    first = time.perf_counter() - t0
    start, iters = time.perf_counter(), 1
    while agree([float(iters < options.warmup_iters
                       or time.perf_counter() - start < options.warmup_s)])[0]:
        step.run()
        iters += 1
    sync()
    t0 = time.perf_counter()
    step.run()
    sync()
    return iters + 1, first, agree([time.perf_counter() - t0])[0]


def converged(timing: Timing, target: float) -> bool:
    return all(timing.summary(p).rel_ci <= target for p in TIMED_PHASES
               if timing.device_ms[p])


def busy_threads(device: torch.device) -> int:
    """Threads a block keeps busy: torch's on the CPU; elsewhere the one that launches."""
    return torch.get_num_threads() if device.type == "cpu" else 1


@dataclass
class Stopping:
    """What, besides ``max_samples`` and ``max_rounds``, ends the rounds of steps timed
    together. ``answered(timings, rounds)``: whether the question the run asks of them is
    decided (a sweep passes its comparison's sequential verdict; None: every phase's median
    known within ``target_rel_ci``). ``may_go_on(seconds)``: whether the sampling seconds
    spent so far leave budget (None: ``budget_s`` per step). ``turn``: called at the start
    of every round, outside anything timed; a process taking turns with others hands the
    turn on there and waits for it to come back (the sweep passes ``bench/sweep/turns.py``'s
    ``take_turn``); alone, nothing."""

    answered: Callable[[Sequence[Timing], int], bool] | None = None
    may_go_on: Callable[[float], bool] | None = None
    turn: Callable[[], None] = lambda: None


class RoundRobin:
    """Steps warmed up, then timed round-robin, a round at a time (``visit``): one block of
    each per round, a different one leading each round. Visits of several RoundRobins may
    alternate (a sweep interleaves its comparison groups); ``done`` once they stop."""

    def __init__(self, steps: Sequence[JointStep], device: torch.device | str,
                 options: TimingOptions = TimingOptions(), agree: Agree = alone,
                 block_hook: Callable[[int, str], None] | None = None,
                 stopping: Stopping | None = None):
        self.steps, self.device = list(steps), torch.device(device)
        self.options, self.agree, self.block_hook = options, agree, block_hook
        self.stopping = stopping or Stopping()
        self.stopping.turn()  # alone, nothing; side by side, warm-up waits for this turn
        self.clocks = [make_clock(self.device, step) for step in self.steps]
        self.timings = [Timing(clock=clock.name, phases=phase_names(step))
                        for clock, step in zip(self.clocks, self.steps)]
        self.blocks = []
        for step, timing in zip(self.steps, self.timings):
            timing.warmup_iters, timing.first_iter_s, iter_s = warm_up(step, self.device,
                                                                       options, agree)
            self.blocks.append(max(1, min(MAX_BLOCK, int(BLOCK_TARGET_S / max(iter_s, 1e-9)))))
        self.threads = busy_threads(self.device)
        self.rounds = 0
        self.done = False
        gc.collect()

    def visit(self, rewarm: bool = False) -> bool:
        """One round (after one untimed iteration of each step where ``rewarm``: other
        work ran since the last round, and left the caches cold); whether they are done."""
        if self.done:
            return True
        gc_was_enabled = gc.isenabled()
        try:
            self.stopping.turn()  # side by side, a round at a time
            if rewarm:
                self._rewarm()
            for j in range(len(self.steps)):
                i = (self.rounds + j) % len(self.steps)  # a different step leads each round
                n = min(self.blocks[i], self.options.max_samples - self.timings[i].n_samples)
                if n > 0:
                    if self.block_hook:
                        self.block_hook(i, "before")
                    _time_block(self.steps[i], self.clocks[i], self.timings[i], n,
                                self.rounds, self.threads, gc_was_enabled)
                    if self.block_hook:
                        self.block_hook(i, "after")
        finally:
            if gc_was_enabled:
                gc.enable()
        self.rounds += 1
        reason = self.stop_reason()
        if reason:
            self.stop(reason)
        return self.done

    def _rewarm(self) -> None:
        sync = synchronizer(self.device)
        for step in self.steps:
            step.run()
        sync()

    def stop(self, reason: str) -> None:
        """End the rounds now, for ``reason`` (recorded in each timing)."""
        self.done = True
        _stopped(self.timings, reason)

    def stop_reason(self) -> str | None:
        """Why the rounds end after this one, or None while they go on."""
        timings, options = self.timings, self.options
        if all(t.n_samples >= options.max_samples for t in timings):
            return MAX_SAMPLES
        if options.max_rounds and self.rounds >= options.max_rounds:
            return MAX_ROUNDS
        # a step timed alone takes its rounds too: spread over a sweep's visits, they are
        # what averages the machine's levels out of its median
        rounds_done = self.rounds >= options.min_rounds
        if not (rounds_done and all(t.n_samples >= options.min_samples for t in timings)):
            return None
        answered = self.stopping.answered
        settled = (answered(timings, self.rounds) if answered
                   else all(converged(t, options.target_rel_ci) for t in timings))
        elapsed_s = sum(t.elapsed_s for t in timings)
        unsettled, elapsed_s = self.agree([float(not settled), elapsed_s])
        if not unsettled:
            return DECIDED if answered else CONVERGED
        may_go_on = self.stopping.may_go_on
        if not (may_go_on(elapsed_s) if may_go_on
                else elapsed_s < options.budget_s * len(self.steps)):
            return BUDGET
        return None


def time_steps(steps: Sequence[JointStep], device: torch.device | str,
               options: TimingOptions = TimingOptions(),
               agree: Agree = alone,
               block_hook: Callable[[int, str], None] | None = None,
               stopping: Stopping | None = None) -> list[Timing]:
    """Warm each of ``steps`` up, then time them round-robin, a block of each per round,
    until ``stopping`` (by default every median known well enough, or the budget spent: see
    the module's docstring). A step with no phases (a replayed CUDA graph) has only its
    ``step`` timed. ``agree`` makes the ranks of a data-parallel run decide together.
    ``block_hook(i, "before")`` and ``(i, "after")`` run around each block of ``steps[i]``,
    outside its timing, the device synchronized after it (``bench/measure/energy.py`` reads
    an energy counter there)."""
    robin = RoundRobin(steps, device, options, agree, block_hook, stopping)
    while not robin.visit():
        pass
    return robin.timings


def _time_block(step: JointStep, clock, timing: Timing, n: int, round_: int, threads: int,
                gc_was_enabled: bool) -> None:
    """One block of ``n`` iterations of each pass, the collector paused."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    gc.disable()
    phases = clock.phases(step, n) if step.phases() else ([], [])
    steps = clock.steps(step, n)
    if gc_was_enabled:
        gc.enable()
    wall = time.perf_counter() - wall0
    timing.elapsed_s += wall
    share = (time.process_time() - cpu0) / (wall * threads) if wall > 0 else 1.0
    # A clock that returned fewer samples than iterations would misalign the device and host
    # samples, and could keep the count short of min_samples, where sampling never stops.
    expected = [n, n, n, n] if step.phases() else [n, n, 0, 0]
    got = [len(steps[0]), len(steps[1]), len(phases[0]), len(phases[1])]
    if got != expected:
        raise RuntimeError(f"{clock.name} returned {got} samples (device and host, step and "
                           f"phases) for a block of {n} iterations")
    timing.add_block(round_, phases, steps, share)


def _stopped(timings: list[Timing], reason: str) -> None:
    for timing in timings:
        timing.stop_reason = reason


def time_step(step: JointStep, device: torch.device | str,
              options: TimingOptions = TimingOptions(), agree: Agree = alone) -> Timing:
    """One step timed alone: a round-robin of one."""
    return time_steps([step], device, options, agree)[0]
