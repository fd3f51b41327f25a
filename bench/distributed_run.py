"""A sweep run data-parallel under torchrun: ``python -m bench run --distributed``.

Every rank runs every configuration, in the same order, on its own device with its own
batch; DDP averages the gradients between them. Rank 0 alone plans and writes: it turns the
sweep (or the run it resumes) into a plan that every rank follows, and after each
configuration it gathers every rank's samples and writes one row per phase with the
slowest rank's (``bench/ranks.py``). Before each configuration the ranks agree whether to
go on, since a signal, or --fail-fast on rank 0, may have stopped only some of them.

A configuration that raises on any rank ends the run: the other ranks would wait for that
one in a collective. The failing rank tells the others through the store
(``bench/distributed.py``); rank 0 says which rank failed, where and why, and every rank
exits with code 1. The configurations finished before are on disk, and ``--resume``
continues from there.
"""

from __future__ import annotations

import io
import os
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TextIO

import torch

from bench.atomic import write_json_atomic
from bench.config import SweepConfig, expand_all, sweep_from_mapping, sweep_to_mapping
from bench.devices import device_name
from bench.distributed import Failure, World, backend_for, rank_record
from bench.env import capture_environment
from bench.errors import RunFolderWriteError, UsageError
from bench.failures import FAILURES, classify
from bench.interrupt import Interrupted, StopOnSignal
from bench.progress import Progress
from bench.ranks import merge_ranks, rank_result
from bench.results import ResultsWriter, config_id
from bench.runfolder import (PreviousRun, check_world, open_previous_run, prepare_out_dir,
                             read_sweep_record, write_sweep_record)
from bench.runner import (NvmlHandles, RunOutcome, measure_configuration, new_run_id,
                          note_resume, pending, progress_label)
from bench.schema import ENV_FILE
from multinet.step import StepSpec

FAILING_RANK_FIRST_S = 1.0


@dataclass
class Plan:
    """What rank 0 hands every rank: the run, and what to measure in which order."""

    run_id: str
    todo: list[tuple[int, int]] = field(default_factory=list)  # (repeat, index into the specs)


def from_lead(world: World, make: Callable[[], Any]) -> Any:
    """Rank 0's ``make()``, on every rank; its UsageError is raised on every rank."""
    value, error = None, None
    if world.rank == 0:
        try:
            value = make()
        except UsageError as exc:
            error = str(exc)
    value, error = world.broadcast((value, error))
    if error is not None:
        raise UsageError(error)
    return value


def resume_hint(out_dir: Path) -> str:
    return (f"to continue, launch the same torchrun command with `-m bench run --distributed "
            f"--resume {out_dir}`")


class Lead:
    """Rank 0's part: the run folder, the plan, the rows, and what is said when a rank
    fails."""

    def __init__(self, world: World, stream: TextIO):
        self.world, self.stream = world, stream
        self.run: PreviousRun | None = None
        self.lock = None
        self.configs_on_disk = 0
        # held while a configuration's rows are written, so that a failure reported from
        # the watcher thread never cuts one short
        self.writing = threading.Lock()

    def sweep(self, config: SweepConfig | None, resume: Path | None) -> dict[str, Any]:
        if resume is None:
            return sweep_to_mapping(config)
        record = read_sweep_record(resume)
        check_world(resume, record, self.world.size)
        return record["sweep"]

    def plan(self, config: SweepConfig, resume: Path | None, out_dir: Path | None,
             errors: list[str | None]) -> Plan:
        refused = next((e for e in errors if e), None)
        if refused:
            raise UsageError(refused)
        if resume is not None:
            record = read_sweep_record(resume)
            self.lock = prepare_out_dir(resume, new=False)
            self.run = open_previous_run(resume, record, local_rank=self.world.local_rank,
                                         world_size=self.world.size)
        else:
            self.run = self._new_run(config, out_dir)
        index = {spec: i for i, spec in enumerate(self.run.specs)}
        todo = [(repeat, index[spec]) for repeat, spec in pending(self.run)]
        self.configs_on_disk = len(self.run.done)
        return Plan(self.run.run_id, todo)

    def _new_run(self, config: SweepConfig, out_dir: Path | None) -> PreviousRun:
        specs, not_attempted = expand_all(config, self.world.local_rank)
        if not specs:
            raise UsageError(f"no configuration of this sweep can run here: "
                             f"{not_attempted[0][1]}")
        run_id = new_run_id()
        out_dir = Path(out_dir) if out_dir else Path("results") / run_id
        self.lock = prepare_out_dir(out_dir)
        for notice in config.notices:
            print(f"note: {notice}", file=self.stream)
        for reason, count in Counter(reason for _, reason in not_attempted).items():
            print(f"note: {count} configuration(s) not attempted: {reason}", file=self.stream)
        names = {device: device_name(device) for device in dict.fromkeys(s.device for s in specs)}
        write_sweep_record(out_dir, run_id, config, specs, torch.__version__, names,
                           self.world.size)
        return PreviousRun(out_dir, run_id, config, specs)

    def record_environment(self, ranks: list[dict[str, Any]], argv: list[str],
                           resumed: bool) -> None:
        if resumed:
            note_resume(self.run.out_dir, self.run.run_id, argv)
        else:
            write_json_atomic(self.run.out_dir / ENV_FILE,
                              capture_environment(self.run.run_id, argv, ranks))

    def stop_for(self, failure: Failure) -> NoReturn:
        """Say which rank failed and what is on disk, let that rank go, and exit."""
        with self.writing:
            out_dir, what = self.run.out_dir, failure.message.rstrip(".")
            print(f"\nerror: {what}.\nThe run stops: {out_dir}/results.csv keeps the "
                  f"{self.configs_on_disk} configuration(s) finished before; "
                  f"{resume_hint(out_dir)}", file=self.stream, flush=True)
            if failure.rank != 0:
                self.world.reported()
                # let the failing rank leave first: torchrun names the first rank to exit
                # as the root cause
                time.sleep(FAILING_RANK_FIRST_S)
            else:
                self.world.tell_failure(failure.message)
            exit_now(1)


