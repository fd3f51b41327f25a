"""A run measured by several fresh processes, so that its figures carry the spread between
processes that one process cannot show.

On a shared machine a process keeps for its life some of what it met when it started (where
its threads and memory landed), and two runs of the same sweep differ by more than either's
samples suggest. A run's intervals, and a comparison of two runs, can only include that
spread if the run sampled it: so ``workers`` fresh processes each measure every
configuration (``repeats`` passes each, numbered across them: worker k measures passes
(k - 1) R + 1 to k R), side by side and taking turns a round of blocks at a time
(``bench/sweep/turns.py``), each in its own order of the comparison groups. Each pass is
a unit of ``compare``, which then sees the spread between them.

How many: ``workers = 0`` (the default sweep's) starts ``FIRST_WORKERS``, then measures the
spread between their passes (per configuration's step, pooled over every configuration)
and adds workers until the mean over them is known to ``SPREAD_TARGET`` (its standard
error), at most ``MOST_WORKERS``: a quiet machine stops at two, a noisy one takes more. The
count, the spread and why are recorded in env.json (``workers``) and each row says which
worker measured it (``worker``).

The coordinator holds the run folder; the workers append to its files, each write under the
file's lock (``bench/sweep/writer.py``). A signal to the coordinator is passed on to every
worker, which stops after its configuration in progress; ``--resume`` relaunches the
workers with passes left.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from bench import PROJECT_ROOT
from bench.analyze.reader import load_run
from bench.atomic import write_json_atomic
from bench.schema import ENV_FILE, FIELDS, OK, RESULTS_FILE, STEP
from bench.seal import check_seal, seal
from bench.measure.timers import TimingOptions
from bench.sweep.config import MOST_WORKERS, SweepConfig
from bench.sweep.folder import OpenRun, record_environment
from bench.sweep.interrupt import Interrupted
from bench.sweep.progress import Progress
from bench.sweep.side_by_side import run_side_by_side

FIRST_WORKERS = 2
REPEAT, CONFIG = FIELDS.index("repeat"), FIELDS.index("config_id")
# The standard error of the mean over workers the auto count aims for: the run's medians
# then known to about +-5% (95%), the spread between processes included.
SPREAD_TARGET = 0.025


@dataclass
class WorkersRecord:
    count: int
    chosen: str  # "given", or why auto stopped where it did
    spread: float | None  # the spread between workers' step medians (log sd), pooled

    def as_json(self) -> dict[str, Any]:
        return {"count": self.count, "chosen": self.chosen, "process_spread": self.spread}


def sharing_workers(config: SweepConfig) -> int:
    """The workers a run's measuring is shared by: the count given, or ``FIRST_WORKERS``
    where auto (a machine noisy enough to ask for more pays for them in time)."""
    return config.workers or FIRST_WORKERS


def worker_timing(config: SweepConfig) -> TimingOptions:
    """A worker's timing: the run's ``budget_s`` per configuration is shared by its workers,
    so that two workers sample what one process did, each about half of it, and each
    stops when its rounds, with the others' like them, decide the run's verdicts
    (``bench/sweep/visits.py``). The fewest rounds stay each worker's own: below them no
    interval of its medians reaches 95%."""
    share = sharing_workers(config)
    return dataclasses.replace(config.timing, budget_s=config.timing.budget_s / share)


def process_spread(out_dir: Path) -> float | None:
    """The spread between the workers' passes: per configuration, the standard deviation of
    its step median's logarithm over the passes, pooled over every configuration with two
    or more (their variances, weighted by degrees of freedom). None under two passes, or
    where no worker opened the run's files (stopped before they started)."""
    if not (out_dir / RESULTS_FILE).exists():
        return None
    results = load_run(out_dir, allow_empty=True).results
    rows = results[(results["status"] == OK) & (results["phase"] == STEP)]
    logs = np.log(rows["median_ms"].astype(float))
    grouped = logs.groupby(rows["config_id"])
    counts, variances = grouped.count(), grouped.var(ddof=1)
    usable = counts >= 2
    if not usable.any():
        return None
    df = counts[usable] - 1
    return float(math.sqrt((variances[usable] * df).sum() / df.sum()))


