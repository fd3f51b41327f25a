"""Opening a history store, by URL, with the two databases' differences kept here.

The default is an embedded DuckDB file, ``results/history.duckdb``: no server. A team points
every machine at one PostgreSQL database instead: ``--store postgresql://...`` or the
``BENCH_HISTORY`` environment variable. Both take the same SQL (``?`` placeholders are
rewritten for psycopg) and the same bulk insert of a data frame (DuckDB reads it in place,
PostgreSQL takes it through ``COPY``).

The project's tables live in a schema of their own (``multinet_bench``, or the name in
``BENCH_HISTORY_SCHEMA`` or ``--schema``), so a database others use keeps theirs apart; the
connection's search path is set to it, and the SQL elsewhere names tables alone. A store is
opened to read or to write. To read, it is opened read-only (a DuckDB file read-only, a
PostgreSQL session whose transactions are read-only): a role that may only read, or a file
no one may write, can be viewed. Only a store opened to write is brought up to date
(``bench/history/store_schema.py``).

A store that cannot be reached (a wrong URL, a server down, no permission, a file another
process holds) is a ``StoreError``: one line, exit code 2, with no password in it
(``bench/history/location.py``, ``bench/secrets.py``). DuckDB lets one process write a file
at a time, so opening waits for the other writer (up to ``LOCK_WAIT_S``) rather than
failing: two adds at once both land, one after the other.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from bench.history.store_error import StoreError
from bench.history.store_schema import DEFAULT_SCHEMA
from bench.history.location import DUCKDB, Location, check_duckdb_file, locate
from bench.secrets import MIN_KNOWN, hide
from bench.sweep.interrupt import checkpoint, cut_short_on_signal

ENV_VAR = "BENCH_HISTORY"
SCHEMA_VAR = "BENCH_HISTORY_SCHEMA"
DEFAULT_STORE = Path("results") / "history.duckdb"
# an unquoted SQL name in both databases, within PostgreSQL's 63 bytes
SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
# the databases' own schemas (PostgreSQL's pg_* besides)
SYSTEM_SCHEMAS = ("information_schema", "pg_catalog", "pg_toast", "temp", "system")
# the databases' default schemas: stores made before the project's tables had a schema of
# their own keep them there, and the first writer moves them into its schema; tables made
# there now would be taken for such a store, and moved away
DEFAULT_SCHEMAS = ("main", "public")
# How long opening a DuckDB file waits for another process that holds it, and a PostgreSQL
# statement for a lock another session holds (a transaction left open holds it for good).
LOCK_WAIT_S = 60.0
# A PostgreSQL statement that has not finished after this long is said to wait, once.
SAY_WAIT_AFTER_S = 5.0
LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's error code for a lock_timeout that ran out


def store_url(given: str | None) -> str:
    """The store to use: ``given``, else $BENCH_HISTORY, else the default DuckDB file. An
    empty one given is refused: a variable that expanded to nothing, not a choice of the
    default."""
    if given is not None and not given.strip():
        raise StoreError("--store is empty; give a DuckDB file or a postgresql:// URL, or "
                         f"leave it out for ${ENV_VAR} or {DEFAULT_STORE}")
    return given or os.environ.get(ENV_VAR) or str(DEFAULT_STORE)


def schema_name(given: str | None = None) -> str:
    """The schema of the project's tables: ``given``, else $BENCH_HISTORY_SCHEMA, else
    ``multinet_bench``; a name that is not a plain SQL name is refused."""
    if given == "" or (given is None and os.environ.get(SCHEMA_VAR) == ""):  # as an empty
        # --store: a variable that expanded to nothing, not a choice of the default
        where = "--schema" if given == "" else SCHEMA_VAR
        raise StoreError(f"{where} is empty; give a schema's name, e.g. {DEFAULT_SCHEMA}, "
                         "or leave it out for that one")
    name = given or os.environ.get(SCHEMA_VAR) or DEFAULT_SCHEMA
    if name.startswith("pg_") or name in SYSTEM_SCHEMAS:
        raise StoreError(f"history schema {name!r} is one the database keeps for itself; "
                         f"give another, e.g. {DEFAULT_SCHEMA}")
    if name in DEFAULT_SCHEMAS:
        raise StoreError(f"history schema {name!r} is a database's default (PostgreSQL's "
                         "public, DuckDB's main), where stores "
                         "older than the project's own schema keep their tables (the next add "
                         f"moves them into its schema); give another, e.g. {DEFAULT_SCHEMA}")
    if not SCHEMA_NAME.fullmatch(name):
        raise StoreError(f"history schema {name!r}: give a name of lower-case letters, digits "
                         "and underscores, not starting with a digit (at most 63)")
    return name


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class Store:
    """A connection to a history store. ``kind`` is `duckdb` or `postgresql`; ``schema``
    is where the project's tables are (the search path once opened); ``writable`` says
    whether it was opened to write."""

    def __init__(self, location: Location, connection: Any, schema: str, writable: bool):
        self.location, self.connection = location, connection
        self.kind, self.name = location.kind, location.name
        self.schema, self.writable = schema, writable
        self._said_waiting = False

    def say(self, text: str) -> str:
        """``text`` (a library's message, say) with the store's passwords masked."""
        return hide(text, self.location.secrets)

    def fail(self, what: str, exc: BaseException) -> StoreError:
        if getattr(exc, "sqlstate", None) == LOCK_NOT_AVAILABLE:
            return StoreError(f"history store {self.name}: another session held its tables "
                              f"for {LOCK_WAIT_S:.0f} s (a transaction left open?); nothing "
                              "was written: try again once it ends")
        return StoreError(self.say(f"history store {self.name}: {what}{_first_line(exc)}"))

    @contextlib.contextmanager
    def waiting(self) -> Iterator[None]:
        """A PostgreSQL statement, which may wait for a lock another session holds: a signal
        held meanwhile cancels it (the add then stops, its transaction rolled back), and a
        wait of more than SAY_WAIT_AFTER_S is said once, as DuckDB's wait for its file is."""
        if self.kind == DUCKDB:
            yield
            return
        timer = threading.Timer(SAY_WAIT_AFTER_S, self._say_waiting)
        timer.daemon = True
        timer.start()
        try:
            with cut_short_on_signal(self.connection.cancel):
                yield
        finally:
            timer.cancel()

    def _say_waiting(self) -> None:
        if not self._said_waiting:
            self._said_waiting = True
            print(f"note: waiting for history store {self.name}: another session may hold its "
                  f"tables (a lock is waited for up to {LOCK_WAIT_S:.0f} s; Ctrl-C stops)",
                  file=sys.stderr, flush=True)

    def _sql(self, sql: str) -> str:
        return sql if self.kind == DUCKDB else sql.replace("?", "%s")

    def _run(self, sql: str, params: Sequence[Any]) -> tuple[list[str], list[tuple]]:
        """The names and rows of a statement's result. DuckDB's statements go to the
        connection itself: a DuckDB cursor is a connection of its own, outside the
        transaction that ``transaction`` began."""
        try:
            cursor = self.connection if self.kind == DUCKDB else self.connection.cursor()
            with self.waiting():
                cursor.execute(self._sql(sql), tuple(params))
            if cursor.description is None:
                return [], []
            return [d[0] for d in cursor.description], cursor.fetchall()
        except Exception as exc:
            raise self.fail("", exc) from None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self._run(sql, params)[1]

    def frame(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        """A query's rows as a data frame, with the columns the query names."""
        names, rows = self._run(sql, params)
        return pd.DataFrame.from_records(rows, columns=names)

    def qualified(self, schema: str) -> str:
        """``schema`` as a query names it: in DuckDB with its database (the file's name), or
        a schema of the same name as the file would be ambiguous with the database."""
        if self.kind != DUCKDB:
            return f'"{schema}"'
        (catalog,), = self.execute("SELECT current_database()")
        return '"{}"."{}"'.format(catalog.replace('"', '""'), schema)

    def use(self, schema: str) -> None:
        """Name tables in ``schema`` from now on (their own, or an older store's)."""
        self.execute(f"SET schema = '{schema}'" if self.kind == DUCKDB
                     else f'SET search_path TO "{schema}"')
        self.schema = schema

    def insert_frame(self, table: str, df: pd.DataFrame) -> None:
        """Append ``df``'s rows to ``table`` (columns by name), in bulk. The values go in as
        the frame types them (an integer column as integers, empty cells as NULL)."""
        if df.empty:
            return
        columns = ", ".join(f'"{c}"' for c in df.columns)
        try:
            if self.kind == DUCKDB:
                self.connection.register("incoming", df)
                try:
                    self.connection.execute(
                        f"INSERT INTO {table} ({columns}) SELECT {columns} FROM incoming")
                finally:
                    self.connection.unregister("incoming")
            else:
                with self.waiting(), self.connection.cursor() as cursor, cursor.copy(
                        f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for row in zip(*(native(df[c]) for c in df.columns)):
                        copy.write_row(row)
        except StoreError:
            raise
        except Exception as exc:
            raise self.fail(f"cannot write {table}: ", exc) from None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Store]:
        """Everything inside lands together or not at all."""
        self.execute("BEGIN")
        try:
            yield self
        except BaseException:
            with contextlib.suppress(Exception):
                self.connection.rollback() if self.kind != DUCKDB \
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


def native(column: pd.Series) -> list:
    """A column's values as Python's own (psycopg adapts those, not numpy's), None where
    empty."""
    return [None if _missing(v) else v for v in column.tolist()]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value) or value is pd.NA


def open_store(given: str | None = None, *, write: bool = False,
               schema: str | None = None) -> Store:
    """The store ``given`` names (see ``store_url``), in ``schema`` (see ``schema_name``).
    To write, its tables are made or brought up to date first; to read, it is opened
    read-only and must hold them already."""
    from bench.history.store_schema import prepare  # the tables' module opens nothing itself

    location = locate(store_url(given))
    name = schema_name(schema)
    store = _connect_duckdb(location, name, write) if location.kind == DUCKDB \
        else _connect_postgres(location, name, write)
    try:
        prepare(store)
    except BaseException:
        store.close()
        raise
    return store


def look_into(given: str | None = None, schema: str | None = None) -> Store | None:
    """The store opened read-only and pointed at its tables wherever they are (their own
    schema, or an older store's default one), however far behind this harness it is: for
    looking up what it holds before anything is written. None where it has no tables yet."""
    from bench.history.store_schema import inspect

    location = locate(store_url(given))
    name = schema_name(schema)
    if location.kind == DUCKDB and not Path(location.target).exists():
        return None
    store = _connect_duckdb(location, name, False) if location.kind == DUCKDB \
        else _connect_postgres(location, name, False)
    layout = inspect(store, name)
    if layout.schema is None:
        store.close()
        return None
    store.use(layout.schema)
    return store


def postgres_driver():
    """psycopg, which only a PostgreSQL store needs: pyproject.toml's ``postgres`` extra."""
    try:
        import psycopg
    except ImportError:
        raise StoreError(f"a PostgreSQL store needs the postgres extra (psycopg), which "
                         f"{sys.executable} cannot import: pip install "
                         "'multinet-bench[postgres]'") from None
    return psycopg


def check_store(given: str | None, schema: str | None = None) -> None:
    """Before a sweep whose run goes to a history store: the store, refused in one line
    (a StoreError) where the run could not be added to it: not one this harness reads, a
    PostgreSQL server it cannot reach (its driver, address, role or password), a file or
    folder that may not be written, tables another project made, a role that may not
    insert. Nothing is written: a DuckDB file that exists is opened to write and looked at,
    one that does not must have a folder that may be made. Found after the sweep, such a
    fault would leave the run measured but not stored."""
    from bench.history.store_schema import check_can_add

    location = locate(store_url(given))
    schema = schema_name(schema)
    if location.kind == DUCKDB and not Path(location.target).exists():
        check_duckdb_file(Path(location.target))
        _check_can_make(Path(location.target))
        # imported now, though nothing is opened: a Ctrl-C or SIGTERM that lands inside a
        # compiled driver's first import aborts the process, and after the sweep the add
        # to a new store would be the first to import it
        import duckdb  # noqa: F401
        return
    if location.kind == DUCKDB:  # its write-ahead log is made beside it
        _check_can_make(Path(location.target))
    connect = _connect_duckdb if location.kind == DUCKDB else _connect_postgres
    with connect(location, schema, location.kind == DUCKDB) as store:
        check_can_add(store)


def _check_can_make(path: Path) -> None:
    """A DuckDB file, or the write-ahead log made beside it: the nearest folder that exists
    above it may be written, and nothing on the way is a file."""
    above = path.parent
    while not above.exists() and above != above.parent:
        above = above.parent
    if not above.is_dir():
        raise StoreError(f"cannot create the folder of history store {path}: {above} is "
                         "not a folder")
    if not os.access(above, os.W_OK | os.X_OK):
        raise StoreError(f"cannot write history store {path}: {above} may not be written")


def _connect_postgres(location: Location, schema: str, write: bool) -> Store:
    psycopg = postgres_driver()
    try:
        # autocommit: transactions are explicit (Store.transaction), as in DuckDB
        connection = psycopg.connect(location.target, autocommit=True, connect_timeout=10)
    except Exception as exc:
        raise StoreError(hide(f"cannot reach history store {location.name}: "
                              f"{_driver_message(exc, location.secrets)}",
                              location.secrets)) from None
    store = Store(location, connection, schema, write)
    store.execute(f"SET lock_timeout = '{LOCK_WAIT_S:.0f}s'")
    if not write:  # a read that tried to change anything would fail, not write
        store.execute("SET default_transaction_read_only = on")
    return store


def _driver_message(exc: BaseException, secrets) -> str:
    """The driver's first line, unless it quotes a password too short to be masked by its
    value (``hide`` masks those by their form alone): then what it is about, not the text."""
    message = _first_line(exc)
    if any(secret and len(secret) < MIN_KNOWN and secret in message for secret in secrets):
        return ("the driver refused the URL, and its message would show the password "
                "(check the password's percent-encoding)")
    return message


def _connect_duckdb(location: Location, schema: str, write: bool) -> Store:
    import duckdb
    path = Path(location.target)
    check_duckdb_file(path)
    if not path.exists() and not write:
        raise StoreError(f"history store {path} does not exist; `python -m bench history add` "
                         "makes it")
    if write:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the folder of history store {path}: "
                             f"{exc.strerror}") from None
    deadline, said = time.monotonic() + LOCK_WAIT_S, False
    while True:
        try:
            connection = duckdb.connect(str(path), read_only=not write)
            return Store(location, connection, schema, write)
        except duckdb.IOException as exc:
            # another process writes it: wait for it, as a second writer must
            if "lock" in str(exc).lower() and time.monotonic() < deadline:
                if not said:  # a wait of up to a minute, said once, not a hang
                    print(f"note: waiting for history store {path}: another process has it "
                          f"open (up to {LOCK_WAIT_S:.0f} s)", file=sys.stderr, flush=True)
                    said = True
                checkpoint()  # a Ctrl-C while it waits stops it here
                time.sleep(0.1)
                continue
            raise StoreError(f"cannot open history store {path}: {_first_line(exc)}") from None
        except Exception as exc:
            raise StoreError(f"cannot open history store {path}: {_first_line(exc)}") from None
