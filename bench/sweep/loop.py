"""The one sweep loop: for each configuration, measure it, append its rows to disk at once,
advance the progress bar; stop cleanly on a signal, a failed write or ``--fail-fast``.

A single process and the ranks of a data-parallel run go through the same loop. What
differs is behind ``Ranks``: how the processes agree (a single process agrees with itself),
how a configuration is measured (alone, a failure is recorded as a row; under torchrun the
ranks measure together and rank 0 merges them, ``bench/sweep/data_parallel.py``) and which
process writes.

Configurations are measured a comparison group at a time (``bench/sweep/groups.py``): the
configurations that differ only in the sweep's ``compare_by`` axis are timed together,
round-robin. In one process several groups are timed in turn, a round of each, each until
its question is decided, on a budget the run shares (``bench/sweep/visits.py``). The groups
of every repeat run in a fresh random order, so slow drift of a shared machine spreads over
all of them instead of biasing whichever ran last. SIGINT and SIGTERM
stop the loop cleanly (``bench/sweep/interrupt.py``); ``resume_sweep`` continues it later in
the same folder.
"""

from __future__ import annotations

import gc
import random
import secrets
import signal
import socket
import sys
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable, Iterator
from typing import Protocol, TextIO

import torch

from bench.analyze.reader import Run, load_run
from bench.axes import config_id
from bench.errors import RunFolderWriteError, UsageError
from bench.measure.configuration import NvmlHandles
from bench.measure.result import ConfigResult
from bench.measure.timers import TimingOptions
from bench.sweep.turns import current as current_turns
from bench.sweep.turns import shared_seed, take_turn
from bench.schema import OK, RESULTS_FILE, STEP
from bench.sweep.config import SweepConfig
from bench.sweep.failures import FAILURES, OomLimits
from bench.sweep.folder import OpenRun, create_run, record_environment, reopen_run
from bench.sweep.groups import Group, run_order
from bench.sweep.interrupt import Interrupted, SaidStop, StopOnSignal, stop_on_terminate
from bench.sweep.progress import Progress
from bench.sweep.visits import measure_in_turn
from bench.sweep.passes import passes_of
from bench.sweep.workers import measure_with_workers, sharing_workers, worker_timing
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
    # the processes agree before each group whether to go on (they must leave together)
    agrees_per_group: bool

    def agree(self, values: list[float]) -> list[float]:
        """The element-wise maximum of ``values`` over the processes."""

    def measure_all(self, todo: list[tuple[int, Group]], options: TimingOptions,
                    nvml: NvmlHandles, stop_requested: Callable[[], bool]
                    ) -> Iterator[list[ConfigResult] | None]:
        """The results of each comparison group of ``todo`` as it finishes, for the process
        that writes (None elsewhere), until ``stop_requested`` (which every process must
        agree on before the next group)."""

    def writing(self) -> AbstractContextManager:
        """Held while a configuration's rows are written."""


class Alone:
    """A single process: it agrees with itself, writes, and records a configuration that
    fails as rows of its status, skipping the larger batches after an out-of-memory."""

    writes = True
    agrees_per_group = False

    def __init__(self, oom: OomLimits, processes: int = 1):
        self.oom = oom
        self.processes = processes  # the run's workers, this one among them

    def agree(self, values: list[float]) -> list[float]:
        return values

    def measure_all(self, todo: list[tuple[int, Group]], options: TimingOptions,
                    nvml: NvmlHandles, stop_requested: Callable[[], bool]
                    ) -> Iterator[list[ConfigResult]]:
        return measure_in_turn(todo, options, nvml, self.oom, stop_requested, take_turn,
                               self.processes)

    def writing(self) -> AbstractContextManager:
        return nullcontext()


