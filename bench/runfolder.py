"""The run folder on disk: preparing it, recording the sweep in it, and reading back what a
previous, interrupted invocation left there so that ``--resume`` can continue it.

Besides ``results.csv``, ``samples.csv`` and ``env.json``, a run folder holds ``sweep.json``:
the sweep as resolved when the run started (devices as `auto` resolved them), the torch
version and the name of each device, and for a --distributed run its world size. A resume
measures the same sweep, and refuses when torch, a device or the world size differ, since
its figures would not be comparable with those on disk.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import torch

from bench.atomic import write_json_atomic, write_text_atomic
from bench.config import SweepConfig, expand, sweep_from_mapping, sweep_to_mapping
from bench.devices import device_name
from bench.errors import UsageError
from bench.failures import OomLimits
from bench.results import config_id
from bench.schema import FIELDS, OOM, RESULTS_FILE, SAMPLE_FIELDS, SAMPLES_FILE, SWEEP_FILE
from bench.timers import TIMED_PHASES
from multinet.scenarios import SCENARIOS
from multinet.step import StepSpec

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, one run per folder is up to the user
    fcntl = None

RUN_FILES = (RESULTS_FILE, SWEEP_FILE)  # either one means the folder already holds a run
LOCK_FILE = ".lock"


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


def write_sweep_record(out_dir: Path, run_id: str, config: SweepConfig, specs: list[StepSpec],
                       torch_version: str, device_names: dict[str, str],
                       world_size: int | None = None) -> None:
    """``world_size``: a --distributed run's, whose devices are recorded by kind (`cuda`:
    each rank its own)."""
    devices = list(dict.fromkeys(spec.device for spec in specs))
    record = {"run_id": run_id, "torch_version": torch_version, "device_names": device_names}
    if world_size is not None:
        devices = list(dict.fromkeys(torch.device(d).type for d in devices))
        record["distributed"] = {"world_size": world_size}
    write_json_atomic(out_dir / SWEEP_FILE, {**record,
                                             "sweep": sweep_to_mapping(config, devices)})


@dataclass
class PreviousRun:
    """What a resume continues: the run's identity and sweep, and what is on disk."""

    out_dir: Path
    run_id: str
    config: SweepConfig
    specs: list[StepSpec]
    rows: list[dict[str, Any]] = field(default_factory=list)  # complete configurations only
    done: set[tuple[int, str]] = field(default_factory=set)  # (repeat, config_id)
    oom: OomLimits = field(default_factory=OomLimits)


def read_sweep_record(out_dir: Path) -> dict[str, Any]:
    """The run's ``sweep.json``; a UsageError where there is none to read."""
    where = f"--resume {out_dir}"
    if not out_dir.is_dir():
        raise UsageError(f"{where}: no such folder")
    try:
        record = json.loads((out_dir / SWEEP_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{where}: no {SWEEP_FILE}, so this is not a run folder that can "
                         f"be resumed") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{where}: {SWEEP_FILE} is unreadable ({type(exc).__name__}: "
                         f"{exc})") from None
    missing = [key for key in ("run_id", "torch_version", "device_names", "sweep")
               if not isinstance(record, dict) or key not in record]
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


def open_previous_run(out_dir: Path, record: dict[str, Any], *,
                      local_rank: int | None = None,
                      world_size: int | None = None) -> PreviousRun:
    """Check that this process can continue the run comparably (any reason it cannot is a
    UsageError), then read what it recorded. The caller holds the folder's lock. Under
    --distributed, ``local_rank`` and ``world_size`` are rank 0's."""
    check_world(out_dir, record, world_size)
    stored_torch, stored_names = record["torch_version"], record["device_names"]
    if stored_torch != torch.__version__:
        raise UsageError(f"cannot resume {out_dir}: it was measured with torch {stored_torch}, "
                         f"this is torch {torch.__version__}; start a new run")
    sweep = record["sweep"]
    for name in sweep.get("scenarios", []) if isinstance(sweep, dict) else []:
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
    run_id = record["run_id"]
    run = PreviousRun(out_dir, run_id, config, specs)
    _read_results(run)
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


def _read_results(run: PreviousRun) -> None:
    """Keep the configurations whose rows are all on disk; a part of one (only a crash
    can leave that) is removed, so that it is measured again in full."""
    path = run.out_dir / RESULTS_FILE
    records, changed = _read_csv(path, FIELDS)
    index = {name: i for i, name in enumerate(FIELDS)}
    groups: dict[tuple[int, str], list[list[str]]] = defaultdict(list)
    for record in records:
        if record[index["run_id"]] != run.run_id:
            raise UsageError(f"{path} holds rows of run {record[index['run_id']]}, not of "
                             f"{run.run_id}")
        groups[(int(record[index["repeat"]]), record[index["config_id"]])].append(record)
    kept, out_of_memory = [], set()
    for key, group in groups.items():
        if sorted(r[index["phase"]] for r in group) != sorted(TIMED_PHASES):
            changed = True
            continue
        kept.extend(group)
        run.done.add(key)
        if group[0][index["status"]] == OOM:
            out_of_memory.add(key[1])
    for spec in run.specs:
        if config_id(spec) in out_of_memory:
            run.oom.record(spec)
    if changed:
        _rewrite_csv(path, FIELDS, kept)
    run.rows = [_typed(dict(zip(FIELDS, record))) for record in kept]


def _typed(row: dict[str, Any]) -> dict[str, Any]:
    # the summary tells a noisy measurement by `is True`, as the rows the runner returns
    row["noisy"] = row["noisy"] == "True"
    return row


def _drop_orphan_samples(run: PreviousRun) -> None:
    """Samples of a configuration whose results are not on disk would be written again
    when it is measured again; they go."""
    path = run.out_dir / SAMPLES_FILE
    records, changed = _read_csv(path, SAMPLE_FIELDS)
    repeat, cid = SAMPLE_FIELDS.index("repeat"), SAMPLE_FIELDS.index("config_id")
    kept = [r for r in records if (int(r[repeat]), r[cid]) in run.done]
    if changed or len(kept) != len(records):
        _rewrite_csv(path, SAMPLE_FIELDS, kept)
