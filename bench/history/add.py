"""Adding run folders to the store: each run once, whole, and never changed afterwards.

A run folder is read and checked by ``bench/history/record.py`` (one run, complete, typed
by the schema, as its records say), which refuses it in one line otherwise. Its rows,
samples and environment then go in in one transaction: a failure half way leaves the store
as it was. A run is known by its ``run_id`` and the fingerprint of its contents: adding it
again is a no-op, while different contents under a run_id already stored are refused, since
a stored run is never modified. Every row that goes in carries the run's own id, so nothing
a folder holds can add to another run's rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bench.history.record import RunRecord, read_record
from bench.history.store import Store, StoreError, look_into
from bench.history.store_schema import table_columns

ADDED, ALREADY = "added", "already in the store"


class StoredOtherwise(StoreError):
    """The store holds the run under its id with other contents: no later add of this
    folder can succeed, so nothing says one will."""

    final = True


@dataclass(frozen=True)
class Outcome:
    path: Path
    run_id: str
    what: str  # ADDED or ALREADY
    rows: int = 0
    samples: int = 0


def stored_fingerprint(store: Store, run_id: str) -> str | None:
    rows = store.execute("SELECT fingerprint FROM runs WHERE run_id = ?", (run_id,))
    return rows[0][0] if rows else None


def stored_fingerprints(given: str | None, schema: str | None,
                        run_ids: list[str]) -> dict[str, str]:
    """The fingerprints of those of ``run_ids`` the store holds, read without writing
    anything (nor bringing the store up to date): none where it has no tables yet."""
    store = look_into(given, schema)
    if store is None:
        return {}
    with store:
        return {run_id: known for run_id in dict.fromkeys(run_ids)
                if (known := stored_fingerprint(store, run_id)) is not None}


def add_run(store: Store, folder: str | Path | RunRecord) -> Outcome:
    """Add one run folder (or its record, read already); see the module's docstring."""
    record = folder if isinstance(folder, RunRecord) else read_record(folder)
    known = stored_fingerprint(store, record.run_id)
    if known is not None:
        return known_outcome(record, known)
    try:
        with store.transaction():
            store.insert_frame("runs", pd.DataFrame([record.runs_row()]))
            store.insert_frame("results", _columns_of(store, "results", record.results))
            store.insert_frame("samples", _columns_of(store, "samples", record.samples))
    except StoreError:
        # another process added the same run in the meantime: that is this add's outcome
        known = stored_fingerprint(store, record.run_id)
        if known is None:
            raise
        return known_outcome(record, known)
    return Outcome(record.folder, record.run_id, ADDED, len(record.results),
                   len(record.samples))


def known_outcome(record: RunRecord, known: str) -> Outcome:
    if known not in (record.fingerprint, record.file_fingerprint):
        # no edit of the folder can store it beside the run: a run id renamed breaks the
        # seals of env.json and sweep.json, and contents changed are not what was measured
        raise StoredOtherwise(f"{record.folder}: run {record.run_id} is already in the store "
                              "with other contents; a stored run never changes, and this "
                              "folder is not what that run measured: `python -m bench run` "
                              "measures a new run, which is stored beside it")
    return Outcome(record.folder, record.run_id, ALREADY)


def _columns_of(store: Store, table: str, df: pd.DataFrame) -> pd.DataFrame:
    """``df``'s columns that the table has, in the table's order."""
    have = table_columns(store, table)
    return df[[c for c in have if c in df.columns]]
