"""Adding run folders to the store: each run once, whole, and never changed afterwards.

A run folder is read by the one typed reader (``bench/analyze/reader.py``), which refuses a
damaged folder or one of another results schema in one line. Its rows, samples and
environment then go in in one transaction: a failure half way leaves the store as it was.
A run is known by its ``run_id`` and a fingerprint of its files: adding it again is a no-op,
while a different folder under a run_id already stored is refused, since a stored run is
never modified.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bench.analyze.reader import load_run
from bench.history.store import Store, StoreError
from bench.history.tables import table_columns
from bench.schema import ENV_FILE, RESULTS_FILE, SAMPLES_FILE

ADDED, ALREADY = "added", "already in the store"


@dataclass(frozen=True)
class Outcome:
    path: Path
    run_id: str
    what: str  # ADDED or ALREADY
    rows: int = 0
    samples: int = 0


def fingerprint(folder: Path) -> str:
    """sha256 over the files that make a run: its results, samples and environment."""
    digest = hashlib.sha256()
    for name in (RESULTS_FILE, SAMPLES_FILE, ENV_FILE):
        path = folder / name
        digest.update(name.encode() + b"\0")
        if path.exists():
            digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def run_record(run_id: str, env: dict, results: pd.DataFrame, print_: str) -> dict:
    """The row of ``runs`` for a run: what its environment says."""
    project = env.get("project") if isinstance(env.get("project"), dict) else {}
    devices = [d for d in results.get("device_name", pd.Series(dtype=str)).dropna().unique()
               if d]
    hostname = str(env.get("hostname") or (results["hostname"].iloc[0]
                                           if "hostname" in results and len(results) else ""))

    def text(key: str) -> str | None:
        value = env.get(key)  # a field that could not be read is a dict saying why
        return None if value in (None, "") or isinstance(value, (dict, list)) else str(value)

    return {"run_id": run_id, "fingerprint": print_,
            "added_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "started_at": text("started_at") or (str(results["started_at"].min())
                                                 if "started_at" in results else None),
            "hostname": hostname, "machine": hostname,
            "device_name": ", ".join(sorted(map(str, devices))) or None,
            "torch_version": text("torch_version") or (str(results["torch_version"].iloc[0])
                                                       if len(results) else None),
            "cuda_version": text("cuda_version"), "nvidia_driver": text("nvidia_driver"),
            "project_commit": (str(project.get("commit")) + ("+dirty" if project.get("dirty")
                                                             else ""))
            if project.get("commit") else None,
            "results_schema_version": int(results["schema_version"].iloc[0])
            if len(results) and "schema_version" in results else None,
            "env_json": json.dumps(env, sort_keys=True, default=str)}


def stored_fingerprint(store: Store, run_id: str) -> str | None:
    rows = store.execute("SELECT fingerprint FROM runs WHERE run_id = ?", (run_id,))
    return rows[0][0] if rows else None


def add_run(store: Store, folder: str | Path) -> Outcome:
    """Add one run folder; see the module's docstring."""
    folder = Path(folder)
    run = load_run(folder)  # refuses a damaged folder or another schema, in one line
    print_ = fingerprint(folder)
    results = run.results
    run_ids = sorted(set(results["run_id"].astype(str))) if len(results) else []
    if len(run_ids) != 1:
        raise StoreError(f"{folder}: a run folder holds one run; {RESULTS_FILE} has "
                         f"{len(run_ids)} run ids")
    run_id = run_ids[0]
    known = stored_fingerprint(store, run_id)
    if known is not None:
        return _known(folder, run_id, known, print_)
    samples = run.samples()
    try:
        with store.transaction():
            store.insert_frame("runs", pd.DataFrame([run_record(run_id, run.env, results,
                                                                print_)]))
            store.insert_frame("results", _columns_of(store, "results", results))
            store.insert_frame("samples", _columns_of(store, "samples", samples))
    except StoreError:
        # another process added the same run in the meantime: that is this add's outcome
        known = stored_fingerprint(store, run_id)
        if known is None:
            raise
        return _known(folder, run_id, known, print_)
    return Outcome(folder, run_id, ADDED, len(results), len(samples))


def _known(folder: Path, run_id: str, known: str, print_: str) -> Outcome:
    if known != print_:
        raise StoreError(f"{folder}: run {run_id} is already in the store with other "
                         "contents; a stored run is never modified (give the folder a new "
                         "run id to keep both)")
    return Outcome(folder, run_id, ALREADY)


def _columns_of(store: Store, table: str, df: pd.DataFrame) -> pd.DataFrame:
    """``df``'s columns that the table has, in the table's order."""
    have = table_columns(store, table)
    return df[[c for c in have if c in df.columns]]


def add_runs(store: Store, folders) -> list[Outcome]:
    """Add each folder in turn; the first that fails stops the rest (those before it stay
    added: each is a run of its own)."""
    return [add_run(store, folder) for folder in folders]
