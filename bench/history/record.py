"""A run folder as the history store takes it: read once, checked across its files, typed by
the schema, and known by its contents.

Every store is handed the same record, so DuckDB and PostgreSQL take the same values (an
integer column goes in as integers, whatever its CSV spelled: pandas writes an integer
column with an empty cell as ``2.0``). What the record checks, beyond the one typed reader
(``bench/analyze/reader.py``: each column's type, statuses from the known set, each unit
once):

- one run: results.csv holds one run id, and samples.csv, env.json and sweep.json name that
  one, so a folder cannot add rows under another run's id;
- samples belong to rows results.csv records as measured;
- sweep.json and env.json are what the run wrote (their seals, ``bench/seal.py``);
- the run is complete: every configuration sweep.json planned is in results.csv, in every
  repeat, each with one row per phase. An interrupted run is not stored in part; the ``run --resume`` that completes it
  makes a run that can be, never refused for an earlier part of itself. (A run folder from
  before sweep.json listed its plan, or one imported without a sweep, is taken as whole.)

A run is known by its ``fingerprint``: sha256 over its typed rows (in the order of their
units) and its environment (less the resumes it lists, which continue the run without
changing it, and the seal). The same run written again is the same; a run whose values
differ is another, and a stored run is never changed for it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from bench.analyze.reader import (RESULTS_UNIT, SAMPLES_UNIT, load_run, read_samples,
                                  untimed_phases)
from bench.analyze.run_files import check_one_run, one_run_id
from bench.axes import DEVICE
from bench.errors import UsageError
from bench.sweep.known_values import check_known_values
from bench.history.status_rows import check_rows_match_status
from bench.history.written_whole import (check_columns, check_written_whole,
                                         refuse_negative_counts, refuse_nothing_measured)
from bench.schema import (COLUMNS, ENV_FILE, NOT_OK, OK, PLAN_KEY, REQUIRED_PHASES,
                          RESULTS_FILE, SAMPLE_COLUMNS, SAMPLES_FILE, SWEEP_FILE, WHOLE_PHASES,
                          Column)
from bench.sweep.folder_lock import LOCK_FILE, held_by_a_sweep
from bench.seal import DIGEST_KEY, check_seal, sealed_run
from bench.secrets import hide_all

# how the store holds each kind of column: integers may be empty, so pandas' nullable ones
STORE_DTYPES = {"int": "Int64", "float": "float64", "bool": "bool", "str": "object"}


@dataclass(frozen=True)
class RunRecord:
    folder: Path
    run_id: str
    env: dict[str, Any]  # env.json, any password in it masked
    results: pd.DataFrame  # every column of bench/schema.py, typed for the store
    samples: pd.DataFrame
    fingerprint: str
    file_fingerprint: str  # what stores made before content fingerprints recorded

    def runs_row(self) -> dict[str, Any]:
        """The row of ``runs``: who, where and under what, as the environment says."""
        env, results = self.env, self.results
        project = env.get("project") if isinstance(env.get("project"), dict) else {}
        devices = sorted({str(d) for d in results["device_name"].dropna() if d})
        hostname = str(env.get("hostname") or results["hostname"].iloc[0])

        def text(key: str) -> str | None:
            value = env.get(key)  # a field that could not be read is a dict saying why
            return None if value in (None, "") or isinstance(value, (dict, list)) else str(value)

        return {"run_id": self.run_id, "fingerprint": self.fingerprint,
                "added_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                "started_at": text("started_at") or str(results["started_at"].min()),
                "hostname": hostname, "machine": hostname,
                "device_name": ", ".join(devices) or None,
                "torch_version": text("torch_version") or str(results["torch_version"].iloc[0]),
                "cuda_version": text("cuda_version"), "nvidia_driver": text("nvidia_driver"),
                "project_commit": (str(project["commit"]) + ("+dirty" if project.get("dirty")
                                                            else ""))
                if project.get("commit") else None,
                "results_schema_version": int(results["schema_version"].iloc[0]),
                "env_json": json.dumps(env, sort_keys=True, default=str)}


def read_record(folder: str | Path) -> RunRecord:
    """The record of a run folder, or a UsageError in one line saying what is wrong."""
    folder = Path(folder)
    if held_by_a_sweep(folder):  # its files grow under a reader: no check of them would hold
        raise UsageError(f"{folder}: the run is still in progress (another process measures "
                         f"it now and holds {folder / LOCK_FILE}); add it once that run "
                         "finishes")
    run = load_run(folder, allow_empty=True)  # refuses a damaged results.csv, or another schema
    if run.results.empty:
        refuse_nothing_measured(folder, run.sweep)
    run_id = one_run_id(folder, run.results)
    refuse_negative_counts(folder / RESULTS_FILE, run.results, COLUMNS)
    check_records(folder, run.env, run.sweep, run_id,
                  by_workers=bool(run.results["worker"].notna().any()))
    samples = read_samples(folder / SAMPLES_FILE, allow_empty=not run.results["status"].eq(OK)
                           .any())
    refuse_negative_counts(folder / SAMPLES_FILE, samples, SAMPLE_COLUMNS)
    planned = PLAN_KEY in (run.sweep or {})
    if planned:
        check_columns(folder)
    check_rows_match_status(folder / RESULTS_FILE, planned=planned)
    check_known_values(folder / RESULTS_FILE, run.results, run.sweep, workers_of(run.env))
    check_one_torch(folder, run.results, run.env, run.sweep)  # once each column is there
    if planned:
        check_written_whole(folder / RESULTS_FILE, run.results)
    check_samples(folder, run.results, samples, run_id)
    check_complete(folder, run.results, run.sweep, run_id, workers_of(run.env))
    results = store_types(run.results, COLUMNS)
    samples = store_types(samples, SAMPLE_COLUMNS)
    env = hide_all(run.env)
    fingerprint = content_fingerprint(results, samples, env)  # as stores have known runs
    return RunRecord(folder, run_id, env, unmeasured_flags_empty(results), samples,
                     fingerprint, file_fingerprint(folder))


def check_records(folder: Path, env: dict[str, Any], sweep: dict[str, Any] | None,
                  run_id: str, by_workers: bool = False) -> None:
    """env.json and sweep.json: as the run wrote them, and of this run."""
    if (DIGEST_KEY in env or by_workers) and PLAN_KEY not in (sweep or {}):  # a sealed
        # env.json, or rows that name their worker: written by a sweep, whose sweep.json
        # plans what the run measures; without that plan, a part could pass for the whole
        lost = "is missing" if sweep is None else f"has lost its {PLAN_KEY!r}"
        raise UsageError(f"{folder / SWEEP_FILE} {lost}: the run's sweep wrote it, with the "
                         "configurations it plans, and a run is stored complete")
    sealed = sealed_run(sweep)  # a run that seals its records: each must carry its digest
    for name, record in ((ENV_FILE, env), (SWEEP_FILE, sweep or {})):
        check_seal(record, folder / name, sealed=sealed)
    check_one_run(folder, run_id, env, sweep)


def check_one_torch(folder: Path, results: pd.DataFrame, env: dict[str, Any],
                    sweep: dict[str, Any] | None = None) -> None:
    """Every row names the torch env.json records and the device sweep.json names for its
    device: a run is measured by one torch on devices of one name (a resume under another
    is refused), and a row edited to another would be stored as that version's or that
    GPU's. (Not the host: a run resumed on another node of a cluster, with the same
    devices, rightly names both.)"""
    device_names = (sweep or {}).get("device_names") or {}
    expected = {"torch_version": pd.Series(env.get("torch_version"), index=results.index),
                "device_name": results[DEVICE.name].map(device_names)}
    for column, wanted in expected.items():
        recorded = wanted.notna()  # an imported suite's records may not say
        given = results[column].astype(str)
        other = (recorded & given.ne(wanted.astype(str))).to_numpy()
        if other.any():
            line = int(other.argmax())
            record = ENV_FILE if column != "device_name" else \
                f"{SWEEP_FILE} (for {str(results[DEVICE.name].iloc[line])!r:.20})"
            raise UsageError(f"{folder / RESULTS_FILE}: line {line + 2}: {column} is "
                             f"{given.iloc[line]!r:.40}, but {record} records "
                             f"{str(wanted.iloc[line])!r:.40}: a run is measured by one torch, "
                             "on devices named once")


def check_samples(folder: Path, results: pd.DataFrame, samples: pd.DataFrame,
                  run_id: str) -> None:
    """Each sample is of this run, and of a row results.csv records as measured."""
    path = folder / SAMPLES_FILE
    stranger = samples["run_id"].astype(str).ne(run_id).to_numpy()
    if stranger.any():
        line = int(stranger.argmax())
        raise UsageError(f"{path}: line {line + 2} holds a sample of run "
                         f"{str(samples['run_id'].iloc[line])!r:.60}, not of {run_id} "
                         f"({RESULTS_FILE}'s)")
    key = ["repeat", "config_id", "phase"]
    measured = results.loc[(results["status"] == OK) & ~untimed_phases(results),
                           key].drop_duplicates()
    sampled = measured.merge(samples[key].drop_duplicates(), on=key, how="left",
                             indicator=True)["_merge"].eq("left_only").to_numpy()
    if sampled.any():
        row = measured.iloc[int(sampled.argmax())]
        raise UsageError(f"{folder / RESULTS_FILE} records {row['config_id']} {row['phase']} "
                         f"(repeat {row['repeat']}) as measured, but {SAMPLES_FILE} holds none "
                         "of its samples: `python -m bench run --resume "
                         f"{folder}` measures it again")
    measured = results.loc[results["status"] == OK, key].drop_duplicates()
    found = samples[key].merge(measured, on=key, how="left", indicator=True)["_merge"]
    orphan = found.eq("left_only").to_numpy()
    if orphan.any():
        row = samples.iloc[int(orphan.argmax())]
        raise UsageError(f"{path}: line {int(orphan.argmax()) + 2} holds samples of "
                         f"{row['config_id']} {row['phase']} (repeat {row['repeat']}), which "
                         f"{RESULTS_FILE} does not record as measured")
    # each measured phase has as many samples as its row counted: a phase that lost some
    # would be stored with figures its samples no longer give
    counted = results.loc[(results["status"] == OK) & ~untimed_phases(results),
                          [*key, "n_samples"]]
    held = samples.groupby(key, sort=False).size().rename("held").reset_index()
    both = counted.merge(held, on=key, how="left")
    uncounted = both["n_samples"].isna().to_numpy()
    if uncounted.any():
        row = both.iloc[int(uncounted.argmax())]
        raise UsageError(f"{folder / RESULTS_FILE}: n_samples is empty on the measured row of "
                         f"{row['config_id']} {row['phase']} (repeat {row['repeat']}): a "
                         "measured phase counts its samples")
    short = both["held"].fillna(0).ne(both["n_samples"]).to_numpy()
    if short.any():
        row = both.iloc[int(short.argmax())]
        raise UsageError(f"{path} holds {int(row['held'])} samples of {row['config_id']} "
                         f"{row['phase']} (repeat {row['repeat']}), where {RESULTS_FILE} "
                         f"counted {int(row['n_samples'])}: samples were lost or added; "
                         f"`python -m bench run --resume {folder}` measures it again")


def workers_of(env: dict[str, Any] | None) -> int:
    """The worker processes that measured the run (env.json's ``workers``), 1 where none
    were recorded: each measured ``repeats`` passes of its own (``bench/sweep/workers.py``)."""
    workers = (env or {}).get("workers")
    count = workers.get("count") if isinstance(workers, dict) else None
    return count if isinstance(count, int) and not isinstance(count, bool) and count >= 1 \
        else 1


def check_complete(folder: Path, results: pd.DataFrame, sweep: dict[str, Any] | None,
                   run_id: str, workers: int = 1) -> None:
    """Every configuration the run planned, in every pass of every worker, each with all
    of its phase rows, and nothing else."""
    missing, wanted = left_to_measure(folder, results, sweep, workers)
    if missing:
        raise UsageError(f"{folder}: run {run_id} is not complete ({missing} of {wanted} "
                         "configurations not measured yet); `python -m bench run --resume "
                         f"{folder}` completes it, and a run is stored once complete")


def left_to_measure(folder: Path, results: pd.DataFrame, sweep: dict[str, Any] | None,
                    workers: int = 1) -> tuple[int, int]:
    """How many of the (pass, configuration) pairs the run planned it has not measured,
    and how many it planned (0, 0 for a run that recorded no plan); rows that cannot be
    of the plan (a configuration in part, one it did not plan) are refused as damage."""
    plan = (sweep or {}).get(PLAN_KEY)
    if plan is None:
        return 0, 0
    phases = results.groupby(["repeat", "config_id"], sort=False)["phase"].agg(list)
    partial = next(((key, rows) for key, rows in phases.items()
                    if sorted(rows) not in WHOLE_PHASES), None)
    if partial is not None:
        (repeat, config), rows = partial
        raise UsageError(f"{folder / RESULTS_FILE}: {config} (repeat {repeat}) has "
                         f"{len(rows)} phase rows ({', '.join(sorted(rows))}), not one per "
                         f"phase ({', '.join(REQUIRED_PHASES)}): the file is damaged")
    settings = sweep.get("sweep") if isinstance(sweep.get("sweep"), dict) else {}
    repeats = settings.get("repeats")
    if not (isinstance(plan, list) and all(isinstance(c, str) for c in plan)
            and isinstance(repeats, int) and repeats >= 1):
        raise UsageError(f"{folder / SWEEP_FILE}: its {PLAN_KEY!r} and repeats do not say "
                         "what the run set out to measure")
    wanted = {(r, c) for r in range(1, repeats * workers + 1) for c in plan}
    have = set(zip(results["repeat"].tolist(), results["config_id"].tolist()))
    extra = sorted(have - wanted)
    if extra:
        raise UsageError(f"{folder / RESULTS_FILE} holds {extra[0][1]} (repeat {extra[0][0]}), "
                         f"which {SWEEP_FILE} did not plan: the folder mixes two runs")
    return len(wanted - have), len(wanted)


def store_types(df: pd.DataFrame, columns: tuple[Column, ...]) -> pd.DataFrame:
    """``df``'s schema columns, each of the type the store holds it as."""
    return pd.DataFrame({c.name: df[c.name].astype(STORE_DTYPES[c.kind]) for c in columns},
                        index=df.index).reset_index(drop=True)


def unmeasured_flags_empty(results: pd.DataFrame) -> pd.DataFrame:
    """A flag of the figures (``noisy``) empty, not False, on a row not measured: the CSV
    leaves it empty there, and a reader takes an empty flag for False."""
    out = results.copy()
    not_ok = out["status"].ne(OK).to_numpy()
    for column in COLUMNS:
        if column.kind == "bool" and column.empty_when.startswith(NOT_OK):
            out[column.name] = out[column.name].astype("boolean").mask(not_ok)
    return out


def content_fingerprint(results: pd.DataFrame, samples: pd.DataFrame,
                        env: dict[str, Any]) -> str:
    digest = hashlib.sha256()
    for name, df, unit in (("results", results, RESULTS_UNIT),
                           ("samples", samples, SAMPLES_UNIT)):
        ordered = df.sort_values(unit, kind="stable")
        digest.update(f"{name}\0".encode() + ordered.to_csv(index=False, lineterminator="\n")
                      .encode("utf-8"))
    body = {key: value for key, value in env.items() if key not in ("resumes", DIGEST_KEY)}
    digest.update(b"env\0" + json.dumps(body, sort_keys=True, default=str).encode("utf-8"))
    return digest.hexdigest()


def file_fingerprint(folder: Path) -> str:
    """sha256 over the files as they are: what a run stored before was known by."""
    digest = hashlib.sha256()
    for name in (RESULTS_FILE, SAMPLES_FILE, ENV_FILE):
        path = folder / name
        digest.update(name.encode() + b"\0")
        if path.exists():
            digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()