def exit_now(code: int) -> NoReturn:
    """End this rank at once: its main thread may be waiting in a collective that will never
    complete. Everything written so far has been flushed and fsynced."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run_distributed(world: World, config: SweepConfig | None, out_dir: Path | None = None, *,
                    resume: Path | None = None, argv: list[str] = (), progress: bool = True,
                    stream: TextIO | None = None, fail_fast: bool = False) -> RunOutcome | None:
    """A new run of ``config`` into ``out_dir``, or the run in ``resume`` continued, over
    every rank of ``world``. Rank 0 returns the outcome; the other ranks None."""
    lead = Lead(world, stream or sys.stderr) if world.rank == 0 else None
    quiet = io.StringIO()  # what the other ranks would repeat of rank 0's notes
    # The sweep is rank 0's (a resumed run's is in its folder), rebuilt on every rank; each
    # rank then resolves its own devices, and rank 0 hears whether all of them could.
    sweep = from_lead(world, lambda: lead.sweep(config, resume))
    if config is None or resume is not None:
        config = sweep_from_mapping(sweep, "the sweep of rank 0")
    specs, error = [], None
    try:
        specs, _ = expand_all(config, world.local_rank)
    except UsageError as exc:
        error = f"rank {world.rank}: {exc}"
    errors = world.gather(error)
    try:
        plan = from_lead(world, lambda: lead.plan(config, resume, out_dir, errors))
        devices = {d: device_name(d) for d in dict.fromkeys(s.device for s in specs)}
        ranks = world.gather(rank_record(world, devices))
        if lead:
            lead.record_environment(ranks, list(argv), resumed=resume is not None)
        if config.threads:
            torch.set_num_threads(config.threads)
        return _measure(world, lead, plan, specs, config, progress, fail_fast,
                        (stream or sys.stderr) if lead else quiet)
    finally:
        if lead and lead.lock is not None:
            lead.lock.close()


def _measure(world: World, lead: Lead | None, plan: Plan, specs: list[StepSpec],
             config: SweepConfig, progress: bool, fail_fast: bool,
             stream: TextIO) -> RunOutcome | None:
    outcome = writer = None
    if lead:
        run = lead.run
        outcome = RunOutcome(plan.run_id, run.out_dir, rows=list(run.rows),
                             pending=len(plan.todo))
        writer = ResultsWriter(run.out_dir, plan.run_id, torch.__version__,
                               socket.gethostname())
    world.watch(lead.stop_for if lead else lambda failure: exit_now(1))
    bar = Progress(len(plan.todo), stream, enabled=progress and lead is not None)
    nvml = NvmlHandles(stream)
    stop = StopOnSignal(stream)
    stopping = False  # --fail-fast, on rank 0
    try:
        with stop:
            for repeat, index in plan.todo:
                spec = specs[index]
                try:
                    if world.agree([float(stop.requested or stopping)])[0]:
                        break
                    result = measure_configuration(spec, config.timing, repeat=repeat,
                                                   nvml=nvml, agree=world.agree)
                    ranks = world.gather(rank_result(world.rank, result))
                except Exception as exc:
                    _fail(world, lead, spec, repeat, exc)
                if not lead:
                    continue
                result = merge_ranks(result, ranks, backend_for(spec.device))
                try:
                    with lead.writing, stop.protected():
                        outcome.rows.extend(writer.write(result))
                        lead.configs_on_disk += 1
                except RunFolderWriteError as exc:
                    # every rank stops at the next agreement, as for --fail-fast
                    outcome.write_error, stopping = str(exc), True
                    continue
                outcome.results.append(result)
                outcome.pending -= 1
                bar.advance(progress_label(result))
                if fail_fast and result.status in FAILURES:
                    outcome.failed_fast, stopping = result, True
    except Interrupted:
        pass  # the configuration in progress is abandoned; nothing of it was written
    finally:
        if writer is not None:
            writer.close()
        bar.close()
    if outcome is not None:
        outcome.signum = stop.signum
    return outcome


def _fail(world: World, lead: Lead | None, spec: StepSpec, repeat: int,
          exc: Exception) -> NoReturn:
    """This rank cannot go on. Where another rank failed first (this rank's collective broke
    because that one left), rank 0 reports that one; else this one is reported."""
    try:
        first = world.failure()
    except Exception:  # the store went with the process that held it
        first = None
    if first is not None and first.rank != world.rank:
        if lead is not None:
            lead.stop_for(first)
        exit_now(1)
    status, reason = classify(exc)
    message = (f"rank {world.rank} of {world.size} ({socket.gethostname()}, {spec.device}) "
               f"failed at configuration {config_id(spec)} (repeat {repeat}): {status}: "
               f"{reason}")
    if lead is not None:
        lead.stop_for(Failure(world.rank, message))
    try:
        said = world.tell_failure(message)
    except Exception:
        said = False
    if not said:  # rank 0 could not say it
        print(f"error: {message}", file=sys.stderr, flush=True)
    exit_now(1)