def pending(run: OpenRun, worker: int | None = None) -> list[tuple[int, Group]]:
    """What is left to measure, per repeat, a comparison group at a time (without its
    configurations already on disk), each repeat in a fresh random order. ``worker``: the
    passes of that worker of the run (``bench/sweep/workers.py``), else the first R."""
    # processes taking turns share the order, so their turns time the same configuration;
    # the workers of one run each take their own, so that they meet the machine apart
    seed = shared_seed()
    if seed is not None and worker is not None:
        seed += worker
    shuffler = random.Random(secrets.randbits(64) if seed is None else seed)
    todo = []
    for repeat in passes_of(worker or 1, run.config.repeats):
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


_frozen = False


def freeze_what_lives() -> None:
    """Once per process, before its first sweep: what is alive then (the modules of torch,
    pandas and the project, some 200,000 objects) is kept out of every later collection.
    The collections that free a group's steps then scan only what was made since, a
    millisecond where they took 150 ms each: seven seconds of the default sweep."""
    global _frozen
    if not _frozen:
        gc.collect()  # garbage is not frozen with the rest
        gc.freeze()
        _frozen = True


def sweep_loop(todo: list[tuple[int, Group]], options: TimingOptions, ranks: Ranks,
               run: OpenRun | None, *, progress: bool, stream: TextIO,
               fail_fast: bool) -> RunOutcome:
    """Measure ``todo`` ((repeat, group) in order) into ``run``, which the process that
    writes has open. Every process leaves the loop at the same group: whatever stops it (a
    signal, a failed write, --fail-fast) is agreed on before the next one."""
    total = sum(len(group) for _, group in todo)
    outcome = RunOutcome(run.run_id if run else "", run.out_dir if run else Path(),
                         pending=total)
    writer = (ResultsWriter(run.out_dir, run.run_id, torch.__version__, socket.gethostname(),
                            run.config.repeats)
              if ranks.writes else None)
    bar = Progress(total, stream, enabled=progress and ranks.writes)
    nvml = NvmlHandles(stream)
    stop = StopOnSignal(stream)
    freeze_what_lives()
    stopping = [False]  # a failed write, or --fail-fast, on the process that writes
    try:
        with stop:
            for results in ranks.measure_all(todo, options, nvml,
                                             lambda: stop.requested or stopping[0]):
                if results is None:
                    continue
                try:
                    # samples and results of a whole group, or nothing of it
                    with ranks.writing(), stop.protected():
                        writer.write(*results)
                except RunFolderWriteError as exc:
                    outcome.write_error, stopping[0] = str(exc), True  # those before are kept
                    if ranks.writes and not ranks.agrees_per_group:
                        break  # the groups in progress have nowhere to go
                    continue
                for result in results:
                    outcome.results.append(result)
                    outcome.pending -= 1
                    bar.advance(progress_label(result))
                failed = [r for r in results if r.status in FAILURES]
                if fail_fast and failed:
                    outcome.failed_fast, stopping[0] = failed[0], True
                    if not ranks.agrees_per_group:
                        break  # at the first failure: the groups still in progress are left
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
              fail_fast: bool = False, loads: list[str] = ()) -> RunOutcome:
    """A new run: validate, create the folder, record the sweep and the environment,
    measure (in this process, or by the run's workers)."""
    stream = stream or sys.stderr
    check_alone_with_workers(config)
    with stop_on_terminate():
        run = create_run(config, out_dir, stream)
        try:
            return _measure(run, list(argv), progress, stream, fail_fast, list(loads))
        except KeyboardInterrupt as stop:
            # stopped while it set up (before the sweep's own handlers): with nothing
            # measured, its folder is taken back, so that the same command starts again.
            # Not a side of a paired round: the other side may have measured while this one
            # waited for its first turn, and the round resumes only where both folders are
            if not measured_any(run.out_dir):
                signum = getattr(stop, "signum", signal.SIGINT)
                if current_turns() is not None:
                    print(f"interrupted before anything was measured: {run.out_dir} is kept "
                          "for the paired rounds, whose command resumes it side by side",
                          file=stream, flush=True)
                    raise SaidStop(signum) from None
                run.abandon()
                print(f"interrupted before anything was measured: {run.out_dir} was taken "
                      "back; the same command starts the run again", file=stream, flush=True)
                raise SaidStop(signum) from None
            raise
        finally:
            run.close()


