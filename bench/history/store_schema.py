"""The history store's tables, where they live, and the migrations that bring them up to date.

Three tables: ``runs`` (one row per run: who, where, under what, and a fingerprint of its
contents), ``results`` (the rows of each run's results.csv) and ``samples`` (its raw
samples), in the store's own schema (``Store.schema``), beside ``schema_migrations``, the
migrations it has had. The columns of ``results`` and ``samples`` follow
``bench/schema.py``: a column added there (which the results schema allows without a new
version) is added to the store by its next writer; anything else that changes is a
numbered migration here.

``prepare`` runs when a store is opened. A store opened to read is only looked at: its
tables must be there and up to date, or it is refused in one line saying who brings it up
to date. A store opened to write is brought up to date only where it is behind, so a role
that may insert rows but not create tables adds runs to a store already made. Making or
updating the tables is one transaction, under a lock that PostgreSQL holds to its end, and
what it found is looked at again under the lock: of two first adds at once, one makes the
tables and the other finds them made. A schema of that name holding tables this harness
did not make, or a store of a newer harness, is refused before anything is written.

Stores made before the tables had a schema of their own hold them in the database's
default schema; they are read there, and the first writer moves them into their own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.history.store_error import StoreError
from bench.schema import COLUMNS, SAMPLE_COLUMNS, Column

SQL_TYPES = {"str": "TEXT", "int": "BIGINT", "float": "DOUBLE PRECISION", "bool": "BOOLEAN"}
TABLES = ("runs", "results", "samples")
MIGRATIONS_TABLE = "schema_migrations"
# how PostgreSQL says a role may not create or alter something
PERMISSION_WORDS = ("permission denied", "must be owner")

# What a run is known by, beyond its rows: read from env.json when the run is added.
RUN_COLUMNS = (
    ("run_id", "TEXT PRIMARY KEY"),
    ("fingerprint", "TEXT NOT NULL"),  # sha256 of its contents: the same run, or another
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


# The schema of the project's tables unless one is named (--schema, BENCH_HISTORY_SCHEMA):
# the one that adopts a store made before the tables had a schema of their own.
DEFAULT_SCHEMA = "multinet_bench"

# (version, what it does, the change): applied in order, each once.
MIGRATIONS: tuple[tuple[int, str, Callable], ...] = (
    (1, "runs, results and samples", _v1),
)
NEWEST = max(version for version, _, _ in MIGRATIONS)


@dataclass
class Layout:
    """Where a store's tables are and what they lack: ``schema`` is None where there are
    none yet; ``moved`` where they are an older store's, in the default schema."""

    schema: str | None
    applied: set[int] = field(default_factory=set)
    missing: list[tuple[str, Column]] = field(default_factory=list)  # (table, column)
    moved: bool = False

    @property
    def current(self) -> bool:
        return (self.schema is not None and not self.moved and not self.missing
                and self.applied == {v for v, _, _ in MIGRATIONS})


def prepare(store) -> None:
    """Point ``store`` at its tables: made or brought up to date where it is opened to
    write; where it is opened to read, refused in one line unless they are there."""
    layout = inspect(store, store.schema)
    if store.writable:
        if not layout.current:
            migrate(store)
        store.use(store.schema)
        return
    if layout.schema is None:
        raise StoreError(f"history store {store.name} holds no runs yet (no tables in schema "
                         f"{store.schema} that this role can see); `python -m bench history "
                         "add RUN_DIR` adds the first")
    if layout.applied != {v for v, _, _ in MIGRATIONS} or layout.missing:
        lacking = [f"{t}.{c.name}" for t, c in layout.missing][:3] or ["its newer migrations"]
        raise StoreError(f"history store {store.name} predates this harness (it lacks "
                         f"{', '.join(lacking)}); a `python -m bench history add` by a role "
                         "that may alter it brings it up to date")
    store.use(layout.schema)


