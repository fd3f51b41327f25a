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
time budget is spent (``budget_s`` per step), and never fewer than ``min_samples``, nor,
for steps timed together, ``min_rounds`` rounds. The
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
from bench.measure.turns import take_turn
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
          "min_rounds": (1, 100_000)}


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


def time_steps(steps: Sequence[JointStep], device: torch.device | str,
               options: TimingOptions = TimingOptions(),
               agree: Agree = alone,
               block_hook: Callable[[int, str], None] | None = None) -> list[Timing]:
    """Warm each of ``steps`` up, then time them round-robin, a block of each per round,
    until every median is known well enough (see the module's docstring). A step with no
    phases (a replayed CUDA graph) has only its ``step`` timed. ``agree`` makes the ranks of
    a data-parallel run decide together. ``block_hook(i, "before")`` and ``(i, "after")``
    run around each block of ``steps[i]``, outside its timing, the device synchronized
    after it (``bench/measure/energy.py`` reads an energy counter there)."""
    device = torch.device(device)
    take_turn()  # alone, nothing; side by side, the warm-up waits for this process's turn
    clocks = [make_clock(device, step) for step in steps]
    timings = [Timing(clock=clock.name, phases=phase_names(step))
               for clock, step in zip(clocks, steps)]
    blocks = []
    for step, timing in zip(steps, timings):
        timing.warmup_iters, timing.first_iter_s, iter_s = warm_up(step, device, options, agree)
        blocks.append(max(1, min(MAX_BLOCK, int(BLOCK_TARGET_S / max(iter_s, 1e-9)))))
    threads = busy_threads(device)
    budget_s = options.budget_s * len(steps)
    gc.collect()
    gc_was_enabled = gc.isenabled()
    round_ = 0
    try:
        while True:
            take_turn()  # side by side, a round at a time: see bench/measure/turns.py
            for j in range(len(steps)):
                i = (round_ + j) % len(steps)  # a different step leads each round
                n = min(blocks[i], options.max_samples - timings[i].n_samples)
                if n > 0:
                    if block_hook:
                        block_hook(i, "before")
                    _time_block(steps[i], clocks[i], timings[i], n, round_, threads,
                                gc_was_enabled)
                    if block_hook:
                        block_hook(i, "after")
            round_ += 1
            if all(t.n_samples >= options.max_samples for t in timings):
                _stopped(timings, "max_samples")
                break
            rounds_done = len(steps) == 1 or round_ >= options.min_rounds
            if rounds_done and all(t.n_samples >= options.min_samples for t in timings):
                unsettled, elapsed_s = agree([
                    float(not all(converged(t, options.target_rel_ci) for t in timings)),
                    sum(t.elapsed_s for t in timings)])
                if not unsettled:
                    _stopped(timings, "converged")
                    break
                if elapsed_s >= budget_s:
                    _stopped(timings, "budget")
                    break
    finally:
        if gc_was_enabled:
            gc.enable()
    return timings


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
