"""A sweep run data-parallel under torchrun: ``python -m bench run --distributed``.

Every rank runs every configuration, in the same order, on its own device with its own
batch; DDP averages the gradients between them. The loop is the single process's
(``bench/sweep/loop.py``); what differs plugs in as ``DataParallelRanks``. Rank 0 alone
plans and writes: it opens the run folder (a new run or one it resumes) and turns it into a
plan that every rank follows, and after each configuration it gathers every rank's samples
and writes one row per phase with the slowest rank's (``bench/sweep/ranks.py``). Before each
configuration the ranks agree whether to go on, since a signal, a failed write or
--fail-fast on rank 0 may have stopped only some of them.

A configuration that raises on any rank ends the run: the other ranks would wait for that
one in a collective. The failing rank tells the others through the store
(``bench/sweep/distributed.py``); rank 0 says which rank failed, where and why, and every
rank exits with code 1. The configurations finished before are on disk, and ``--resume``
continues from there.
"""

from __future__ import annotations

import io
import os
import shlex
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, TextIO

import torch

from bench.axes import config_id
from bench.errors import UsageError
from bench.measure.configuration import NvmlHandles, measure_group
from bench.measure.devices import device_name
from bench.measure.result import ConfigResult
from bench.measure.timers import TimingOptions
from bench.sweep.config import SweepConfig, expand_all, sweep_from_mapping, sweep_to_mapping
from bench.sweep.distributed import Failure, World, backend_for, rank_record
from bench.sweep.failures import classify
from bench.sweep.folder import (OpenRun, check_world, create_run, read_sweep_record,
                                record_environment, reopen_run)
from bench.sweep.groups import Group, group_id
from bench.sweep.loop import RunOutcome, pending, sweep_loop
from bench.sweep.ranks import merge_ranks, rank_result

FAILING_RANK_FIRST_S = 1.0


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


def resume_hint(out_dir: Path, more: Sequence[str] = ()) -> str:
    """``more``: the options the resume repeats (its history store)."""
    words = shlex.join(["-m", "bench", "run", "--distributed", "--resume", str(out_dir), *more])
    return f"to continue, launch the same torchrun command with `{words}`"


class Lead:
    """Rank 0's part: the run folder, the plan, and what is said when a rank fails."""

    def __init__(self, world: World, stream: TextIO):
        self.world, self.stream = world, stream
        self.run: OpenRun | None = None
        self.configs_on_disk = 0
        # held while a configuration's rows are written, so that a failure reported from
        # the watcher thread never cuts one short
        self.lock = threading.Lock()

    def sweep(self, config: SweepConfig | None, resume: Path | None) -> dict[str, Any]:
        if resume is None:
            return sweep_to_mapping(config)
        record = read_sweep_record(resume)
        check_world(resume, record, self.world.size)
        return record["sweep"]

    def plan(self, config: SweepConfig, resume: Path | None, out_dir: Path | None,
             errors: list[str | None]) -> tuple[str, list[tuple[int, int]]]:
        """The run id, and what to measure in which order: (repeat, indexes into the specs
        of a comparison group's configurations)."""
        refused = next((e for e in errors if e), None)
        if refused:
            raise UsageError(refused)
        if resume is not None:
            self.run = reopen_run(resume, local_rank=self.world.local_rank,
                                  world_size=self.world.size)
        else:
            self.run = create_run(config, out_dir, self.stream,
                                  local_rank=self.world.local_rank, world_size=self.world.size)
        index = {spec: i for i, spec in enumerate(self.run.specs)}
        self.configs_on_disk = len(self.run.done)
        return self.run.run_id, [(repeat, [index[spec] for spec in group])
                                 for repeat, group in pending(self.run)]

    @contextmanager
    def writing(self) -> Iterator[None]:
        with self.lock:
            yield
            self.configs_on_disk += 1  # reached only when the rows were written

    def stop_for(self, failure: Failure) -> NoReturn:
        """Say which rank failed and what is on disk, let that rank go, and exit."""
        with self.lock:
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


class DataParallelRanks:
    """The ranks of a torchrun: they agree through the control group, measure each
    configuration together, and rank 0 merges and writes what they measured."""

    agrees_per_group = True

    def __init__(self, world: World, lead: Lead | None):
        self.world, self.lead = world, lead
        self.writes = lead is not None

    def agree(self, values: list[float]) -> list[float]:
        return self.world.agree(values)

    def measure_all(self, todo: list[tuple[int, Group]], options: TimingOptions,
                    nvml: NvmlHandles, stop_requested: Callable[[], bool]
                    ) -> Iterator[list[ConfigResult] | None]:
        """A group at a time, every rank together: they agree before each whether to stop."""
        for repeat, group in todo:
            if self.agree([float(stop_requested())])[0]:
                return
            yield self.measure(group, repeat, options, nvml)

    def measure(self, group: Group, repeat: int, options: TimingOptions,
                nvml: NvmlHandles) -> list[ConfigResult] | None:
        try:
            results = measure_group(group, options, repeat=repeat, nvml=nvml,
                                    agree=self.world.agree)
            ranks = self.world.gather([rank_result(self.world.rank, r) for r in results])
        except Exception as exc:
            fail(self.world, self.lead, group, repeat, exc)
        if self.lead is None:
            return None
        merged = [merge_ranks(result, [mine[i] for mine in ranks], backend_for(result.spec.device))
                  for i, result in enumerate(results)]
        for result in merged:
            result.group = group_id(group)
        return merged

    def writing(self):
        return self.lead.writing()


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
    stream = stream or sys.stderr
    lead = Lead(world, stream) if world.rank == 0 else None
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
        _, plan = from_lead(world, lambda: lead.plan(config, resume, out_dir, errors))
        devices = {d: device_name(d) for d in dict.fromkeys(s.device for s in specs)}
        ranks = world.gather(rank_record(world, devices))
        if config.threads:
            torch.set_num_threads(config.threads)
        if lead:
            record_environment(lead.run, list(argv), ranks)
        world.watch(lead.stop_for if lead else lambda failure: exit_now(1))
        todo = [(repeat, tuple(specs[i] for i in indexes)) for repeat, indexes in plan]
        # the other ranks would only repeat rank 0's notes
        outcome = sweep_loop(todo, config.timing, DataParallelRanks(world, lead),
                             lead.run if lead else None, progress=progress,
                             stream=stream if lead else io.StringIO(), fail_fast=fail_fast)
        return outcome if lead else None
    finally:
        if lead and lead.run is not None:
            lead.run.close()


def fail(world: World, lead: Lead | None, group: Group, repeat: int,
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
    configs = " or ".join(config_id(spec) for spec in group)
    message = (f"rank {world.rank} of {world.size} ({socket.gethostname()}, {group[0].device}) "
               f"failed at configuration {configs} (repeat {repeat}): {status}: {reason}")
    if lead is not None:
        lead.stop_for(Failure(world.rank, message))
    try:
        said = world.tell_failure(message)
    except Exception:
        said = False
    if not said:  # rank 0 could not say it
        print(f"error: {message}", file=sys.stderr, flush=True)
    exit_now(1)