def check_can_add(store) -> None:
    """Refuse, in one line and writing nothing, a store a run could not be added to: one
    that is not this harness's (``inspect``), or, in PostgreSQL, whose role may not insert
    its rows, or may not make or alter tables that need it. ``store`` may be opened to read:
    a sweep checks its store this way before it measures anything."""
    layout = inspect(store, store.schema)
    if store.kind == "duckdb":
        return  # opened to write: a file that may not be written is refused by opening
    if layout.schema is not None and not layout.moved:
        # an add inserts into every table and reads runs for the run ids stored already
        # (one privilege at a time: has_table_privilege is true if any one listed is held)
        for table, privilege in [*((t, "INSERT") for t in TABLES), ("runs", "SELECT")]:
            (may,), = store.execute(f"SELECT has_table_privilege(?, '{privilege}')",
                                    (f'"{layout.schema}".{table}',))
            if not may:
                raise StoreError(f"history store {store.name}: this role may not add runs "
                                 f"(no {privilege} on {layout.schema}.{table}); grant it, "
                                 "or give another role")
        if layout.current:
            return
    (may,), = store.execute(
        "SELECT coalesce((SELECT has_schema_privilege(oid, 'CREATE') FROM pg_namespace "
        "WHERE nspname = ?), has_database_privilege(current_database(), 'CREATE'))",
        (store.schema,))
    if not may:
        raise StoreError(f"history store {store.name}: this role may not make or alter the "
                         f"store's tables (schema {store.schema}); its owner's first "
                         "`python -m bench history add` does")


def inspect(store, schema: str) -> Layout:
    """What ``store`` holds, read without writing anything."""
    ours = tables_in(store, schema)
    if ours:
        return _our_layout(store, schema, ours)
    # the database's default schema, by name: not current_schema(), which a role's
    # search_path ("$user" first, by default) may point at another team's store. Such a
    # store was made before the tables had a schema of their own, so it is the default
    # schema's to adopt: a team that names its own starts empty, and never takes it over
    default = "main" if store.kind == "duckdb" else "public"
    if schema == DEFAULT_SCHEMA and _is_older_store(store, default):
        layout = _our_layout(store, default, tables_in(store, default))
        layout.moved = True
        return layout
    return Layout(None)


def tables_in(store, schema: str) -> set[str]:
    """The tables and views of ``schema``. PostgreSQL's information_schema shows a role only
    what it may use: its catalog shows all, so another role's tables of these names are
    seen (and refused), not taken for an empty schema."""
    if store.kind == "duckdb":
        rows = store.execute("SELECT table_name FROM information_schema.tables "
                             "WHERE table_schema = ?", (schema,))
    else:
        rows = store.execute("SELECT c.relname FROM pg_catalog.pg_class c JOIN "
                             "pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                             "WHERE n.nspname = ? AND c.relkind IN ('r', 'p', 'v', 'm', 'f')",
                             (schema,))
    return {name for (name,) in rows}


def _our_layout(store, schema: str, tables: set[str]) -> Layout:
    """The layout of ``schema``, refused where this harness did not make it."""
    foreign = StoreError(f"history store {store.name}: schema {schema} holds tables this "
                         f"harness did not make ({', '.join(sorted(tables)[:3])}); name "
                         "another with BENCH_HISTORY_SCHEMA=NAME (any command, `run` and "
                         "`make bench` too) or --schema (the history commands)")
    applied = migrations_in(store, schema, tables)
    if applied is None:
        raise foreign
    if applied and max(applied) > NEWEST:
        raise StoreError(f"history store {store.name} has schema version {max(applied)}; "
                         f"this version of the harness knows up to {NEWEST}: upgrade it")
    known = {version: description for version, description, _ in MIGRATIONS}
    if any(known[v] != description for v, description in applied.items()):
        raise foreign
    missing = [(table, column) for table, columns in (("results", COLUMNS),
                                                      ("samples", SAMPLE_COLUMNS))
               for column in missing_columns(store, schema, table, columns)]
    return Layout(schema, set(applied), missing)


def migrations_in(store, schema: str, tables: set[str]) -> dict | None:
    """The migrations ``schema``'s tables record, by version; None where they are not laid
    out as this harness lays them out (another project's ``schema_migrations`` may lack
    the columns read here: it is looked at first, not queried blindly)."""
    if MIGRATIONS_TABLE not in tables or not set(TABLES) <= tables:
        return None
    if not {"version", "description"} <= set(table_columns(store, MIGRATIONS_TABLE, schema)):
        return None
    return dict(store.execute(f'SELECT version, description FROM {store.qualified(schema)}.'
                              f"{MIGRATIONS_TABLE}"))


def _is_older_store(store, schema: str) -> bool:
    """Whether ``schema`` holds the tables of a store made before they had their own:
    this harness's first migration recorded there, and nothing else's layout."""
    applied = migrations_in(store, schema, tables_in(store, schema))
    return applied is not None and applied.get(1) == MIGRATIONS[0][1]


