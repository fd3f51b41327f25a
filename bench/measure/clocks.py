"""The clocks a timed block runs under: where each device's time is read, and where the
host synchronizes with it. ``bench/measure/timers.py`` decides what to run and for how long.

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
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from bench.measure.timing_words import CUDA_EVENT, MPS_SYNC, PERF_COUNTER
from multinet.step import JointStep

# The most iterations in one block; a CUDA clock preallocates this many rows of events.
MAX_BLOCK = 64


def _diffs_ms(stamps: list[int]) -> list[float]:
    return [(b - a) / 1e6 for a, b in zip(stamps, stamps[1:])]


def phase_names(step: JointStep) -> tuple[str, ...]:
    """The phases of ``step``, in the order its stages first name them (``target`` only for a
    scenario that has it; none for a replayed CUDA graph)."""
    return tuple(dict.fromkeys(name for name, _ in step.phases()))


def per_phase(names: list[str], durations: list[float]) -> list[float]:
    """Stage durations added up per phase, in ``phase_names`` order (a scenario with two
    updates per iteration has two stages of each phase)."""
    totals = dict.fromkeys(names, 0.0)
    for name, d in zip(names, durations):
        totals[name] += d
    return list(totals.values())


class HostClock:
    """perf_counter_ns at the boundaries; ``sync`` runs before each reading (a no-op on CPU)."""

    name = PERF_COUNTER

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

    name = CUDA_EVENT

    def __init__(self, device: torch.device, step: JointStep):
        self.device = device
        self.names = [name for name, _ in step.phases()]
        with torch.cuda.device(device):
            # a row serves a whole step too (two events), even for a step with no phases
            self.events = [[torch.cuda.Event(enable_timing=True)
                            for _ in range(max(2, len(self.names) + 1))]
                           for _ in range(MAX_BLOCK)]

    def record_phases(self, step: JointStep, n: int) -> list[list[float]]:
        fns = [fn for _, fn in step.phases()]
        now = time.perf_counter_ns
        # the stream the step's kernels go to: an event on another would time other work
        stream = torch.cuda.current_stream(self.device)
        host = []
        for events in self.events[:n]:
            stamps = [now()]
            events[0].record(stream)
            for fn, event in zip(fns, events[1:]):
                fn()
                event.record(stream)
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
        stream = torch.cuda.current_stream(self.device)
        host = []
        for events in self.events[:n]:
            t0 = now()
            events[0].record(stream)
            run()
            events[1].record(stream)
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
        clock.name = MPS_SYNC
        return clock
    return HostClock()
