"""The run folder on disk: creating it for a new run, or reopening it to continue one.

Besides ``results.csv``, ``samples.csv`` and ``env.json``, a run folder holds ``sweep.json``:
the sweep as resolved when the run started (devices as `auto` resolved them), the torch
version and the name of each device, and for a --distributed run its world size. A resume
measures the same sweep, and refuses when torch, a device or the world size differ, since
its figures would not be comparable with those on disk. Both kinds of start end in an
``OpenRun`` that the one sweep loop (``bench/sweep/loop.py``) measures into.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import secrets
import socket
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TextIO

import torch

from bench.analyze.reader import read_json_object, read_results
from bench.atomic import write_json_atomic, write_text_atomic
from bench.axes import SCENARIO, config_id
from bench.errors import UsageError
from bench.measure.configuration import now
from bench.measure.devices import device_name
from bench.measure.environment import capture_environment
from bench.schema import (ENV_FILE, FIELDS, OOM, RESULTS_FILE, SAMPLE_FIELDS, SAMPLES_FILE,
                          SWEEP_FILE, TIMED_PHASES)
from bench.sweep.config import SweepConfig, expand, expand_all, sweep_from_mapping, sweep_to_mapping
from bench.sweep.failures import OomLimits
from multinet.scenarios import SCENARIOS
from multinet.step import StepSpec

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, one run per folder is up to the user
    fcntl = None

RUN_FILES = (RESULTS_FILE, SWEEP_FILE)  # either one means the folder already holds a run
LOCK_FILE = ".lock"


def new_run_id(host: str | None = None, when: dt.datetime | None = None) -> str:
    """Time, host and a random suffix: two runs started in the same second still differ."""
    when = when or dt.datetime.now(dt.timezone.utc)
    host = re.sub(r"[^A-Za-z0-9-]+", "-", host or socket.gethostname())[:24].strip("-")
    # 32 random bits: a thousand runs in one second collide with odds of about 1 in 10,000
    return f"{when:%Y%m%d-%H%M%S}-{host or 'host'}-{secrets.token_hex(4)}"


@dataclass
class OpenRun:
    """A run folder this process measures into: the run's identity and sweep, what is on
    disk already, and the folder's lock (held until ``close``)."""

    out_dir: Path
    run_id: str
    config: SweepConfig
    specs: list[StepSpec]
    done: set[tuple[int, str]] = field(default_factory=set)  # (repeat, config_id) on disk
    oom: OomLimits = field(default_factory=OomLimits)
    lock: IO | None = None
    resumed: bool = False

    def close(self) -> None:
        if self.lock is not None:
            self.lock.close()
            self.lock = None


def prepare_out_dir(out_dir: Path, *, new: bool = True) -> IO | None:
    """Create the run folder, or say in one line why it cannot be written; then hold its
    lock for as long as this process lives, so two processes never append to one run.

    A new run refuses a folder that already holds one: appending would mix two runs."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out-dir {out_dir} is a file, not a folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"--out-dir {out_dir} is not writable: {exc.strerror}") from None
    lock = _lock(out_dir)
    if new and any((out_dir / name).exists() for name in RUN_FILES):
        raise UsageError(f"--out-dir {out_dir} already holds a run; continue it with "
                         f"--resume {out_dir}, or choose another folder")
    return lock


def _lock(out_dir: Path) -> IO | None:
    if fcntl is None:
        return None
    handle = open(out_dir / LOCK_FILE, "a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise UsageError(f"{out_dir} is in use by another running sweep") from None
    return handle


def create_run(config: SweepConfig, out_dir: Path | None, stream: TextIO, *,
               local_rank: int | None = None, world_size: int | None = None) -> OpenRun:
    """A new run: validate and expand the sweep (a UsageError before anything is created),
    then create its folder and record the sweep in it. ``local_rank`` and ``world_size``:
    rank 0's, under --distributed."""
    specs, not_attempted = expand_all(config, local_rank)
    if not specs:
        raise UsageError(f"no configuration of this sweep can run here: {not_attempted[0][1]}")
    run_id = new_run_id()
    out_dir = Path(out_dir) if out_dir else Path("results") / run_id
    run = OpenRun(out_dir, run_id, config, specs, lock=prepare_out_dir(out_dir))
    for notice in config.notices:
        print(f"note: {notice}", file=stream)
    for reason, count in Counter(reason for _, reason in not_attempted).items():
        print(f"note: {count} configuration(s) not attempted: {reason}", file=stream)
    write_sweep_record(run, world_size)
    return run


