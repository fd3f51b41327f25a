"""What a failed configuration is recorded as, and what it means for the rest of the sweep.

A configuration that raises is not the end of a sweep: out of memory becomes ``oom``, any
other exception ``error``, each with a one-line reason. Out of memory also says something
about the configurations still to come: a larger batch of the same scenario, size, device,
setup, optimizer and implementation needs more memory still, so it is recorded as
``skipped`` instead of being attempted.
"""

from __future__ import annotations

import dataclasses
import gc
import re
from collections.abc import Callable, Sequence

import torch

from bench.axes import config_id
from bench.measure.configuration import (NvmlHandles, TimedGroup, measure_alone, new_result,
                                         now, time_together)
from bench.measure.devices import device_name
from bench.measure.result import ConfigResult
from bench.measure.timers import Stopping, TimingOptions
from bench.measure.timing_words import SIGNAL
from bench.schema import ERROR, NONFINITE, OK, OOM, SKIPPED
from multinet.step import StepSpec

# Statuses that make a sweep's exit code 1 (and stop it under --fail-fast): the harness
# could not measure what it was asked to. Out of memory, and the larger batches it skips,
# are what a sweep towards the memory limit expects, so they leave the exit code at 0.
FAILURES = (ERROR, NONFINITE)
MAX_REASON = 300  # characters kept of an exception's message

# Allocation failures that do not arrive as torch.OutOfMemoryError: the CPU allocator's
# "DefaultCPUAllocator: can't allocate memory", MPS's "MPS backend out of memory", a CUDA
# runtime "out of memory" raised outside the caching allocator, cuBLAS/cuDNN failing to
# allocate their workspace, and C++'s own `new` failing inside torch ("std::bad_alloc",
# under an address-space limit, say).
_OOM_MESSAGE = re.compile(r"out of memory|can't allocate memory|_ALLOC_FAILED|bad_alloc",
                          re.IGNORECASE)


def is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return True
    return isinstance(exc, RuntimeError) and bool(_OOM_MESSAGE.search(str(exc)))