def measured_any(out_dir: Path) -> bool:
    """Whether the run's results.csv holds a row (a header alone is no measurement)."""
    try:
        with open(out_dir / RESULTS_FILE, "rb") as results:
            return sum(1 for line in results if line.strip()) > 1
    except FileNotFoundError:
        return False


def resume_sweep(out_dir: Path, *, argv: list[str] = (), progress: bool = True,
                 stream: TextIO | None = None, fail_fast: bool = False,
                 loads: list[str] = ()) -> RunOutcome:
    """Continue the run in ``out_dir``: the configurations (per repeat) not yet recorded,
    with the same run_id. Refused (UsageError) where the figures would not be comparable."""
    run = reopen_run(out_dir)
    try:
        check_alone_with_workers(run.config)
        return _measure(run, list(argv), progress, stream or sys.stderr, fail_fast,
                        list(loads))
    finally:
        run.close()


def check_alone_with_workers(config: SweepConfig) -> None:
    """A run that takes turns with others (paired rounds) is one process; its workers would
    take the turns instead. (A malformed turns variable is refused here too.)"""
    if config.workers != 1 and current_turns() is not None:
        raise UsageError("a run that takes turns with others (paired rounds) is measured by "
                         "one process: give it --workers 1")


def work_sweep(out_dir: Path, worker: int, *, stream: TextIO | None = None) -> RunOutcome:
    """One worker's passes of the run in ``out_dir``, whose coordinator holds the folder
    (``bench/sweep/workers.py``)."""
    run = reopen_run(out_dir, worker=worker)
    if run.config.threads:
        torch.set_num_threads(run.config.threads)
    take_turn()
    return sweep_loop(pending(run, worker), worker_timing(run.config),
                      Alone(run.oom, processes=sharing_workers(run.config)), run,
                      progress=False, stream=stream or sys.stderr, fail_fast=False)


def _measure(run: OpenRun, argv: list[str], progress: bool, stream: TextIO,
             fail_fast: bool, loads: list[str]) -> RunOutcome:
    if run.config.workers != 1:
        return _measure_by_workers(run, argv, progress, stream, loads)
    if run.config.threads:
        torch.set_num_threads(run.config.threads)
    # side by side, the machine's load is read while the others wait for their turn
    take_turn()
    record_environment(run, argv)
    return sweep_loop(pending(run), run.config.timing, Alone(run.oom), run,
                      progress=progress, stream=stream, fail_fast=fail_fast)


def _measure_by_workers(run: OpenRun, argv: list[str], progress: bool, stream: TextIO,
                        loads: list[str]) -> RunOutcome:
    """The run's passes by its workers; what is on disk afterwards is the outcome."""
    workers, signum, codes = measure_with_workers(run, argv, loads, progress, stream)
    if signum is not None and not (run.out_dir / RESULTS_FILE).exists():
        # stopped before a worker opened the run's files (a loaded machine starts them
        # slowly): as if one had and measured nothing, so the run resumes as any other
        ResultsWriter(run.out_dir, run.run_id, torch.__version__, socket.gethostname(),
                      run.config.repeats).close()
    on_disk = load_run(run.out_dir, allow_empty=True).results
    done = set(zip(on_disk["repeat"].tolist(), on_disk["config_id"].tolist()))
    total = len(run.specs) * run.config.repeats * workers.count
    outcome = RunOutcome(run.run_id, run.out_dir, pending=total - len(done), signum=signum)
    if 1 in codes:  # a worker exits 1 only where it could not write: said above
        outcome.write_error = "a worker could not write the run folder (above); what the " \
                              "workers wrote is kept"
    elif any(code != 0 for code in codes) and signum is None:
        outcome.write_error = (f"a worker stopped early (exit codes {codes}); what it wrote "
                               "is kept")
    return outcome