def workers_wanted(spread: float | None) -> int:
    """The workers whose mean has standard error SPREAD_TARGET at ``spread``."""
    if spread is None:
        return FIRST_WORKERS
    return min(MOST_WORKERS, max(FIRST_WORKERS, math.ceil((spread / SPREAD_TARGET) ** 2)))


def worker_command(run: OpenRun, worker: int, loads: list[str]) -> list[str]:
    command = [sys.executable, "-m", "bench"]
    for path in loads:
        command += ["--load", path]
    return command + ["run", "--resume", str(run.out_dir), "--worker", str(worker), "--quiet"]


class RowCounter:
    """The configurations the workers have written, read from results.csv as it grows."""

    def __init__(self, path: Path, progress: Progress):
        self.path, self.progress = path, progress
        self.offset, self.seen = 0, set()
        self.last = 0.0

    def __call__(self) -> None:
        if time.monotonic() - self.last < 0.5:
            return
        self.last = time.monotonic()
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                chunk = handle.read()
        except OSError:
            return
        complete = chunk[:chunk.rfind(b"\n") + 1]
        self.offset += len(complete)
        for cells in csv.reader(io.StringIO(complete.decode("utf-8", "replace"))):
            if len(cells) != len(FIELDS) or cells[0] == FIELDS[0]:
                continue  # the header
            key = (cells[REPEAT], cells[CONFIG])
            if key not in self.seen:
                self.seen.add(key)
                self.progress.advance(f"{key[1]} (pass {key[0]})")


def launch(run: OpenRun, workers: list[int], loads: list[str], on_turn: Callable[[], None]
           ) -> list[int]:
    """``workers`` side by side, taking turns, each in its own order of the groups; their
    exit codes. ``Interrupted`` once they stopped, where a signal asked for it."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    commands = [(worker_command(run, w, loads), env) for w in workers]
    return run_side_by_side(commands, seed=run.config.seed, cwd=os.getcwd(), on_turn=on_turn)


def measure_with_workers(run: OpenRun, argv: list[str], loads: list[str], progress: bool,
                         stream: TextIO) -> tuple[WorkersRecord, int | None, list[int]]:
    """The run's passes, by its workers (more of them while the spread asks for it, where
    the count is auto); what was chosen, the signal that stopped it (or None) and the
    workers' exit codes."""
    record_environment(run, argv)
    given = run.config.workers
    count = max(given or FIRST_WORKERS, on_disk_workers(run))
    total = len(run.specs) * run.config.repeats
    bar = Progress(total * count, stream, enabled=progress)
    counter = RowCounter(run.out_dir / RESULTS_FILE, bar)
    codes: list[int] = []
    signum = None
    try:
        codes += launch(run, list(range(1, count + 1)), loads, counter)
        spread = process_spread(run.out_dir)
        while not given and workers_wanted(spread) > count:
            more = workers_wanted(spread)
            bar.total = total * more
            codes += launch(run, list(range(count + 1, more + 1)), loads, counter)
            count, spread = more, process_spread(run.out_dir)
        chosen = ("given" if given else
                  f"auto: the spread between processes needs {workers_wanted(spread)}"
                  if workers_wanted(spread) <= count else f"auto: at most {MOST_WORKERS}")
    except Interrupted as stop:
        signum, spread, chosen = stop.signum, process_spread(run.out_dir), "stopped"
    finally:
        counter.last = 0.0
        counter()
        bar.close()
    workers = WorkersRecord(count, chosen, spread)
    note_workers(run.out_dir, workers)
    return workers, signum, codes


def on_disk_workers(run: OpenRun) -> int:
    """The workers a resumed run already has passes of."""
    return max((math.ceil(repeat / run.config.repeats) for repeat, _ in run.done), default=0)


def note_workers(out_dir: Path, workers: WorkersRecord) -> None:
    """env.json's ``workers``: how many measured the run, and why."""
    from bench.analyze.reader import read_json_object
    path = out_dir / ENV_FILE
    try:
        env = read_json_object(path, "an environment record")
        check_seal(env, path)  # what the run wrote, sealed again with the workers in it
        env["workers"] = workers.as_json()
        write_json_atomic(path, seal(env))
    except Exception as exc:  # the results stand without it
        print(f"note: could not record the workers in {path}: {exc}", file=sys.stderr)
