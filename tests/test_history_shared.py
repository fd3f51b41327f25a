"""A history store others share: the project's tables in a schema of their own, reads that
write nothing (a read-only role, a file another process reads), migrations only where the
role may, once, under a lock, and stores that are not this harness's refused by name and
left as they were. Against DuckDB and a real PostgreSQL, with a real run."""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import duckdb
import psycopg
import pytest

from bench.history.store import open_store
from bench.seal import seal
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

SYSTEM_SCHEMAS = ("information_schema", "pg_catalog", "pg_toast")


def renamed(run: Path, folder: Path, run_id: str) -> Path:
    """A copy of ``run`` under another run id, in every file that names it."""
    old = json.loads((run / "sweep.json").read_text())["run_id"]
    shutil.copytree(run, folder)
    for name in ("results.csv", "samples.csv"):
        (folder / name).write_text((folder / name).read_text().replace(old, run_id))
    for name in ("env.json", "sweep.json"):
        record = json.loads((folder / name).read_text())
        (folder / name).write_text(json.dumps(seal({**record, "run_id": run_id})))
    return folder


def history(*args: str, env: dict | None = None, cwd: Path = ROOT):
    return subprocess.run([sys.executable, "-m", "bench", "history", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300,
                          env={**_environ(), **(env or {})})


def _environ() -> dict:
    import os
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def tables_of(url: str) -> set[tuple[str, str]]:
    """(schema, table) of every table in the store, system ones aside."""
    query = "SELECT table_schema, table_name FROM information_schema.tables"
    if url.startswith("postgresql://"):
        with psycopg.connect(url) as connection:
            rows = connection.execute(query).fetchall()
    else:
        with duckdb.connect(url, read_only=True) as connection:
            rows = connection.execute(query).fetchall()
    return {tuple(r) for r in rows if r[0] not in SYSTEM_SCHEMAS}


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@contextlib.contextmanager
def immutable(path: Path):
    """``path`` made immutable (``chattr +i``: not even root may write it) while the block
    runs; the test skipped where the file system cannot."""
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip("this file system cannot make a file or folder immutable (chattr +i)")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def one_line(proc) -> str:
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.stderr


def default_schema(url: str) -> str:
    return "public" if url.startswith("postgresql://") else "main"


def test_the_tables_live_in_a_schema_of_their_own(real_run, store_url):
    proc = history("add", str(real_run), "--store", store_url)
    assert proc.returncode == 0, proc.stderr
    ours = {("multinet_bench", t) for t in ("runs", "results", "samples", "schema_migrations")}
    assert tables_of(store_url) == ours
    proc = history("add", str(real_run), "--store", store_url, "--schema", "team_a")
    assert proc.returncode == 0 and "added" in proc.stdout, proc.stderr
    proc = history("add", str(real_run), "--store", store_url,
                   env={"BENCH_HISTORY_SCHEMA": "team_b"})
    assert proc.returncode == 0 and "added" in proc.stdout, proc.stderr
    assert {s for s, _ in tables_of(store_url)} == {"multinet_bench", "team_a", "team_b"}
    err = one_line(history("add", str(real_run), "--store", store_url, "--schema", "a; drop"))
    assert "history schema 'a; drop': give a name of lower-case letters" in err


def test_tables_of_the_same_names_elsewhere_are_left_alone(real_run, tmp_path, store_url):
    """The database's default schema already has a `results` and a `runs` of someone
    else's: adds and reads go on, and theirs keep their rows."""
    theirs = default_schema(store_url)
    statements = [f"CREATE TABLE {theirs}.results (x INTEGER)",
                  f"CREATE TABLE {theirs}.runs (run_id TEXT)",
                  f"INSERT INTO {theirs}.results VALUES (7)"]
    if store_url.startswith("postgresql://"):
        with psycopg.connect(store_url, autocommit=True) as connection:
            for statement in statements:
                connection.execute(statement)
    else:
        with duckdb.connect(store_url) as connection:
            for statement in statements:
                connection.execute(statement)
    proc = history("add", str(real_run), "--store", store_url)
    assert proc.returncode == 0, proc.stderr
    proc = history("report", "--store", store_url, "--out", str(tmp_path / "h.html"))
    assert proc.returncode == 0 and "(1 runs," in proc.stdout, proc.stderr
    with open_store(store_url) as store:
        assert store.execute(f"SELECT * FROM {theirs}.results") == [(7,)]
        assert store.execute(f"SELECT count(*) FROM {theirs}.runs") == [(0,)]


def run_sql(url: str, statements: list[str]) -> None:
    if url.startswith("postgresql://"):
        with psycopg.connect(url, autocommit=True) as connection:
            for statement in statements:
                connection.execute(statement)
    else:
        with duckdb.connect(url) as connection:
            for statement in statements:
                connection.execute(statement)


def foreign_tables(schema: str) -> list[str]:
    """Another project's tables of this project's names, its schema_migrations without the
    description column an older store of this project has."""
    return [f"CREATE SCHEMA IF NOT EXISTS {schema}",
            f"CREATE TABLE {schema}.schema_migrations (id INTEGER, name TEXT)",
            f"INSERT INTO {schema}.schema_migrations VALUES (1, 'init')",
            *(f"CREATE TABLE {schema}.{t} (x INTEGER)" for t in ("runs", "results", "samples"))]


def test_another_project_s_migrations_table_is_left_alone(real_run, tmp_path, store_url):
    """Beside runs, results and samples in the default schema: not an older store of this
    project (whose rows the first writer moves), so adds and reads go on, in every schema."""
    theirs = default_schema(store_url)
    run_sql(store_url, foreign_tables(theirs))
    for schema in ("multinet_bench", "mybench"):
        proc = history("add", str(real_run), "--store", store_url, "--schema", schema)
        assert proc.returncode == 0 and " added (8 rows, " in proc.stdout, proc.stderr
        proc = history("report", "--store", store_url, "--schema", schema,
                       "--out", str(tmp_path / f"{schema}.html"))
        assert proc.returncode == 0 and "(1 runs," in proc.stdout, proc.stderr
    with open_store(store_url) as store:
        assert store.execute(f"SELECT * FROM {theirs}.schema_migrations") == [(1, "init")]
    assert {t for s, t in tables_of(store_url) if s == theirs} == \
        {"schema_migrations", "runs", "results", "samples"}


def test_a_schema_holding_another_project_s_migrations_table_is_refused(real_run,
                                                                       store_url):
    run_sql(store_url, foreign_tables("theirs"))
    err = one_line(history("add", str(real_run), "--store", store_url, "--schema", "theirs"))
    assert "schema theirs holds tables this harness did not make" in err


def test_a_read_writes_nothing_and_makes_no_store(real_run, tmp_path, store_url):
    """Reading a store that has no tables yet is refused, and leaves it without any; reading
    one that has them leaves it as it was, to the byte for a DuckDB file."""
    page = str(tmp_path / "h.html")
    if not store_url.startswith("postgresql://"):
        duckdb.connect(store_url).close()  # a DuckDB file, empty
    err = one_line(history("report", "--store", store_url, "--out", page))
    assert "holds no runs yet (no tables in schema multinet_bench that this role can see)" \
        in err
    assert tables_of(store_url) == set()
    assert history("add", str(real_run), "--store", store_url).returncode == 0
    before = sha(Path(store_url)) if not store_url.startswith("postgresql://") else None
    assert history("report", "--store", store_url, "--out", page).returncode == 0
    assert history("changes", "--store", store_url).returncode == 0
    if before is not None:
        assert sha(Path(store_url)) == before


def test_a_duckdb_file_another_process_reads_can_be_viewed(real_run, tmp_path):
    """A reader holds the file open read-only, as a dashboard elsewhere would: a report
    reads beside it at once (a writer would have to wait for it)."""
    store = tmp_path / "history.duckdb"
    assert history("add", str(real_run), "--store", str(store)).returncode == 0
    with duckdb.connect(str(store), read_only=True):
        proc = subprocess.run([sys.executable, "-m", "bench", "history", "report", "--store",
                               str(store), "--out", str(tmp_path / "h.html")], cwd=ROOT,
                              capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0 and "(1 runs," in proc.stdout, proc.stderr


def test_a_file_no_one_may_write_can_be_viewed(real_run, tmp_path):
    store = tmp_path / "history.duckdb"
    assert history("add", str(real_run), "--store", str(store)).returncode == 0
    with immutable(store):
        proc = history("report", "--store", str(store), "--out", str(tmp_path / "h.html"))
        refused = history("add", str(real_run), "--store", str(store))
    assert proc.returncode == 0 and "(1 runs," in proc.stdout, proc.stderr
    assert "cannot open history store" in one_line(refused)


@pytest.fixture
def roles(postgres):
    """A store made by its owner, and two roles besides: `reader` may only read its tables,
    `adder` may read and insert but create nothing."""
    suffix = uuid.uuid4().hex[:8]
    owner, reader, adder = (f"{r}_{suffix}" for r in ("owner", "reader", "adder"))
    for role in (owner, reader, adder):
        postgres.create_role(role)
    database = f"shared_{suffix}"
    postgres.create_database(database, owner=owner)
    base = f"postgresql://{{}}@127.0.0.1:{postgres.port}/{database}"
    return {"server": postgres, "database": database, "owner": base.format(owner),
            "reader": base.format(reader), "adder": base.format(adder),
            "names": (owner, reader, adder)}


def grant(roles, role: str, privileges: str) -> None:
    roles["server"].sql(roles["database"],
                        f"GRANT USAGE ON SCHEMA multinet_bench TO {role}",
                        f"GRANT {privileges} ON ALL TABLES IN SCHEMA multinet_bench TO {role}")


def test_a_role_that_may_only_read_views_the_store(real_run, tmp_path, roles):
    assert history("add", str(real_run), "--store", roles["owner"]).returncode == 0
    grant(roles, roles["names"][1], "SELECT")
    page = tmp_path / "h.html"
    proc = history("report", "--store", roles["reader"], "--out", str(page))
    assert proc.returncode == 0 and "(1 runs," in proc.stdout, proc.stderr
    assert history("changes", "--store", roles["reader"]).returncode == 0
    err = one_line(history("add", str(renamed(real_run, tmp_path / "b", "run-b")),
                           "--store", roles["reader"]))
    assert "this role may not add runs (no INSERT on multinet_bench.runs)" in err


def test_migrations_run_only_where_the_role_may(real_run, tmp_path, roles):
    """A role that may insert adds runs to a store its owner made; on a database where
    nothing is made yet, it is told in one line who makes the tables."""
    err = one_line(history("add", str(real_run), "--store", roles["adder"]))
    assert "this role may not make or alter the store's tables (schema multinet_bench); " \
           "its owner's first `python -m bench history add` does" in err
    assert tables_of(roles["owner"]) == set()
    assert history("add", str(real_run), "--store", roles["owner"]).returncode == 0
    grant(roles, roles["names"][2], "SELECT, INSERT")
    proc = history("add", str(renamed(real_run, tmp_path / "b", "run-b")),
                   "--store", roles["adder"])
    assert proc.returncode == 0 and "run-b: added" in proc.stdout, proc.stderr


def test_first_adds_at_once_to_a_fresh_store_all_land(real_run, tmp_path, store_url):
    folders = [renamed(real_run, tmp_path / f"r{i}", f"run-{i}") for i in range(4)]
    procs = [subprocess.Popen([sys.executable, "-m", "bench", "history", "add", str(f),
                               "--store", store_url], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for f in folders]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], outputs
    with open_store(store_url) as store:
        assert sorted(r for (r,) in store.execute("SELECT run_id FROM runs")) == \
            [f"run-{i}" for i in range(4)]
        assert store.execute("SELECT version FROM schema_migrations") == [(1,)]


def test_a_duckdb_file_that_is_refused_is_left_as_it_was(real_run, tmp_path):
    """Tables in the store's schema that this harness did not make; a store of a newer
    harness; an SQLite database; a file that is no database. Each is refused by name in
    one line before anything is written, and keeps every byte."""
    foreign = tmp_path / "foreign.duckdb"
    with duckdb.connect(str(foreign)) as connection:
        connection.execute("CREATE SCHEMA multinet_bench")
        connection.execute("CREATE TABLE multinet_bench.runs (x INTEGER)")
    newer = tmp_path / "newer.duckdb"
    with duckdb.connect(str(newer)) as connection:
        connection.execute("CREATE SCHEMA multinet_bench")
        for table in ("runs", "results", "samples"):
            connection.execute(f"CREATE TABLE multinet_bench.{table} (run_id TEXT)")
        connection.execute("CREATE TABLE multinet_bench.schema_migrations "
                           "(version BIGINT, description TEXT, applied_at TEXT)")
        connection.execute("INSERT INTO multinet_bench.schema_migrations VALUES "
                           "(1, 'runs, results and samples', ''), (999, 'from the future', '')")
    lite = tmp_path / "history.db"
    with sqlite3.connect(lite) as connection:
        connection.execute("CREATE TABLE t (x INTEGER)")
    text = tmp_path / "notes.duckdb"
    text.write_text("not a database\n")
    cases = {foreign: "schema multinet_bench holds tables this harness did not make (runs)",
             newer: "has schema version 999; this version of the harness knows up to 1",
             lite: f"history store {lite} is an SQLite database, not a DuckDB file",
             text: f"history store {text} is not a DuckDB file"}
    for path, expected in cases.items():
        before = sha(path)
        for command in (["add", str(real_run)], ["report", "--out", str(tmp_path / "h.html")]):
            err = one_line(history(*command, "--store", str(path)))
            assert expected in err, err
        assert sha(path) == before, path
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(path.name)) \
            == [path.name]  # no write-ahead log beside it either


@pytest.mark.parametrize("url", ["mysql://someone:PASSWORD@db.example/bench",
                                 "sqlite:///history.db", "md:history", "s3://bucket/history",
                                 "duckdb://md:history"])
def test_unknown_schemes_are_refused_by_name(tmp_path, url):
    err = one_line(history("add", str(tmp_path), "--store", url, cwd=tmp_path))
    scheme = url.split(":")[0] if not url.startswith("duckdb://") else "md"
    assert f"unknown scheme {scheme}:" in err or f"is a file path, not {scheme}:" in err, err
    assert "PASSWORD" not in err
    assert list(tmp_path.iterdir()) == []  # no file, no folder made of the URL


def make_older_store(run: Path, url: str) -> str:
    """A store as this harness made them before its tables had a schema of their own: the
    tables, rows and all, in the database's default schema (which `--schema` now refuses,
    so they are made in their own and moved there by hand). That schema's name."""
    proc = history("add", str(run), "--store", url)
    assert proc.returncode == 0, proc.stderr
    theirs = default_schema(url)
    tables = ("runs", "results", "samples", "schema_migrations")
    if url.startswith("postgresql://"):
        run_sql(url, [*(f"ALTER TABLE multinet_bench.{t} SET SCHEMA {theirs}" for t in tables),
                      "DROP SCHEMA multinet_bench"])
    else:
        with duckdb.connect(url) as con:
            for t in tables:
                con.execute(f"CREATE TABLE {theirs}.{t} AS SELECT * FROM multinet_bench.{t}")
                con.execute(f"DROP TABLE multinet_bench.{t}")
            con.execute("DROP SCHEMA multinet_bench")
    assert {s for s, _ in tables_of(url)} == {theirs}
    return theirs


def test_an_older_store_is_read_where_it_is_and_moved_by_its_next_writer(real_run, tmp_path,
                                                                         store_url):
    """A store made before the tables had a schema of their own holds them in the default
    schema: a report reads them there, and the next add moves them, rows and all."""
    make_older_store(real_run, store_url)
    before = None if store_url.startswith("postgresql://") else sha(Path(store_url))
    proc = history("report", "--store", store_url, "--out", str(tmp_path / "h.html"))
    assert proc.returncode == 0 and "(1 runs," in proc.stdout, proc.stderr
    if before is not None:
        assert sha(Path(store_url)) == before
    proc = history("add", str(renamed(real_run, tmp_path / "b", "run-b")), "--store", store_url)
    assert proc.returncode == 0, proc.stderr
    assert {s for s, _ in tables_of(store_url)} == {"multinet_bench"}
    with open_store(store_url) as store:
        assert store.execute("SELECT count(*) FROM runs") == [(2,)]
        assert store.execute("SELECT count(*) FROM results") == [(16,)]


def run_into(store: str, out: Path) -> subprocess.CompletedProcess:
    """`bench run --history STORE` of the smallest sweep."""
    from tests.conftest import TINY_RUN
    return subprocess.run([sys.executable, "-m", "bench", "run", *TINY_RUN, "--out-dir",
                           str(out), "--history", store], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env=_environ())


def refused_before_measuring(proc, out: Path) -> str:
    assert not (out / "results.csv").exists() and "Results:" not in proc.stdout
    return one_line(proc)


def test_run_refuses_a_store_its_schema_holds_foreign_tables_of_before_measuring(tmp_path,
                                                                                  store_url):
    run_sql(store_url, foreign_tables("multinet_bench"))
    before = tables_of(store_url)
    err = refused_before_measuring(run_into(store_url, tmp_path / "run"), tmp_path / "run")
    assert "schema multinet_bench holds tables this harness did not make" in err
    # `run` has no --schema: the way it names another comes first
    assert "name another with BENCH_HISTORY_SCHEMA=NAME (any command, `run`" in err
    assert tables_of(store_url) == before


def test_run_refuses_a_file_no_one_may_write_before_measuring(real_run, tmp_path):
    store = tmp_path / "history.duckdb"
    assert history("add", str(real_run), "--store", str(store)).returncode == 0
    with immutable(store):
        proc = run_into(str(store), tmp_path / "run")
    assert f"cannot open history store {store}" in \
        refused_before_measuring(proc, tmp_path / "run")


@pytest.mark.parametrize("store_made", [False, True])
def test_run_refuses_a_folder_no_one_may_write_before_measuring(real_run, tmp_path,
                                                                 store_made):
    """A folder that may not be written: no store could be made there, and one made already
    could not be written either (DuckDB writes its log beside the file)."""
    folder = tmp_path / "stores"
    folder.mkdir()
    store = folder / "history.duckdb"
    if store_made:
        assert history("add", str(real_run), "--store", str(store)).returncode == 0
    with immutable(folder):
        proc = run_into(str(store), tmp_path / "run")
    assert f"cannot write history store {store}: {folder} may not be written" in \
        refused_before_measuring(proc, tmp_path / "run")


def test_run_refuses_a_role_that_may_only_read_before_measuring(real_run, tmp_path, roles):
    assert history("add", str(real_run), "--store", roles["owner"]).returncode == 0
    grant(roles, roles["names"][1], "SELECT")
    err = refused_before_measuring(run_into(roles["reader"], tmp_path / "run"),
                                   tmp_path / "run")
    assert "this role may not add runs (no INSERT on multinet_bench.runs)" in err
    # a role that may insert, into a store made already, measures and adds
    grant(roles, roles["names"][2], "SELECT, INSERT")
    proc = run_into(roles["adder"], tmp_path / "added")
    assert proc.returncode == 0 and "History: " in proc.stdout, proc.stderr


def test_run_refuses_a_role_that_may_not_make_the_tables_before_measuring(tmp_path, roles):
    err = refused_before_measuring(run_into(roles["adder"], tmp_path / "run"),
                                   tmp_path / "run")
    assert "this role may not make or alter the store's tables (schema multinet_bench)" in err


def test_a_role_that_owns_the_schema_but_not_the_database_makes_the_tables(real_run, roles):
    """PostgreSQL asks for the database's CREATE privilege on CREATE SCHEMA IF NOT EXISTS
    even where the schema is there: a role given its own schema was refused."""
    adder = roles["names"][2]
    roles["server"].sql(roles["database"], f"CREATE SCHEMA multinet_bench AUTHORIZATION {adder}")
    proc = history("add", str(real_run), "--store", roles["adder"])
    assert proc.returncode == 0 and ": added" in proc.stdout, proc.stderr
    assert ("multinet_bench", "runs") in tables_of(roles["adder"])


def test_run_refuses_a_role_that_may_insert_but_not_read_the_runs_before_measuring(
        real_run, tmp_path, roles):
    """An add reads the run ids stored already: without SELECT on runs the sweep was
    measured, then not stored."""
    assert history("add", str(real_run), "--store", roles["owner"]).returncode == 0
    adder = roles["names"][2]
    grant(roles, adder, "INSERT")
    roles["server"].sql(roles["database"],
                        f"GRANT SELECT ON multinet_bench.schema_migrations TO {adder}")
    err = refused_before_measuring(run_into(roles["adder"], tmp_path / "run"),
                                   tmp_path / "run")
    assert "this role may not add runs (no SELECT on multinet_bench.runs); grant it" in err


def test_a_refused_add_leaves_an_older_store_where_it_is(real_run, tmp_path, store_url):
    """An older store's tables move on the next add that lands; an add refused (the same
    run id with other contents, or a damaged second folder) moves nothing, writes nothing."""
    theirs = make_older_store(real_run, store_url)
    before = tables_of(store_url)
    digest = None if store_url.startswith("postgresql://") else sha(Path(store_url))
    other = renamed(real_run, tmp_path / "other", json.loads(
        (real_run / "sweep.json").read_text())["run_id"])
    samples = (other / "samples.csv").read_text().splitlines(keepends=True)
    cells = samples[1].split(",")
    cells[-2] = str(float(cells[-2]) * 3)  # one sample's device_ms: other contents
    (other / "samples.csv").write_text(samples[0] + ",".join(cells) + "".join(samples[2:]))
    err = one_line(history("add", str(other), "--store", store_url))
    assert "is already in the store with other contents" in err
    good = renamed(real_run, tmp_path / "good", "run-good")
    err = one_line(history("add", str(good), str(tmp_path / "missing"), "--store", store_url))
    assert "missing: no such run folder" in err
    assert tables_of(store_url) == before
    if digest is not None:
        assert sha(Path(store_url)) == digest
    with look(store_url, theirs) as connection:
        assert connection.execute(f"SELECT run_id FROM {theirs}.runs").fetchall() == [
            (json.loads((real_run / "sweep.json").read_text())["run_id"],)]


def look(url: str, schema: str):
    if url.startswith("postgresql://"):
        return psycopg.connect(url)
    return duckdb.connect(url, read_only=True)


@pytest.mark.parametrize("schema", ["pg_catalog", "information_schema", "pg_temp_1"])
def test_a_schema_the_database_keeps_for_itself_is_refused(real_run, tmp_path, schema):
    store = tmp_path / "h.duckdb"
    err = one_line(history("add", str(real_run), "--store", str(store), "--schema", schema))
    assert f"history schema {schema!r} is one the database keeps for itself" in err
    assert not store.exists()


def test_another_role_s_tables_this_role_cannot_see_are_refused_by_name(real_run, tmp_path,
                                                                        roles):
    """The owner's tables of these names in its schema `team`, on which the adder has no
    grant: the information schema hides them from it, the catalog does not."""
    run_sql(roles["owner"], ["CREATE SCHEMA team", *(f"CREATE TABLE team.{t} (x INTEGER)"
                                                     for t in ("runs", "results", "samples"))])
    err = one_line(history("add", str(real_run), "--store", roles["adder"], "--schema",
                           "team"))
    assert "schema team holds tables this harness did not make" in err
    proc = subprocess.run([sys.executable, "-m", "bench", "run", *__import__(
        "tests.conftest", fromlist=["TINY_RUN"]).TINY_RUN, "--out-dir", str(tmp_path / "run"),
        "--history", roles["adder"]], cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**_environ(), "BENCH_HISTORY_SCHEMA": "team"})
    assert "schema team holds tables this harness did not make" in \
        refused_before_measuring(proc, tmp_path / "run")