def migrate(store) -> None:
    """Make the tables, or bring them up to date, in one transaction under the lock."""
    try:
        with store.transaction():
            lock(store)
            layout = inspect(store, store.schema)  # again: another writer may have done it
            if layout.current:
                return
            # PostgreSQL asks for the database's CREATE privilege before it reads IF NOT
            # EXISTS: a role that owns the schema, or may create in it, would be refused
            if store.kind == "duckdb" or not postgres_schema_exists(store, store.schema):
                store.execute(f'CREATE SCHEMA IF NOT EXISTS "{store.schema}"')
            store.use(store.schema)
            _apply(store, layout)
    except StoreError as exc:
        if not any(words in str(exc).lower() for words in PERMISSION_WORDS):
            raise
        raise StoreError(f"{exc}: this role may not make or alter the store's tables (schema "
                         f"{store.schema}); its owner's first `python -m bench history add` "
                         "does") from None


def postgres_schema_exists(store, schema: str) -> bool:
    return bool(store.execute("SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = ?",
                              (schema,)))


def lock(store) -> None:
    """PostgreSQL: a lock held to the transaction's end, one per schema. (A DuckDB file has
    one writer at a time already.)"""
    if store.kind == "duckdb":
        return
    key = int.from_bytes(hashlib.sha256(f"multinet_bench:{store.schema}".encode()).digest()[:8],
                         "big", signed=True)
    store.execute("SELECT pg_advisory_xact_lock(?)", (key,))


def _apply(store, layout: Layout) -> None:
    store.execute(f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} "
                  "(version BIGINT PRIMARY KEY, description TEXT, applied_at TEXT)")
    applied = set() if layout.moved else layout.applied
    for version, description, change in MIGRATIONS:
        if version in applied:
            continue
        change(store)
        store.execute(f"INSERT INTO {MIGRATIONS_TABLE} VALUES (?, ?, CAST(now() AS TEXT))",
                      (version, description))
    for table, columns in (("results", COLUMNS), ("samples", SAMPLE_COLUMNS)):
        for column in missing_columns(store, store.schema, table, columns):
            store.execute(f'ALTER TABLE {table} ADD COLUMN "{column.name}" '
                          f"{SQL_TYPES[column.kind]}")
    if layout.moved:
        move_older_store(store, layout.schema)


def move_older_store(store, older: str) -> None:
    """The rows of a store made before the tables had a schema of their own, copied into
    theirs (made just now), and the old tables dropped."""
    for table in TABLES:
        have = table_columns(store, table)
        theirs = table_columns(store, table, older)
        unknown = [c for c in theirs if c not in have]
        if unknown:
            raise StoreError(f"history store {store.name}: {older}.{table} has columns this "
                             f"harness does not know ({', '.join(unknown[:3])}); cannot move it")
        names = ", ".join(f'"{c}"' for c in theirs)
        store.execute(f'INSERT INTO {table} ({names}) SELECT {names} FROM '
                      f'{store.qualified(older)}.{table}')
    for table in (*TABLES, MIGRATIONS_TABLE):
        store.execute(f'DROP TABLE {store.qualified(older)}.{table}')


def missing_columns(store, schema: str, table: str,
                    columns: tuple[Column, ...]) -> list[Column]:
    have = {name.lower() for name in table_columns(store, table, schema)}
    return [c for c in columns if c.name.lower() not in have]


def table_columns(store, table: str, schema: str | None = None) -> list[str]:
    """``table``'s columns, in ``schema`` (the store's own by default) alone: another
    schema's table of the same name is not this one."""
    if store.kind == "duckdb":
        rows = store.execute("SELECT column_name FROM information_schema.columns WHERE "
                             "table_schema = ? AND table_name = ? ORDER BY ordinal_position",
                             (schema or store.schema, table))
    else:  # the catalog, as tables_in: every column, whatever this role may read
        rows = store.execute("SELECT a.attname FROM pg_catalog.pg_attribute a JOIN "
                             "pg_catalog.pg_class c ON c.oid = a.attrelid JOIN "
                             "pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE "
                             "n.nspname = ? AND c.relname = ? AND a.attnum > 0 AND NOT "
                             "a.attisdropped ORDER BY a.attnum", (schema or store.schema, table))
    return [r[0] for r in rows]
