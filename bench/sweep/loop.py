"""The one sweep loop: for each configuration, measure it, append its rows to disk at once,
advance the progress bar; stop cleanly on a signal, a failed write or ``--fail-fast``.

A single process and the ranks of a data-parallel run go through the same loop. What
differs is behind ``Ranks``: how the processes agree (a single process agrees with itself),
how a configuration is measured (alone, a failure is recorded as a row; under torchrun the
ranks measure together and rank 0 merges them, ``bench/sweep/data_parallel.py``) and which
process writes.

Configurations are measured a comparison group at a time (``bench/sweep/groups.py``): the
configurations that differ only in the sweep's ``compare_by`` axis are timed together,
round-robin. The groups of every repeat run in a fresh random order, so slow drift of a
shared machine spreads over all of them instead of biasing whichever ran last. SIGINT and SIGTERM
stop the loop cleanly (``bench/sweep/interrupt.py``); ``resume_sweep`` continues it later in
the same folder.
"""

from __future__ import annotations

import random
import secrets
import socket
import sys
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TextIO

import torch

from bench.analyze.reader import Run, load_run
from bench.axes import config_id
from bench.errors import RunFolderWriteError
from bench.measure.configuration import NvmlHandles
from bench.measure.result import ConfigResult
from bench.measure.timers import TimingOptions
from bench.measure.turns import shared_seed, take_turn
from bench.schema import OK, STEP
from bench.sweep.config import SweepConfig
from bench.sweep.failures import FAILURES, OomLimits, attempt_group
from bench.sweep.folder import OpenRun, create_run, record_environment, reopen_run
from bench.sweep.groups import Group, run_order
from bench.sweep.interrupt import Interrupted, StopOnSignal
from bench.sweep.progress import Progress
from bench.sweep.writer import ResultsWriter


@dataclass
class RunOutcome:
    run_id: str
    out_dir: Path
    results: list[ConfigResult] = field(default_factory=list)  # measured by this call
    pending: int = 0  # configurations (per repeat) left unmeasured
    signum: int | None = None  # the signal that stopped the sweep
    failed_fast: ConfigResult | None = None  # the failure that stopped it (--fail-fast)
    write_error: str | None = None  # why the run folder could not be written, which stopped it

    @property
    def complete(self) -> bool:
        return self.pending == 0

    def read(self) -> Run:
        """The run as it is on disk, resumed configurations included, through the reader
        every consumer uses: the summary of a resumed run is that of the same rows measured
        in one go."""
        return load_run(self.out_dir, allow_empty=True)


class Ranks(Protocol):
    """What differs between one process and the ranks of a data-parallel run."""

    writes: bool  # this process writes the run folder and shows progress

    def agree(self, values: list[float]) -> list[float]:
        """The element-wise maximum of ``values`` over the processes."""

    def measure(self, group: Group, repeat: int, options: TimingOptions,
                nvml: NvmlHandles) -> list[ConfigResult] | None:
        """The results of a comparison group's configurations, for the process that writes
        (None elsewhere)."""

    def writing(self) -> AbstractContextManager:
        """Held while a configuration's rows are written."""


class Alone:
    """A single process: it agrees with itself, writes, and records a configuration that
    fails as rows of its status, skipping the larger batches after an out-of-memory."""

    writes = True

    def __init__(self, oom: OomLimits):
        self.oom = oom

    def agree(self, values: list[float]) -> list[float]:
        return values

    def measure(self, group: Group, repeat: int, options: TimingOptions,
                nvml: NvmlHandles) -> list[ConfigResult]:
        return attempt_group(group, options, repeat=repeat, nvml=nvml, oom=self.oom)

    def writing(self) -> AbstractContextManager:
        return nullcontext()