@pytest.mark.parametrize("schema", ["main", "public"])
def test_the_database_s_default_schema_is_refused_for_it_holds_older_stores(real_run,
                                                                          store_url, schema):
    """Tables made there would pass for a store older than the project's schema, and the
    next writer of another schema would move them away as such."""
    err = one_line(history("add", str(real_run), "--store", store_url, "--schema", schema))
    assert f"history schema {schema!r} is a database's default" in err
    err = one_line(history("add", str(real_run), "--store", store_url,
                           env={"BENCH_HISTORY_SCHEMA": schema}))
    assert f"history schema {schema!r} is a database's default" in err
    # nothing was made in it: another schema's writer finds no older store to move there
    proc = history("add", str(real_run), "--store", store_url, "--schema", "team_b")
    assert proc.returncode == 0, proc.stderr
    with look(store_url, "team_b") as con:
        (runs,), = con.execute("SELECT count(*) FROM team_b.runs").fetchall()
    assert runs == 1


@pytest.mark.parametrize("file, schema", [("multinet_bench.duckdb", None),
                                          ("hist.duckdb", "hist")])
def test_a_duckdb_file_named_as_its_schema_takes_runs_and_shows_them(real_run, tmp_path,
                                                                     file, schema):
    """DuckDB names the database after its file: a schema of the same name is read as
    that schema, not taken for the database."""
    store = tmp_path / file
    named = ["--schema", schema] if schema else []
    for outcome in ("added", "already in the store"):
        proc = history("add", str(real_run), "--store", str(store), *named)
        assert proc.returncode == 0 and outcome in proc.stdout, proc.stderr
    proc = history("report", "--store", str(store), *named, "--out", str(tmp_path / "p.html"))
    assert proc.returncode == 0 and "(1 runs" in proc.stdout, proc.stderr
    assert history("changes", "--store", str(store), *named).returncode == 0


def test_duckdb_s_own_system_schema_is_refused(real_run, tmp_path):
    store = tmp_path / "h.duckdb"
    err = one_line(history("add", str(real_run), "--store", str(store), "--schema", "system"))
    assert "history schema 'system' is one the database keeps for itself" in err
