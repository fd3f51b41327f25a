"""The run folder on disk: creating it for a new run, or reopening it to continue one.

Besides ``results.csv``, ``samples.csv`` and ``env.json``, a run folder holds ``sweep.json``:
the sweep as resolved when the run started (devices as `auto` resolved them), the torch
version and the name of each device, and for a --distributed run its world size. A resume
measures the same sweep, and refuses when torch, a device or the world size differ, since
its figures would not be comparable with those on disk. Both kinds of start end in an
``OpenRun`` that the one sweep loop (``bench/sweep/loop.py``) measures into.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import json
import re
import secrets
import shutil
import socket
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TextIO

import torch

from bench.analyze.reader import read_json_object
from bench.atomic import write_json_atomic
from bench.axes import SCENARIO, config_id
from bench.errors import RunFolderWriteError, UsageError
from bench.measure.configuration import now
from bench.measure.devices import device_name
from bench.measure.environment_capture import capture_environment
from bench.output_path import check_links
from bench.schema import ENV_FILE, NETWORKS_FILE, PLAN_KEY, RESULTS_FILE, SAMPLES_FILE, SWEEP_FILE
from bench.seal import DIGEST_KEY, check_seal, seal, sealed_run
from bench.secrets import hide_words
from bench.sweep.config import (MOST_WORKERS, SweepConfig, expand, expand_all,
                                sweep_from_mapping, sweep_to_mapping)
from bench.sweep.failures import OomLimits
from bench.sweep.folder_lock import LOCK_FILE, hold_lock
from bench.sweep.repair import repair
from bench.sweep.turns import pinned_cpus, shared_seed
from multinet.scenarios import SCENARIOS
from multinet.step import StepSpec

# any one means the folder already holds a run
RUN_FILES = (RESULTS_FILE, SWEEP_FILE, NETWORKS_FILE)
# What sweep.json must hold for a run to be continued, and of what type.
RECORD_KEYS = {"run_id": str, "torch_version": str, "device_names": dict, "sweep": dict}
KIND_NAMES = {str: "text", dict: "a table (a JSON object)"}


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
    created: bool = False  # the folder did not exist before this run
    env: dict[str, Any] | None = None  # a resumed run's env.json, as read before measuring

    def close(self) -> None:
        if self.lock is not None:
            self.lock.close()
            self.lock = None

    def abandon(self) -> None:
        """Take back what a new run wrote before it measured anything, so that the same
        command can be run again: its files, and its folder if it made it."""
        self.close()
        for name in (SWEEP_FILE, ENV_FILE, RESULTS_FILE, SAMPLES_FILE, NETWORKS_FILE, LOCK_FILE):
            with contextlib.suppress(OSError):  # what cannot go stays, as it was
                (self.out_dir / name).unlink(missing_ok=True)
        if self.created:
            shutil.rmtree(self.out_dir, ignore_errors=True)


def prepare_out_dir(out_dir: Path, *, new: bool = True) -> IO | None:
    """Create the run folder, or say in one line why it cannot be written; then hold its
    lock for as long as this process lives, so two processes never append to one run.

    A new run refuses a folder that already holds one: appending would mix two runs."""
    option = "--out-dir" if new else "--resume"  # the option the user gave the folder with
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"{option} {out_dir} is a file, not a folder")
    check_links(out_dir, option)  # the system would say "File exists"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"{option} {out_dir} is not writable: {exc.strerror}") from None
    lock = hold_lock(out_dir)
    if new and any((out_dir / name).exists() for name in RUN_FILES):
        raise UsageError(f"--out-dir {out_dir} already holds a run; continue it with "
                         f"--resume {out_dir}, or choose another folder")
    return lock


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
    created = not out_dir.exists()
    run = OpenRun(out_dir, run_id, config, specs, lock=prepare_out_dir(out_dir),
                  created=created)
    for notice in config.notices:
        print(f"note: {notice}", file=stream)
    for reason, count in Counter(reason for _, reason in not_attempted).items():
        print(f"note: {count} configuration(s) not attempted: {reason}", file=stream)
    try:
        write_sweep_record(run, world_size)
    except OSError as exc:
        run.abandon()
        raise RunFolderWriteError(f"cannot write {out_dir / SWEEP_FILE}: "
                                  f"{exc.strerror or exc}; nothing was measured") from None
    return run


def write_sweep_record(run: OpenRun, world_size: int | None = None) -> None:
    """``world_size``: a --distributed run's, whose devices are recorded by kind (`cuda`:
    each rank its own). Sealed (``bench/seal.py``): a resume measures it as written."""
    devices = list(dict.fromkeys(spec.device for spec in run.specs))
    record = {"run_id": run.run_id, "torch_version": torch.__version__,
              "device_names": {device: device_name(device) for device in devices}}
    if world_size is not None:
        devices = list(dict.fromkeys(torch.device(d).type for d in devices))
        record["distributed"] = {"world_size": world_size}
    plan = list(dict.fromkeys(config_id(spec) for spec in run.specs))
    write_json_atomic(run.out_dir / SWEEP_FILE,
                      seal({**record, "sweep": sweep_to_mapping(run.config, devices),
                            PLAN_KEY: plan}))


def record_environment(run: OpenRun, argv: list[str],
                       ranks: list[dict[str, Any]] | None = None) -> None:
    """env.json: the environment as first captured; a resume is listed in it instead.
    ``ranks``: under --distributed, each rank's host and devices. Sealed, as sweep.json."""
    path = run.out_dir / ENV_FILE
    if run.resumed:  # gone (a crash before it was written): this resume's environment
        env = run.env if run.env is not None else capture_environment(run.run_id, argv, ranks,
                                                                      shared_seed(), pinned_cpus())
        env.setdefault("resumes", []).append(
            {"started_at": now(), "command_line": hide_words(["bench", *argv])})
    else:
        env = capture_environment(run.run_id, argv, ranks, shared_seed(), pinned_cpus())
    try:
        write_json_atomic(path, seal(env))
    except OSError as exc:
        if not run.resumed:
            run.abandon()
        raise RunFolderWriteError(f"cannot write {path}: {exc.strerror or exc}; nothing was "
                                  "measured") from None


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
        check_seal(record, out_dir / SWEEP_FILE, "; start a new run",
                   sealed=PLAN_KEY in record)  # this writer seals what it plans
    except UsageError as exc:
        raise UsageError(f"{where}: {exc}") from None
    if not sealed_run(record) and sealed_env(out_dir):
        # a writer that seals one record seals both: this one lost its digest and its plan
        # by hand, and would be measured as edited
        raise UsageError(f"{where}: {SWEEP_FILE} has no digest and no {PLAN_KEY!r}, though "
                         f"the {ENV_FILE} beside it is sealed: it was edited after the run "
                         "wrote it; start a new run")
    for key, kind in RECORD_KEYS.items():
        if key not in record:
            raise UsageError(f"{where}: {SWEEP_FILE} has no {key!r}")
        if not isinstance(record[key], kind):
            raise UsageError(f"{where}: {SWEEP_FILE}'s {key!r} is not {KIND_NAMES[kind]}: "
                             f"{record[key]!r:.60}")
    if not all(isinstance(v, str) for v in record["device_names"].values()):
        raise UsageError(f"{where}: {SWEEP_FILE}'s 'device_names' must map devices to names")
    world = record.get("distributed")
    if world is not None and not (isinstance(world, dict)
                                  and isinstance(world.get("world_size"), int)):
        raise UsageError(f"{where}: {SWEEP_FILE}'s 'distributed' must hold a 'world_size'")
    return record