def pending(run: OpenRun) -> list[tuple[int, Group]]:
    """What is left to measure, per repeat, a comparison group at a time (without its
    configurations already on disk), each repeat in a fresh random order."""
    # processes taking turns share the order, so their turns time the same configuration
    seed = shared_seed()
    shuffler = random.Random(secrets.randbits(64) if seed is None else seed)
    todo = []
    for repeat in range(1, run.config.repeats + 1):
        for group in run_order(run.config.groups(run.specs), shuffler):
            left = tuple(s for s in group if (repeat, config_id(s)) not in run.done)
            if left:
                todo.append((repeat, left))
    return todo


def progress_label(result: ConfigResult) -> str:
    text = config_id(result.spec)
    if result.status != OK:
        return f"{text} | {result.status}: {result.error}"
    if result.timing is not None and result.timing.device_ms[STEP]:
        text += f" | step {result.timing.summary(STEP).median:.3f} ms"
    return text


def sweep_loop(todo: list[tuple[int, Group]], options: TimingOptions, ranks: Ranks,
               run: OpenRun | None, *, progress: bool, stream: TextIO,
               fail_fast: bool) -> RunOutcome:
    """Measure ``todo`` ((repeat, group) in order) into ``run``, which the process that
    writes has open. Every process leaves the loop at the same group: whatever stops it (a
    signal, a failed write, --fail-fast) is agreed on before the next one."""
    total = sum(len(group) for _, group in todo)
    outcome = RunOutcome(run.run_id if run else "", run.out_dir if run else Path(),
                         pending=total)
    writer = (ResultsWriter(run.out_dir, run.run_id, torch.__version__, socket.gethostname())
              if ranks.writes else None)
    bar = Progress(total, stream, enabled=progress and ranks.writes)
    nvml = NvmlHandles(stream)
    stop = StopOnSignal(stream)
    stopping = False  # a failed write, or --fail-fast, on the process that writes
    try:
        with stop:
            for repeat, group in todo:
                if ranks.agree([float(stop.requested or stopping)])[0]:
                    break
                results = ranks.measure(group, repeat, options, nvml)
                if results is None:
                    continue
                try:
                    # samples and results of a whole group, or nothing of it
                    with ranks.writing(), stop.protected():
                        writer.write(*results)
                except RunFolderWriteError as exc:
                    outcome.write_error, stopping = str(exc), True  # those before are kept
                    continue
                for result in results:
                    outcome.results.append(result)
                    outcome.pending -= 1
                    bar.advance(progress_label(result))
                failed = [r for r in results if r.status in FAILURES]
                if fail_fast and failed:
                    outcome.failed_fast, stopping = failed[0], True
    except Interrupted:
        pass  # the configuration in progress is abandoned; nothing of it was written
    finally:
        if writer is not None:
            writer.close()
        bar.close()
    outcome.signum = stop.signum
    return outcome


def run_sweep(config: SweepConfig, out_dir: Path | None = None, *, argv: list[str] = (),
              progress: bool = True, stream: TextIO | None = None,
              fail_fast: bool = False) -> RunOutcome:
    """A new run in one process: validate, create the folder, record the sweep and the
    environment, measure."""
    stream = stream or sys.stderr
    run = create_run(config, out_dir, stream)
    try:
        return _measure(run, list(argv), progress, stream, fail_fast)
    finally:
        run.close()


def resume_sweep(out_dir: Path, *, argv: list[str] = (), progress: bool = True,
                 stream: TextIO | None = None, fail_fast: bool = False) -> RunOutcome:
    """Continue the run in ``out_dir``: the configurations (per repeat) not yet recorded,
    with the same run_id. Refused (UsageError) where the figures would not be comparable."""
    run = reopen_run(out_dir)
    try:
        return _measure(run, list(argv), progress, stream or sys.stderr, fail_fast)
    finally:
        run.close()


def _measure(run: OpenRun, argv: list[str], progress: bool, stream: TextIO,
             fail_fast: bool) -> RunOutcome:
    if run.config.threads:
        torch.set_num_threads(run.config.threads)
    # side by side, the machine's load is read while the others wait for their turn
    take_turn()
    record_environment(run, argv)
    return sweep_loop(pending(run), run.config.timing, Alone(run.oom), run,
                      progress=progress, stream=stream, fail_fast=fail_fast)