def write_sweep_record(run: OpenRun, world_size: int | None = None) -> None:
    """``world_size``: a --distributed run's, whose devices are recorded by kind (`cuda`:
    each rank its own)."""
    devices = list(dict.fromkeys(spec.device for spec in run.specs))
    record = {"run_id": run.run_id, "torch_version": torch.__version__,
              "device_names": {device: device_name(device) for device in devices}}
    if world_size is not None:
        devices = list(dict.fromkeys(torch.device(d).type for d in devices))
        record["distributed"] = {"world_size": world_size}
    write_json_atomic(run.out_dir / SWEEP_FILE,
                      {**record, "sweep": sweep_to_mapping(run.config, devices)})


def record_environment(run: OpenRun, argv: list[str],
                       ranks: list[dict[str, Any]] | None = None) -> None:
    """env.json: the environment as first captured; a resume is listed in it instead.
    ``ranks``: under --distributed, each rank's host and devices."""
    path = run.out_dir / ENV_FILE
    if not run.resumed:
        write_json_atomic(path, capture_environment(run.run_id, argv, ranks))
        return
    try:
        env = read_json_object(path, "an environment record")
    except UsageError:
        env = capture_environment(run.run_id, argv, ranks)
    env.setdefault("resumes", []).append({"started_at": now(),
                                          "command_line": " ".join(["bench", *argv])})
    write_json_atomic(path, env)


def read_sweep_record(out_dir: Path) -> dict[str, Any]:
    """The run's ``sweep.json``; a UsageError where there is none to read."""
    where = f"--resume {out_dir}"
    if not out_dir.is_dir():
        raise UsageError(f"{where}: no such folder")
    if not (out_dir / SWEEP_FILE).is_file():
        raise UsageError(f"{where}: no {SWEEP_FILE}, so this is not a run folder that can "
                         f"be resumed")
    try:
        record = read_json_object(out_dir / SWEEP_FILE, "a sweep record")
    except UsageError as exc:
        raise UsageError(f"{where}: {exc}") from None
    missing = [key for key in ("run_id", "torch_version", "device_names", "sweep")
               if key not in record]
    if missing:
        raise UsageError(f"{where}: {SWEEP_FILE} has no {missing[0]!r}")
    return record


def check_world(out_dir: Path, record: dict[str, Any], world_size: int | None) -> None:
    """A --distributed run is resumed the same way, over as many ranks; a single-process
    run in a single process."""
    then = (record.get("distributed") or {}).get("world_size")
    if then == world_size:
        return
    if then is None:
        raise UsageError(f"cannot resume {out_dir} with --distributed: it ran in one process; "
                         "resume it without torchrun")
    if world_size is None:
        raise UsageError(f"cannot resume {out_dir} in one process: it ran data-parallel over "
                         f"{then} ranks; resume it with torchrun over {then} and --distributed")
    raise UsageError(f"cannot resume {out_dir} over {world_size} ranks: it ran over {then}; "
                     "start a new run to measure another world size")


def reopen_run(out_dir: Path, *, local_rank: int | None = None,
               world_size: int | None = None) -> OpenRun:
    """The run in ``out_dir``, to continue it: lock the folder, check that this process can
    continue it comparably (any reason it cannot is a UsageError), remove what a crash left
    half written, and read what is on disk. Under --distributed, ``local_rank`` and
    ``world_size`` are rank 0's."""
    out_dir = Path(out_dir)
    record = read_sweep_record(out_dir)
    check_world(out_dir, record, world_size)
    lock = prepare_out_dir(out_dir, new=False)
    try:
        return _reopen(out_dir, record, local_rank, lock)
    except BaseException:
        if lock is not None:
            lock.close()
        raise


