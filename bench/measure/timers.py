"""Timing a joint training step, phase by phase. Warm-up and synchronization live here, once.

How each device is clocked:

- CPU: ``time.perf_counter_ns`` at the phase boundaries. The work is synchronous, so the
  host clock is the work's clock.
- CUDA: kernels run asynchronously, so a host clock read at a boundary measures only how
  long it took to *launch* the phase. Each boundary therefore also records a
  ``torch.cuda.Event`` on the current stream; the events of a whole block of iterations are
  preallocated and the host synchronizes once, after the block's last event, so no phase
  waits for the GPU. Host timestamps taken at the same boundaries give the CPU dispatch
  time of each phase, reported beside the device time.
- MPS: PyTorch exposes no per-stream timing events for MPS, so the host synchronizes
  (``torch.mps.synchronize``) at every boundary. Those syncs drain the queue between phases,
  which an unsynchronized training loop would not do; the ``step`` pass shows by how much.

Two passes alternate, a block at a time: one with boundaries between ``forward``,
``backward`` and ``optimizer``, and one that runs the whole step with no boundaries
(``phase = step``). The gap between the phases' sum and ``step`` is what the boundaries cost.

Warm-up runs before anything is counted: the first iterations of a configuration pay for
cuDNN autotuning of a new shape, allocator growth and Adam's lazily created state.
Repetition is adaptive: blocks are added until the median of every phase is known to within
``target_rel_ci`` (half its 95% confidence interval, relative to it) or the time budget is
spent, and never fewer than ``min_samples``. The garbage collector is paused while a block
runs (as ``timeit`` does), so a collection triggered by one configuration's garbage is not
charged to another's iteration.

Data-parallel ranks must run the same number of iterations, or their collectives deadlock;
but warm-up and stopping are decided by each rank's own clock and samples. Given ``agree``
(an element-wise maximum over the ranks, taken between blocks, outside anything timed),
every decision is made on the agreed figures: warm-up goes on while any rank wants more,
the block is sized for the slowest rank, and sampling stops once every rank's medians have
converged or the longest-running rank's budget is spent.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from bench.errors import UsageError
from bench.measure.stats import Summary, summarize
from bench.schema import PHASES, STEP, TIMED_PHASES
from multinet.step import JointStep
# Each block of iterations should last about this long: short enough that the two passes
# alternate many times per configuration, long enough that one sync per block is negligible.
BLOCK_TARGET_S = 0.05
MAX_BLOCK = 64

# The element-wise maximum of each value over the ranks of a data-parallel run.
Agree = Callable[[list[float]], list[float]]


def alone(values: list[float]) -> list[float]:
    """A single process agrees with itself."""
    return values


@dataclass(frozen=True)
class TimingOptions:
    warmup_iters: int = 3
    warmup_s: float = 0.1
    min_samples: int = 10
    max_samples: int = 2000
    target_rel_ci: float = 0.02
    budget_s: float = 1.5  # per configuration, warm-up excluded

    def __post_init__(self) -> None:
        for name in ("warmup_iters", "min_samples", "max_samples"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise UsageError(f"{name} must be a non-negative integer, got {value!r}")
        if self.min_samples < 1 or self.max_samples < self.min_samples:
            raise UsageError(f"need 1 <= min_samples <= max_samples, got "
                             f"{self.min_samples} and {self.max_samples}")
        for name in ("warmup_s", "target_rel_ci", "budget_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise UsageError(f"{name} must be a non-negative number, got {value!r}")


@dataclass
class Timing:
    """Raw samples of one configuration, in milliseconds, per phase (``step`` included).

    ``device_ms`` is the time the work took where it ran (CUDA events on CUDA, the host
    clock elsewhere); ``host_ms`` is the host time between the same boundaries, which on
    CUDA is the dispatch time.
    """

    clock: str
    device_ms: dict[str, list[float]] = field(default_factory=lambda: {p: [] for p in TIMED_PHASES})
    host_ms: dict[str, list[float]] = field(default_factory=lambda: {p: [] for p in TIMED_PHASES})
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


def _diffs_ms(stamps: list[int]) -> list[float]:
    return [(b - a) / 1e6 for a, b in zip(stamps, stamps[1:])]


def per_phase(names: list[str], durations: list[float]) -> list[float]:
    """Stage durations added up per phase, in PHASES order (a scenario with two updates per
    iteration has two stages of each phase)."""
    totals = dict.fromkeys(PHASES, 0.0)
    for name, d in zip(names, durations):
        totals[name] += d
    return list(totals.values())


class HostClock:
    """perf_counter_ns at the boundaries; ``sync`` runs before each reading (a no-op on CPU)."""

    name = "perf_counter"

    def __init__(self, sync: Callable[[], None] | None = None):
        self.sync = sync

    def phases(self, step: JointStep, n: int) -> tuple[list[list[float]], list[list[float]]]:
        names = [name for name, _ in step.phases()]
        fns = [fn for _, fn in step.phases()]
        now, sync = time.perf_counter_ns, self.sync
        rows = []
        for _ in range(n):
            if sync:
                sync()
            stamps = [now()]
            for fn in fns:
                fn()
                if sync:
                    sync()
                stamps.append(now())
            rows.append(stamps)
        rows = [per_phase(names, _diffs_ms(stamps)) for stamps in rows]
        return rows, rows

    def steps(self, step: JointStep, n: int) -> tuple[list[float], list[float]]:
        now, sync, run = time.perf_counter_ns, self.sync, step.run
        out = []
        for _ in range(n):
            if sync:
                sync()
            t0 = now()
            run()
            if sync:
                sync()
            out.append((now() - t0) / 1e6)
        return out, out


class CudaEventClock:
    """CUDA events at the boundaries, preallocated per block, one host sync per block.

    ``record_*`` only enqueues work and events (nothing in it may synchronize: the GPU test
    runs it under ``torch.cuda.set_sync_debug_mode("error")``); ``collect_*`` then waits
    once, for the block's last event, and reads the elapsed times.
    """

    name = "cuda_event"

    def __init__(self, device: torch.device, step: JointStep):
        self.names = [name for name, _ in step.phases()]
        with torch.cuda.device(device):
            # a row serves a whole step too (two events), even for a step with no phases
            self.events = [[torch.cuda.Event(enable_timing=True)
                            for _ in range(max(2, len(self.names) + 1))]
                           for _ in range(MAX_BLOCK)]

    def record_phases(self, step: JointStep, n: int) -> list[list[float]]:
        fns = [fn for _, fn in step.phases()]
        now = time.perf_counter_ns
        host = []
        for events in self.events[:n]:
            stamps = [now()]
            events[0].record()
            for fn, event in zip(fns, events[1:]):
                fn()
                event.record()
                stamps.append(now())
            host.append(per_phase(self.names, _diffs_ms(stamps)))
        return host

    def collect_phases(self, n: int) -> list[list[float]]:
        self.events[n - 1][-1].synchronize()  # the block's only host-device sync
        return [per_phase(self.names, [a.elapsed_time(b) for a, b in zip(ev, ev[1:])])
                for ev in self.events[:n]]

    def phases(self, step: JointStep, n: int) -> tuple[list[list[float]], list[list[float]]]:
        host = self.record_phases(step, n)
        return self.collect_phases(n), host

    def record_steps(self, step: JointStep, n: int) -> list[float]:
        now, run = time.perf_counter_ns, step.run
        host = []
        for events in self.events[:n]:
            t0 = now()
            events[0].record()
            run()
            events[1].record()
            host.append((now() - t0) / 1e6)
        return host

    def collect_steps(self, n: int) -> list[float]:
        self.events[n - 1][1].synchronize()
        return [ev[0].elapsed_time(ev[1]) for ev in self.events[:n]]

    def steps(self, step: JointStep, n: int) -> tuple[list[float], list[float]]:
        host = self.record_steps(step, n)
        return self.collect_steps(n), host


def synchronizer(device: torch.device) -> Callable[[], None]:
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    if device.type == "mps":
        return torch.mps.synchronize
    return lambda: None


def make_clock(device: torch.device, step: JointStep):
    if device.type == "cuda":
        return CudaEventClock(device, step)
    if device.type == "mps":
        clock = HostClock(torch.mps.synchronize)
        clock.name = "mps_sync"
        return clock
    return HostClock()


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


def time_step(step: JointStep, device: torch.device | str,
              options: TimingOptions = TimingOptions(), agree: Agree = alone) -> Timing:
    """Warm ``step`` up, then time its phases and its whole step until the medians are
    known well enough (see the module's docstring). A step with no phases (a replayed CUDA
    graph) has only its ``step`` timed. ``agree`` makes the ranks of a data-parallel run
    decide together."""
    device = torch.device(device)
    clock = make_clock(device, step)
    timing = Timing(clock=clock.name)
    timing.warmup_iters, timing.first_iter_s, iter_s = warm_up(step, device, options, agree)
    has_phases = bool(step.phases())
    block = max(1, min(MAX_BLOCK, int(BLOCK_TARGET_S / max(iter_s, 1e-9))))
    gc.collect()
    gc_was_enabled = gc.isenabled()
    start = time.perf_counter()
    try:
        while True:
            n = min(block, options.max_samples - timing.n_samples)
            gc.disable()
            device_rows, host_rows = clock.phases(step, n) if has_phases else ([], [])
            device_steps, host_steps = clock.steps(step, n)
            if gc_was_enabled:
                gc.enable()
            for dev, host in zip(device_rows, host_rows):
                for phase, d, h in zip(PHASES, dev, host):
                    timing.device_ms[phase].append(d)
                    timing.host_ms[phase].append(h)
            timing.device_ms[STEP].extend(device_steps)
            timing.host_ms[STEP].extend(host_steps)

            timing.elapsed_s = time.perf_counter() - start
            if timing.n_samples >= options.max_samples:
                timing.stop_reason = "max_samples"
                break
            if timing.n_samples >= options.min_samples:
                unsettled, elapsed_s = agree([
                    float(not converged(timing, options.target_rel_ci)), timing.elapsed_s])
                if not unsettled:
                    timing.stop_reason = "converged"
                    break
                if elapsed_s >= options.budget_s:
                    timing.stop_reason = "budget"
                    break
    finally:
        if gc_was_enabled:
            gc.enable()
    return timing