def one_line(exc: BaseException) -> str:
    """The exception's type and the first line of its message, shortened."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return text if len(text) <= MAX_REASON else text[:MAX_REASON - 3] + "..."


def classify(exc: BaseException) -> tuple[str, str]:
    """The status and the reason to record for a configuration that raised ``exc``."""
    return (OOM if is_out_of_memory(exc) else ERROR), one_line(exc)


def spec_group(spec: StepSpec) -> StepSpec:
    """The key of the configurations that differ from ``spec`` only in batch size, whose
    memory grows with it: the spec itself with its batch size set aside."""
    return dataclasses.replace(spec, batch_size=1)


class OomLimits:
    """The smallest batch size that ran out of memory, per group of configurations."""

    def __init__(self) -> None:
        self.smallest: dict[StepSpec, int] = {}

    def record(self, spec: StepSpec) -> None:
        """``spec`` ran out of memory."""
        key = spec_group(spec)
        self.smallest[key] = min(spec.batch_size, self.smallest.get(key, spec.batch_size))

    def skip_reason(self, spec: StepSpec) -> str | None:
        """Why ``spec`` is not attempted, or None when it should be."""
        limit = self.smallest.get(spec_group(spec))
        if limit is None or spec.batch_size <= limit:
            return None
        return f"batch size {limit} of the same configuration ran out of memory"


class GroupAttempt:
    """One comparison group's attempt, visit by visit, whatever happens to it: what a
    smaller batch's out-of-memory rules out is ``skipped`` at once; the rest are timed
    together (``TimedGroup``), a round per ``visit``; where that fails (their memory
    together is more than one needs, say), each is timed alone in ``finish``, so that one
    configuration's failure is its own. ``finish`` then counts each measured one's memory
    and work alone and returns every result, in the order of ``specs``: measured,
    ``nonfinite``, ``skipped``, ``oom`` or ``error``. Only an interruption (a BaseException)
    propagates."""

    def __init__(self, specs: Sequence[StepSpec], options: TimingOptions, *, repeat: int = 1,
                 nvml: NvmlHandles | None = None, oom: OomLimits | None = None,
                 stopping: Stopping | None = None):
        self.options, self.nvml, self.oom, self.stopping = options, nvml, oom, stopping
        self.results, self.timed = [], []
        for spec in specs:
            reason = oom.skip_reason(spec) if oom else None
            if reason is not None:
                self.results.append(_unmeasured(spec, repeat, now(), SKIPPED, reason))
            else:
                self.results.append(new_result(spec, repeat))
                self.timed.append(self.results[-1])
        self.group: TimedGroup | None = None
        self.alone = False  # each timed alone in finish: the group failed, or is one
        if len(self.timed) < 2:
            self.alone = True
            if len(self.timed) == 1:
                self._start_single()
        else:
            self._start(lambda: TimedGroup(self.timed, options, nvml=nvml, stopping=stopping))

    def _start(self, make: Callable[[], TimedGroup]) -> None:
        try:
            self.group = make()
            return
        except Exception:  # nothing of the attempt was kept: each is timed alone
            pass
        self._fall_back()  # out of the except clause, whose traceback held the steps

    def _start_single(self) -> None:
        result = self.timed[0]
        try:
            self.group = TimedGroup([result], self.options, nvml=self.nvml,
                                    stopping=self.stopping)
            return
        except Exception as exc:
            status, reason = classify(exc)
        # out of the except clause: its traceback no longer holds the step's tensors
        _failed(result, status, reason, self.oom)

    @property
    def rounds(self) -> int:
        return self.group.robin.rounds if self.group is not None else 0

    def visit(self, rewarm: bool = False) -> bool:
        """A round of the group, where it is still timed; whether it is done."""
        if self.group is None:
            return True
        try:
            return self.group.visit(rewarm)
        except Exception as exc:
            status, reason = classify(exc)
        # out of the except clause: its traceback no longer holds the steps' tensors
        self.group.abandon()
        self.group = None
        if len(self.timed) == 1:
            _failed(self.timed[0], status, reason, self.oom)
        else:
            self._fall_back()
        return True

    def hurry(self) -> None:
        """Stop at the end of this round where the group has its fewest rounds: the sweep
        was asked to stop."""
        if self.group is not None and self.group.robin.rounds >= self.options.min_rounds:
            self.group.robin.stop(SIGNAL)

    def _fall_back(self) -> None:
        self.group = None
        self.alone = True
        release_memory(torch.device(self.timed[0].spec.device))

    def finish(self) -> list[ConfigResult]:
        """Every result, measured or why not (see the class's docstring)."""
        if self.group is not None:
            self.group.finish()
            self.group = None
            if len(self.timed) > 1:  # the group as it was timed: its first is the reference
                for result in self.timed:
                    result.group = config_id(self.timed[0].spec)
        elif self.alone and len(self.timed) > 1:
            for result in self.timed:
                # groups timed in turn start together: a smaller batch may have run out of
                # memory since this one started, and then this one is not attempted alone
                reason = self.oom.skip_reason(result.spec) if self.oom else None
                if reason is not None:
                    _unmeasured_as(result, SKIPPED, reason)
                    continue
                _attempt(result, lambda r=result: time_together(
                    [r], self.options, nvml=self.nvml, stopping=self.stopping), self.oom)
        for result in self.timed:
            if result.status == OK:
                _attempt(result, lambda r=result: measure_alone(r, self.options.attribution_s),
                         self.oom)
        return self.results


def attempt_group(specs: Sequence[StepSpec], options: TimingOptions, *, repeat: int = 1,
                  nvml: NvmlHandles | None = None, oom: OomLimits | None = None,
                  stopping: Stopping | None = None) -> list[ConfigResult]:
    """A comparison group measured in one go (``GroupAttempt``, visited until done)."""
    attempt = GroupAttempt(specs, options, repeat=repeat, nvml=nvml, oom=oom,
                           stopping=stopping)
    while not attempt.visit():
        pass
    return attempt.finish()


def _attempt(result: ConfigResult, work: Callable[[], None],
             oom: OomLimits | None) -> ConfigResult:
    """``result`` after ``work``, or recorded as failed with the reason."""
    try:
        work()
        return result
    except Exception as exc:  # any failure of one configuration is recorded, not fatal
        status, reason = classify(exc)
    # Leaving the except clause dropped the exception and, with its traceback, the frames
    # that held the step's tensors; only now can their memory be given back.
    return _failed(result, status, reason, oom)


def _failed(result: ConfigResult, status: str, reason: str,
            oom: OomLimits | None) -> ConfigResult:
    release_memory(torch.device(result.spec.device))
    if status == OOM and oom is not None:
        oom.record(result.spec)
    return _unmeasured_as(result, status, reason)


def _unmeasured_as(result: ConfigResult, status: str, reason: str) -> ConfigResult:
    """``result`` recorded as not measured, with ``status`` and why."""
    result.status, result.error, result.timing = status, reason, None
    result.config_columns, result.phase_columns = {}, {}
    return result


def release_memory(device: torch.device) -> None:
    gc.collect()  # tensors held in reference cycles
    if device.type == "cuda":
        try:
            torch.cuda.synchronize(device)
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        except RuntimeError:
            pass  # a sticky CUDA error (an illegal access): each later configuration records it


def _unmeasured(spec: StepSpec, repeat: int, started: str, status: str,
                reason: str) -> ConfigResult:
    return ConfigResult(spec, device_name(spec.device), repeat, started, status=status,
                        error=reason, threads=torch.get_num_threads())
