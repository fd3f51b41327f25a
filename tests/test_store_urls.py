"""A store's URL is read as the user meant it, or refused in one line before anything is
measured: a URL with spaces around it is the URL (never a file named after it, its password
in the name), a name DuckDB keeps nothing under is refused, and `run --history` refuses an
unknown scheme or an unreachable server before its sweep, not after."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.conftest import ROOT, TINY_RUN
from tests.postgres_server import free_port

PASSWORD = "PASSWORD-s3cret"


def bench(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "BENCH_HISTORY"))}
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300,
                          env={**base, "PYTHONPATH": str(ROOT), **(env or {})})


def names_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture
def role_url(postgres):
    """A URL of a role that must give PASSWORD, owning a fresh database."""
    role, database = f"u_{uuid.uuid4().hex[:8]}", f"d{uuid.uuid4().hex[:8]}"
    postgres.create_role(role, PASSWORD)
    postgres.create_database(database, owner=role)
    return f"postgresql://{role}:{PASSWORD}@127.0.0.1:{postgres.port}/{database}"


@pytest.mark.slow
@pytest.mark.parametrize("how", ["leading space", "trailing newline", "tab in BENCH_HISTORY"])
def test_a_url_with_spaces_around_it_reaches_postgresql(role_url, real_run, tmp_path, how):
    work = tmp_path / "cwd"
    work.mkdir()
    if how == "tab in BENCH_HISTORY":
        proc = bench("history", "add", str(real_run), cwd=work,
                     env={"BENCH_HISTORY": f"\t{role_url}"})
    else:
        spaced = f" {role_url}" if how == "leading space" else f"{role_url}\n"
        proc = bench("history", "add", str(real_run), "--store", spaced, cwd=work)
    assert proc.returncode == 0 and " added (8 rows, " in proc.stdout, proc.stderr
    assert " in postgresql://u_" in proc.stdout
    assert names_under(work) == []  # no DuckDB file made of the URL
    assert PASSWORD not in proc.stdout + proc.stderr


@pytest.mark.parametrize("store, expected", [
    (":memory:", "DuckDB's special names (:memory: and the like) keep nothing"),
    (":memory:named", "DuckDB's special names"),
    (f"results/postgresql://alice:{PASSWORD}@host/db", "neither a file path nor a URL"),
    (f"x postgresql://alice:{PASSWORD}@host/db", "neither a file path nor a URL"),
    # schemes mistyped: echoed with the password masked, or refused without being shown
    (f"postgresql_://alice:{PASSWORD}@host/db", "postgresql_://alice:***@host/db is neither"),
    (f"postgresql ://alice:{PASSWORD}@host/db", "postgresql ://alice:***@host/db is neither"),
    (f"postgresql%3A//alice:{PASSWORD}@host:5432/db",
     "postgresql%3A//alice:***@host:5432/db is neither"),
    (f"postgresql%3A/alice:{PASSWORD}@host/db", "USER:PASSWORD@ in one of its parts (not shown"),
    (f"stores/alice:{PASSWORD}@host/db", "USER:PASSWORD@ in one of its parts"),
    # a server's URL without its scheme: no file named after its password
    (f"127.0.0.1:5432/bench?password={PASSWORD}", "holds what reads as a password (not shown)"),
    (f"//alice@127.0.0.1:5432/bench?password={PASSWORD}", "holds what reads as a password"),
    # a query part libpq cannot read is quoted back by libpq: refused first, not shown
    (f"postgresql://alice@127.0.0.1:5/db?password{PASSWORD}", "a query part that is not "
     "KEY=VALUE with a key libpq reads (not shown"),
    (f"postgresql://alice@127.0.0.1:5/db?pass%77ord%3D{PASSWORD}", "not KEY=VALUE"),
    (f"postgresql://alice@127.0.0.1:5/db?password:{PASSWORD}", "not KEY=VALUE"),
])
def test_a_name_no_file_would_keep_is_refused(real_run, tmp_path, store, expected):
    work = tmp_path / "cwd"
    work.mkdir()
    proc = bench("history", "add", str(real_run), "--store", store, cwd=work)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert expected in proc.stderr and "added" not in proc.stdout
    assert PASSWORD not in proc.stdout + proc.stderr
    assert names_under(work) == []


def refused_before_measuring(store: str, tmp_path: Path) -> str:
    """`run --history store`'s one line on stderr, after checking that it left with exit
    code 2 and measured nothing."""
    run = tmp_path / "run"
    proc = bench("run", *TINY_RUN, "--out-dir", str(run), "--history", store, cwd=ROOT)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert not run.exists() and "Results:" not in proc.stdout
    assert PASSWORD not in proc.stdout + proc.stderr
    return proc.stderr


@pytest.mark.parametrize("store, expected", [
    (f"mysql://alice:{PASSWORD}@127.0.0.1/db", "unknown scheme mysql"),
    (f"postgresql//alice:{PASSWORD}@127.0.0.1/db", "URL starts postgresql://"),
    (":memory:", "DuckDB's special names"),
])
def test_run_refuses_a_store_it_cannot_read_before_its_sweep(tmp_path, store, expected):
    assert expected in refused_before_measuring(store, tmp_path)


def test_run_refuses_a_server_that_does_not_answer_before_its_sweep(tmp_path):
    store = f"postgresql://alice:{PASSWORD}@127.0.0.1:{free_port()}/db"
    assert "cannot reach history store postgresql://alice@127.0.0.1:" in \
        refused_before_measuring(store, tmp_path)


def test_run_refuses_a_wrong_password_before_its_sweep(role_url, tmp_path):
    store = role_url.replace(PASSWORD, "PASSWORD-wrong")
    assert "password authentication failed" in refused_before_measuring(store, tmp_path)


@pytest.mark.parametrize("variable", ["BENCH_HISTORY", "HISTORY"])
def test_make_bench_never_prints_the_store_url_s_password(tmp_path, variable):
    """make echoes a recipe line before running it: `make bench`'s carries the store URL.
    A server that does not answer makes the run stop before measuring (exit 2)."""
    store = f"postgresql://alice:{PASSWORD}@127.0.0.1:{free_port()}/db"
    proc = subprocess.run(["make", "--no-print-directory", "bench", f"PYTHON={sys.executable}",
                           f"ARGS=--out-dir {tmp_path / 'run'}"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, variable: store})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "cannot reach history store postgresql://alice@127.0.0.1:" in proc.stderr
    assert PASSWORD not in proc.stdout + proc.stderr


@pytest.mark.slow
def test_an_interrupted_run_s_resume_command_keeps_its_store(role_url, tmp_path):
    """SIGINT to `run --history URL` with its schema named in BENCH_HISTORY_SCHEMA: the
    resume command it prints names the store (without its password, and says where to give
    that) and the schema, and that command, run as printed, stores the run there."""
    import shlex
    import signal
    import time

    run = tmp_path / "run"
    # three groups of two configurations, a second each, timed one group at a time: a
    # signal once the first group is written stops the run after the one in progress, the
    # third not measured
    options = [{"0.02": "1"}.get(opt, opt) for opt in TINY_RUN]
    options[options.index("--batch-sizes") + 1] = "2,4,8"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "BENCH_HISTORY"))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench", "run", *options, "--interleave", "1",
         "--target-ci", "0", "--max-samples", "1000000", "--out-dir", str(run),
         "--history", role_url],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**base, "PYTHONPATH": str(ROOT), "BENCH_HISTORY_SCHEMA": "team_env"})
    deadline = time.monotonic() + 120
    # a group written: the sweep's own handlers are in (a signal during its setup, however
    # long a loaded machine makes that, takes the folder back instead)
    results = run / "results.csv"
    while not (results.exists() and results.read_text().count("\n") > 1):
        assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert PASSWORD not in out + err and "History:" not in out
    line = next((line for line in err.splitlines() if "to continue: " in line), err)
    assert "to continue: " in line, err
    command = shlex.split(line.split("to continue: ", 1)[1])
    store = role_url.replace(f":{PASSWORD}@", "@")
    assert command[0] == "BENCH_HISTORY_SCHEMA=team_env"
    assert command[-4:] == ["--resume", str(run), "--history", store]
    assert "note: the store's password is left out of that command: give it in PGPASSWORD" \
        in err
    resumed = subprocess.run(["env", command[0], sys.executable, *command[2:]], cwd=ROOT,
                             capture_output=True, text=True, timeout=300,
                             env={**base, "PYTHONPATH": str(ROOT), "PGPASSWORD": PASSWORD})
    assert resumed.returncode == 0, resumed.stderr
    run_id = json.loads((run / "sweep.json").read_text())["run_id"]
    assert f"History: {run_id} added in {store}" in resumed.stdout
    import psycopg
    with psycopg.connect(role_url) as connection:
        stored = connection.execute("SELECT run_id FROM team_env.runs").fetchall()
        schemas = {r[0] for r in connection.execute("SELECT nspname FROM pg_namespace")}
    assert stored == [(run_id,)] and "multinet_bench" not in schemas


def test_a_store_s_name_keeps_every_setting_but_its_password():
    """The name is what a resume command connects with: sslmode=verify-full dropped from it
    would resume without checking the server's certificate."""
    from bench.history.location import locate
    location = locate(f"postgresql://alice:{PASSWORD}@db.example:5432/bench?sslmode=verify-full"
                      f"&connect_timeout=5&password={PASSWORD}&application_name=x")
    assert location.name == ("postgresql://alice@db.example:5432/bench?sslmode=verify-full"
                             "&connect_timeout=5&application_name=x")


def test_a_password_inside_a_shown_setting_is_masked_there_too():
    from bench.history.location import locate
    location = locate(f"postgresql://db.example/bench?password={PASSWORD}"
                      f"&application_name={PASSWORD}-x")
    assert location.name == "postgresql://db.example/bench?application_name=***-x"


@pytest.mark.parametrize("schema, default_of", [("public", "PostgreSQL's"), ("main", "DuckDB's")])
def test_a_default_schema_is_refused_naming_whose_default_it_is(schema, default_of):
    from bench.history.store import StoreError, schema_name
    with pytest.raises(StoreError, match=f"is a database's default .*{default_of}"):
        schema_name(schema)


def test_a_new_duckdb_store_has_its_driver_imported_before_the_sweep(tmp_path):
    """A signal raised inside a compiled driver's first import aborts the process (the
    driver's own fatal error, not Python's): the check before the sweep imports it, so the
    add after the sweep, to a store that did not exist yet, never imports it first."""
    program = ("import sys; from bench.history.store import check_store; "
               f"check_store({str(tmp_path / 'new' / 'h.duckdb')!r}); "
               "print('duckdb' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", program], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True"]
    assert not (tmp_path / "new").exists()  # checked, nothing made