def sealed_env(out_dir: Path) -> bool:
    """Whether the run's env.json carries a digest (a damaged one is refused later)."""
    try:
        env = json.loads((out_dir / ENV_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(env, dict) and DIGEST_KEY in env


def read_env_record(out_dir: Path, record: dict[str, Any]) -> dict[str, Any] | None:
    """A resumed run's env.json, which the resume adds itself to; None where a crash came
    before it was written. A damaged one is refused rather than replaced: it is the only
    record of the environment the run began in. ``record``: the run's sweep.json, which
    says whether env.json must be sealed."""
    run_id = record["run_id"]
    path = out_dir / ENV_FILE
    if not path.exists():
        return None
    hint = "delete it to resume, recording this machine's environment instead"
    try:
        env = read_json_object(path, "an environment record")
    except UsageError as exc:
        raise UsageError(f"{exc} ({hint})") from None
    check_seal(env, path, f" ({hint})", sealed=sealed_run(record))
    if not isinstance(env.get("resumes", []), list):
        raise UsageError(f"{path}: 'resumes' is not a list: the file is damaged ({hint})")
    if "run_id" in env and env["run_id"] != run_id:
        raise mixed_records(out_dir, run_id, str(env["run_id"]), hint)
    if "torch_version" in env and env["torch_version"] != record["torch_version"]:
        # resealed by hand: the resume would measure under one torch what the record says
        # another measured, and only `history add` would find it, after the measuring
        raise UsageError(f"{path} records torch {str(env['torch_version'])!r:.40}, "
                         f"{SWEEP_FILE} torch {record['torch_version']}: the records of one "
                         f"run disagree ({hint})")
    return env


def mixed_records(out_dir: Path, sweep_id: str, env_id: str, hint: str) -> UsageError:
    """sweep.json and env.json of two runs: the foreign one is the one whose run is not
    results.csv's (the rows the run measured); with no rows to tell, both are named."""
    sweep_path, env_path = out_dir / SWEEP_FILE, out_dir / ENV_FILE
    measured = results_run_ids(out_dir)
    if measured == {env_id}:
        return UsageError(f"{sweep_path} is of run {sweep_id!r:.60}, not of {env_id} "
                          f"({ENV_FILE}'s and {RESULTS_FILE}'s): it belongs to another run "
                          "folder; put this run's back")
    if measured == {sweep_id}:
        return UsageError(f"{env_path} is of run {env_id!r:.60}, not of {sweep_id}: it "
                          f"belongs to another run folder ({hint})")
    return UsageError(f"{sweep_path} (run {sweep_id!r:.60}) and {env_path} (run "
                      f"{env_id!r:.60}) are of two runs: one of them belongs to another run "
                      "folder")


def results_run_ids(out_dir: Path) -> set[str]:
    """The run ids results.csv's rows name; none where it cannot be read."""
    try:
        with open(out_dir / RESULTS_FILE, newline="") as f:
            return {row.get("run_id") or "" for row in csv.DictReader(f)}
    except (OSError, csv.Error, UnicodeDecodeError):
        return set()


def check_plan(out_dir: Path, record: dict[str, Any], specs: list[StepSpec]) -> None:
    """The sweep must expand here to the configurations the run set out to measure (a
    record written before they were listed is taken as it is)."""
    plan = record.get(PLAN_KEY)
    if plan is None:
        return
    here = list(dict.fromkeys(config_id(spec) for spec in specs))
    if not isinstance(plan, list) or sorted(map(str, plan)) != sorted(here):
        raise UsageError(f"cannot resume {out_dir}: its sweep expands here to other "
                         f"configurations than the {len(plan) if isinstance(plan, list) else 0}"
                         " the run set out to measure; start a new run")


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
               world_size: int | None = None, worker: int | None = None) -> OpenRun:
    """The run in ``out_dir``, to continue it: lock the folder, check that this process can
    continue it comparably (any reason it cannot is a UsageError), remove what a crash left
    half written, and read what is on disk. Under --distributed, ``local_rank`` and
    ``world_size`` are rank 0's. ``worker``: one of the run's workers, whose coordinator
    holds the lock and has repaired the folder; it only reads what is there."""
    out_dir = Path(out_dir)
    record = read_sweep_record(out_dir)
    check_world(out_dir, record, world_size)
    lock = prepare_out_dir(out_dir, new=False) if worker is None else None
    try:
        return _reopen(out_dir, record, local_rank, lock, worker is not None)
    except BaseException:
        if lock is not None:
            lock.close()
        raise


def _reopen(out_dir: Path, record: dict[str, Any], local_rank: int | None,
            lock: IO | None, worker: bool = False) -> OpenRun:
    stored_torch, stored_names = record["torch_version"], record["device_names"]
    if stored_torch != torch.__version__:
        raise UsageError(f"cannot resume {out_dir}: it was measured with torch {stored_torch}, "
                         f"this is torch {torch.__version__}; start a new run")
    sweep = record["sweep"]
    names = sweep.get(SCENARIO.sweep_key, [])
    for name in names if isinstance(names, list) else []:  # not a list: refused just below
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
    check_plan(out_dir, record, specs)
    run = OpenRun(out_dir, record["run_id"], config, specs, lock=lock, resumed=True,
                  env=read_env_record(out_dir, record))
    # a run of workers numbers its passes across them (bench/sweep/workers.py)
    passes = config.repeats * (config.workers or MOST_WORKERS)
    plan = {(str(r), config_id(spec)) for r in range(1, passes + 1) for spec in specs}
    run.done, out_of_memory = repair(out_dir, run.run_id, plan,
                                     scattered=config.workers != 1, read_only=worker)
    for spec in specs:  # what ran out of memory makes the larger batches of its group skipped
        if config_id(spec) in out_of_memory:
            run.oom.record(spec)
    return run
