"""Energy per step from NVML's total-energy counter, read at the boundaries of each block.

The configurations of a comparison group are timed together, round-robin, a block of each
per round (``bench/measure/timers.py``), so one reading over the whole group would blend
them. The counter (millijoules since the driver loaded; Volta and newer) is therefore read
just before and just after every block of every step, and each block ends in a host
synchronization: the difference is the energy the device used while that configuration's
block ran, and the moments between blocks (bookkeeping, the others' turns) fall outside.
A configuration's energy per step is the sum of its blocks' differences over the
iterations they ran: both passes of a block, the one with phase boundaries and the
unbroken one (a replayed CUDA graph has only the second).

The counter covers the whole device (another process on it would be counted), and the
driver refreshes it at its own pace, which may be coarser than a block: one block's
difference is then rough, but summed over a configuration's tens of blocks, in rounds
that a different configuration leads, the error spreads over all of them alike.

Where the counter is missing (older GPUs, some virtual ones) but board power is read, the
energy is the mean power times the step's median time, flagged as an estimate: that power
is the mean over the whole group's timing (its warm-up and the other configurations
included), sampled every 100 ms and averaged by the driver over its own window, so it tells
two configurations of a group apart only by their times. Off CUDA, or without NVML, the
columns stay empty. Nothing here raises.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from bench.measure.timers import Timing
from bench.schema import COUNTER, ESTIMATE, PHASES, STEP

ENERGY_COLUMNS = ("energy_j_per_step", "samples_per_j", "energy_source")


class EnergyMeter:
    """NVML's energy counter read around each block of the steps timed together: give it
    to ``time_steps`` as ``block_hook``. ``counting`` is False where the counter cannot be
    read (no NVML, no handle, a GPU without the counter), and the hook does nothing."""

    def __init__(self, nvml: ModuleType | None, handle: Any, steps: int):
        self.nvml, self.handle = nvml, handle
        self.millijoules = [0] * steps
        self._before: dict[int, int] = {}
        # a GPU without the counter raises NVMLError_NotSupported at the first reading
        self.counting = nvml is not None and handle is not None and self._read() is not None

    def _read(self) -> int | None:
        try:
            return int(self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle))
        except Exception:  # any NVMLError: the figures fall back to the estimate
            return None

    def __call__(self, index: int, moment: str) -> None:
        """The block hook: ``moment`` is `before` or `after` the block of step ``index``."""
        if not self.counting:
            return
        mj = self._read()
        if mj is None or (moment == "after" and mj < self._before.get(index, mj)):
            self.counting = False  # lost, or reset (the driver reloaded): no counter figure
        elif moment == "before":
            self._before[index] = mj
        else:
            self.millijoules[index] += mj - self._before.pop(index, mj)

    def joules(self, index: int) -> float | None:
        """Energy counted over the blocks of step ``index``, or None without the counter."""
        return self.millijoules[index] / 1e3 if self.counting else None

    def columns(self, index: int, timing: Timing, batch_size: int,
                power_w: float | None) -> dict[str, float | str]:
        """The energy columns of step ``index`` (empty where nothing was read)."""
        step_ms = timing.summary(STEP).median if timing.device_ms[STEP] else None
        return energy_columns(batch_size, joules=self.joules(index),
                              iterations=iterations(timing), power_w=power_w, step_ms=step_ms)


def iterations(timing: Timing) -> int:
    """Iterations a step ran in its timed blocks: the unbroken pass's, and the pass with
    boundaries' where the step has phases (each of its iterations gives one sample of the
    first phase)."""
    return len(timing.device_ms[STEP]) + len(timing.device_ms[PHASES[0]])


def energy_columns(batch_size: int, *, joules: float | None = None, iterations: int = 0,
                   power_w: float | None = None,
                   step_ms: float | None = None) -> dict[str, float | str]:
    """`energy_j_per_step`, `samples_per_j` and `energy_source` from the counter's
    ``joules`` over ``iterations``; else from mean power times the step's median time; else
    nothing. A counter that did not move (refreshed less often than the whole timing
    lasted) says nothing, and the estimate is taken instead."""
    if joules is not None and joules > 0 and iterations > 0:
        per_step, source = joules / iterations, COUNTER
    elif power_w is not None and power_w > 0 and step_ms is not None and step_ms > 0:
        per_step, source = power_w * step_ms / 1e3, ESTIMATE
    else:
        return {}
    return {"energy_j_per_step": per_step, "samples_per_j": batch_size / per_step,
            "energy_source": source}
