"""The history store's tables, and the migrations that bring a store up to date.

Three tables: ``runs`` (one row per run: who, where, under what, and a fingerprint of its
files), ``results`` (the rows of each run's results.csv) and ``samples`` (its raw samples).
A store records which migrations it has had in ``schema_migrations``; ``migrate`` applies the
missing ones in order, each in one transaction, when the store is opened. The columns of
``results`` and ``samples`` follow ``bench/schema.py``: a column added there (which the
results schema allows without a new version) is added to the store at its next opening;
anything else that changes is a numbered migration here.
"""

from __future__ import annotations

from collections.abc import Callable

from bench.history.errors import StoreError
from bench.schema import COLUMNS, SAMPLE_COLUMNS, Column

SQL_TYPES = {"str": "TEXT", "int": "BIGINT", "float": "DOUBLE PRECISION", "bool": "BOOLEAN"}

# What a run is known by, beyond its rows: read from env.json when the run is added.
RUN_COLUMNS = (
    ("run_id", "TEXT PRIMARY KEY"),
    ("fingerprint", "TEXT NOT NULL"),  # sha256 of its files: the same run, or another
    ("added_at", "TEXT NOT NULL"),
    ("started_at", "TEXT"),
    ("hostname", "TEXT"),
    ("machine", "TEXT"),  # hostname and device: one machine's history
    ("device_name", "TEXT"),
    ("torch_version", "TEXT"),
    ("cuda_version", "TEXT"),
    ("nvidia_driver", "TEXT"),
    ("project_commit", "TEXT"),
    ("results_schema_version", "BIGINT"),
    ("env_json", "TEXT"),
)


def _v1(store) -> None:
    store.execute(f"CREATE TABLE runs ({', '.join(f'{n} {t}' for n, t in RUN_COLUMNS)})")
    store.execute('CREATE TABLE results (run_id TEXT NOT NULL, "repeat" BIGINT NOT NULL, '
                  "config_id TEXT NOT NULL, phase TEXT NOT NULL, "
                  'PRIMARY KEY (run_id, "repeat", config_id, phase))')
    store.execute('CREATE TABLE samples (run_id TEXT NOT NULL, "repeat" BIGINT NOT NULL, '
                  "config_id TEXT NOT NULL, phase TEXT NOT NULL, iteration BIGINT NOT NULL)")
    store.execute("CREATE INDEX results_config ON results (config_id)")


# (version, what it does, the change): applied in order, each once.
MIGRATIONS: tuple[tuple[int, str, Callable], ...] = (
    (1, "runs, results and samples", _v1),
)


def migrate(store) -> None:
    """Apply the migrations the store has not had, then add the columns bench/schema.py has
    gained. Each migration lands whole or not at all."""
    store.execute("CREATE TABLE IF NOT EXISTS schema_migrations "
                  "(version BIGINT PRIMARY KEY, description TEXT, applied_at TEXT)")
    applied = {row[0] for row in store.execute("SELECT version FROM schema_migrations")}
    newest = max(v for v, _, _ in MIGRATIONS)
    if applied and max(applied) > newest:
        raise StoreError(f"history store {store.name} has schema version {max(applied)}; "
                         f"this version of the harness knows up to {newest}: upgrade it")
    for version, description, change in MIGRATIONS:
        if version in applied:
            continue
        with store.transaction():
            change(store)
            store.execute("INSERT INTO schema_migrations VALUES (?, ?, CAST(now() AS TEXT))",
                          (version, description))
    for table, columns in (("results", COLUMNS), ("samples", SAMPLE_COLUMNS)):
        add_missing_columns(store, table, columns)


def add_missing_columns(store, table: str, columns: tuple[Column, ...]) -> None:
    have = {name.lower() for name in table_columns(store, table)}
    missing = [c for c in columns if c.name.lower() not in have]
    if not missing:
        return
    with store.transaction():
        for column in missing:
            store.execute(f'ALTER TABLE {table} ADD COLUMN "{column.name}" '
                          f"{SQL_TYPES[column.kind]}")


def table_columns(store, table: str) -> list[str]:
    rows = store.execute("SELECT column_name FROM information_schema.columns "
                         "WHERE table_name = ? ORDER BY ordinal_position", (table,))
    return [r[0] for r in rows]
