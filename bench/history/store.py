"""Opening a history store, by URL, with the two databases' differences kept here.

The default is an embedded DuckDB file, ``results/history.duckdb``: no server. A team points
every machine at one PostgreSQL database instead: ``--store postgresql://...`` or the
``BENCH_HISTORY`` environment variable. Both take the same SQL (``?`` placeholders are
rewritten for psycopg) and the same bulk insert of a data frame (DuckDB reads it in place,
PostgreSQL takes it through ``COPY``).

A store that cannot be reached (a wrong URL, a server down, no permission, a file another
process holds) is a ``StoreError``: one line, exit code 2. DuckDB lets one process write a
file at a time, so opening waits for the other writer (up to ``LOCK_WAIT_S``) rather than
failing: two adds at once both land, one after the other.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from bench.history.errors import StoreError
from bench.history.tables import migrate

ENV_VAR = "BENCH_HISTORY"
DEFAULT_STORE = Path("results") / "history.duckdb"
POSTGRES_PREFIXES = ("postgresql://", "postgres://")
# How long opening a DuckDB file waits for another process that holds it.
LOCK_WAIT_S = 60.0


def store_url(given: str | None) -> str:
    """The store to use: ``given``, else $BENCH_HISTORY, else the default DuckDB file."""
    return given or os.environ.get(ENV_VAR) or str(DEFAULT_STORE)


def describe(url: str) -> str:
    """The store's name for messages, without a password."""
    if url.startswith(POSTGRES_PREFIXES):
        scheme, _, rest = url.partition("://")
        credentials, at, host = rest.rpartition("@")
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user + '@' if at else ''}{host}"
    return url


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class Store:
    """A connection to a history store. ``kind`` is `duckdb` or `postgresql`."""

    def __init__(self, url: str, connection: Any, kind: str):
        self.url, self.connection, self.kind = url, connection, kind
        self.name = describe(url)

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.kind == "postgresql" else sql

    def _run(self, sql: str, params: Sequence[Any]) -> tuple[list[str], list[tuple]]:
        """The names and rows of a statement's result. DuckDB's statements go to the
        connection itself: a DuckDB cursor is a connection of its own, outside the
        transaction that ``transaction`` began."""
        try:
            cursor = self.connection if self.kind == "duckdb" else self.connection.cursor()
            cursor.execute(self._sql(sql), tuple(params))
            if cursor.description is None:
                return [], []
            return [d[0] for d in cursor.description], cursor.fetchall()
        except Exception as exc:
            raise StoreError(f"history store {self.name}: {_first_line(exc)}") from None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self._run(sql, params)[1]

    def frame(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        """A query's rows as a data frame, with the columns the query names."""
        names, rows = self._run(sql, params)
        return pd.DataFrame.from_records(rows, columns=names)

    def insert_frame(self, table: str, df: pd.DataFrame) -> None:
        """Append ``df``'s rows to ``table`` (columns by name), in bulk."""
        if df.empty:
            return
        columns = ", ".join(f'"{c}"' for c in df.columns)
        try:
            if self.kind == "duckdb":
                self.connection.register("incoming", df)
                try:
                    self.connection.execute(
                        f"INSERT INTO {table} ({columns}) SELECT {columns} FROM incoming")
                finally:
                    self.connection.unregister("incoming")
            else:
                with self.connection.cursor() as cursor, cursor.copy(
                        f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for row in df.itertuples(index=False, name=None):
                        copy.write_row([None if _missing(v) else v for v in row])
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(f"history store {self.name}: cannot write {table}: "
                             f"{_first_line(exc)}") from None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Store]:
        """Everything inside lands together or not at all."""
        self.execute("BEGIN")
        try:
            yield self
        except BaseException:
            with contextlib.suppress(Exception):
                self.connection.rollback() if self.kind == "postgresql" \
                    else self.connection.execute("ROLLBACK")
            raise
        self.execute("COMMIT")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.connection.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value) or value is pd.NA


def open_store(given: str | None = None, *, create: bool = True) -> Store:
    """The store ``given`` names (see ``store_url``), its schema brought up to date."""
    url = store_url(given)
    store = _connect_postgres(url) if url.startswith(POSTGRES_PREFIXES) \
        else _connect_duckdb(url, create)
    try:
        migrate(store)
    except BaseException:
        store.close()
        raise
    return store


def _connect_postgres(url: str) -> Store:
    try:
        import psycopg
    except ImportError:
        raise StoreError("a PostgreSQL store needs psycopg: pip install 'psycopg[binary]'") \
            from None
    try:
        # autocommit: transactions are explicit (Store.transaction), as in DuckDB
        connection = psycopg.connect(url, autocommit=True, connect_timeout=10)
    except Exception as exc:
        raise StoreError(f"cannot reach history store {describe(url)}: "
                         f"{_first_line(exc)}") from None
    return Store(url, connection, "postgresql")


def _connect_duckdb(url: str, create: bool) -> Store:
    import duckdb
    path = Path(url.removeprefix("duckdb://"))
    if path.is_dir():
        raise StoreError(f"history store {path} is a folder; give a file, e.g. "
                         f"{path / 'history.duckdb'}")
    if not path.exists() and not create:
        raise StoreError(f"history store {path} does not exist")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the folder of history store {path}: "
                         f"{exc.strerror}") from None
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        try:
            return Store(str(path), duckdb.connect(str(path)), "duckdb")
        except duckdb.IOException as exc:
            # another process writes it: wait for it, as a second writer must
            if "lock" in str(exc).lower() and time.monotonic() < deadline:
                time.sleep(0.1)
                continue
            raise StoreError(f"cannot open history store {path}: {_first_line(exc)}") from None
        except Exception as exc:
            raise StoreError(f"cannot open history store {path}: {_first_line(exc)}") from None