def _reopen(out_dir: Path, record: dict[str, Any], local_rank: int | None,
            lock: IO | None) -> OpenRun:
    stored_torch, stored_names = record["torch_version"], record["device_names"]
    if stored_torch != torch.__version__:
        raise UsageError(f"cannot resume {out_dir}: it was measured with torch {stored_torch}, "
                         f"this is torch {torch.__version__}; start a new run")
    sweep = record["sweep"]
    for name in sweep.get(SCENARIO.sweep_key, []) if isinstance(sweep, dict) else []:
        if name not in SCENARIOS:
            raise UsageError(f"cannot resume {out_dir}: scenario {name!r} is not registered; "
                             f"pass the file that registers it with --load, as the run did")
    config = sweep_from_mapping(sweep, f"--resume {out_dir}: {SWEEP_FILE}")
    specs = expand(config, local_rank)  # a device that is not here is refused, as in a new run
    for device in dict.fromkeys(spec.device for spec in specs):
        here, then = device_name(device), stored_names.get(device)
        if here != then:
            raise UsageError(f"cannot resume {out_dir}: {device} was {then!r}, here it is "
                             f"{here!r}; start a new run")
    run = OpenRun(out_dir, record["run_id"], config, specs, lock=lock, resumed=True)
    _drop_incomplete_configurations(run)
    _read_done(run)
    _drop_orphan_samples(run)
    return run


def _read_csv(path: Path, fields: tuple[str, ...]) -> tuple[list[list[str]], bool]:
    """The complete records of a CSV file written by CsvAppender, and whether anything was
    left out (a last line cut short, a record of the wrong length)."""
    if not path.exists():
        return [], False
    text = path.read_text(encoding="utf-8")
    cut = bool(text) and not text.endswith("\n")
    if cut:
        text = text[:text.rfind("\n") + 1]
    records = list(csv.reader(io.StringIO(text)))
    if not records:
        return [], cut
    if tuple(records[0]) != fields:
        raise UsageError(f"{path} has other columns than this version writes; start a new run")
    body = [r for r in records[1:] if len(r) == len(fields)]
    return body, cut or len(body) != len(records) - 1


def _rewrite_csv(path: Path, fields: tuple[str, ...], records: list[list[str]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)  # the dialect csv.DictWriter used to append them
    writer.writerow(fields)
    writer.writerows(records)
    write_text_atomic(path, buffer.getvalue())


def _drop_incomplete_configurations(run: OpenRun) -> None:
    """Keep the configurations whose rows are all on disk; a part of one (only a crash
    can leave that) is removed, so that it is measured again in full."""
    path = run.out_dir / RESULTS_FILE
    records, changed = _read_csv(path, FIELDS)
    index = {name: i for i, name in enumerate(FIELDS)}
    groups: dict[tuple[str, str], list[list[str]]] = defaultdict(list)
    for record in records:
        if record[index["run_id"]] != run.run_id:
            raise UsageError(f"{path} holds rows of run {record[index['run_id']]}, not of "
                             f"{run.run_id}")
        groups[(record[index["repeat"]], record[index["config_id"]])].append(record)
    kept = []
    for group in groups.values():
        if sorted(r[index["phase"]] for r in group) == sorted(TIMED_PHASES):
            kept.extend(group)
        else:
            changed = True
    if changed:
        _rewrite_csv(path, FIELDS, kept)


def _read_done(run: OpenRun) -> None:
    """The configurations on disk, through the reader every other consumer uses; those that
    ran out of memory make the larger batches of their group skipped."""
    if not (run.out_dir / RESULTS_FILE).exists():
        return
    rows = read_results(run.out_dir / RESULTS_FILE, allow_empty=True)
    configs = rows.drop_duplicates(["repeat", "config_id"])
    run.done = set(zip(configs["repeat"].tolist(), configs["config_id"].tolist()))
    out_of_memory = set(configs.loc[configs["status"] == OOM, "config_id"])
    for spec in run.specs:
        if config_id(spec) in out_of_memory:
            run.oom.record(spec)


def _drop_orphan_samples(run: OpenRun) -> None:
    """Samples of a configuration whose results are not on disk would be written again
    when it is measured again; they go."""
    path = run.out_dir / SAMPLES_FILE
    records, changed = _read_csv(path, SAMPLE_FIELDS)
    repeat, cid = SAMPLE_FIELDS.index("repeat"), SAMPLE_FIELDS.index("config_id")
    kept = [r for r in records if (int(r[repeat]), r[cid]) in run.done]
    if changed or len(kept) != len(records):
        _rewrite_csv(path, SAMPLE_FIELDS, kept)
