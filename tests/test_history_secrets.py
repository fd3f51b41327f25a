"""A history store's password never reaches a file, a page, a line of output or the store,
in any form libpq takes one: in the URL's user information, in its query, from PGPASSWORD
or from a service file. A real PostgreSQL server asks for it (scram-sha-256), a real run is
made with it, and everything the run and the history commands write is searched for it."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

from tests.conftest import ROOT, TINY_RUN

pytestmark = pytest.mark.slow

# "PASSWORD" in it, so that a search for the word finds it in any spelling (percent-encoded
# too); an @ and a / that a URL must encode
PASSWORD = "PASSWORD-9q@x/7"
ENCODED = quote(PASSWORD, safe="")


@pytest.fixture
def secret(postgres, tmp_path):
    """A role that must give PASSWORD, owning a fresh database; the URL of each form."""
    role, database = f"secret_{uuid.uuid4().hex[:8]}", f"s{uuid.uuid4().hex[:8]}"
    postgres.create_role(role, PASSWORD)
    postgres.create_database(database, owner=role)
    where = f"127.0.0.1:{postgres.port}/{database}"
    (tmp_path / "service").mkdir()
    service = tmp_path / "service" / "pg_service.conf"  # where the password is kept
    service.write_text(f"[bench]\nhost=127.0.0.1\nport={postgres.port}\nuser={role}\n"
                       f"password={PASSWORD}\ndbname={database}\n")
    return {"role": role, "server": postgres, "database": database, "forms": {
        "user information": (f"postgresql://{role}:{ENCODED}@{where}", {}),
        "capital scheme": (f"POSTGRESQL://{role}:{ENCODED}@{where}", {}),
        "query": (f"postgresql://{role}@{where}?password={ENCODED}", {}),
        # libpq percent-decodes a query's keys: this is its password too
        "encoded query key": (f"postgresql://{role}@{where}?pass%77ord={ENCODED}", {}),
        "PGPASSWORD": (f"postgresql://{role}@{where}", {"PGPASSWORD": PASSWORD}),
        "service file": ("postgresql://?service=bench", {"PGSERVICEFILE": str(service)}),
    }}


def bench(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    # no password from this process's environment: each test gives its own
    base = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300,
                          env={**base, "PYTHONPATH": str(ROOT), **(env or {})})


def store_dump(secret) -> str:
    """Every row of every table of the store, as text, read by the superuser."""
    url = secret["server"].url(secret["database"])
    with psycopg.connect(url) as connection:
        tables = connection.execute("SELECT table_name FROM information_schema.tables WHERE "
                                    "table_schema = 'multinet_bench'").fetchall()
        assert {t for (t,) in tables} >= {"runs", "results", "samples"}
        return "\n".join(str(connection.execute(f"SELECT * FROM multinet_bench.{t}")
                             .fetchall()) for (t,) in tables)


def leaks(*texts: str, folders: tuple[Path, ...] = ()) -> list[str]:
    """Where PASSWORD appears: `grep -r PASSWORD` over ``folders``, and in ``texts``."""
    found = [f"text {i}" for i, text in enumerate(texts) if "PASSWORD" in text]
    for folder in folders:
        found += [str(p) for p in folder.rglob("*") if p.is_file()
                  and b"PASSWORD" in p.read_bytes()]
    return found


@pytest.mark.parametrize("form", ["user information", "encoded query key"])
def test_a_run_made_with_a_password_in_its_store_url_leaks_it_nowhere(secret, tmp_path, form):
    url, _ = secret["forms"][form]
    run = tmp_path / "run"
    made = bench("run", *TINY_RUN, "--out-dir", str(run), "--history", url)
    assert made.returncode == 0, made.stderr
    assert f"added in postgresql://{secret['role']}@127.0.0.1" in made.stdout, made.stderr
    assert "--history postgresql://" in (run / "env.json").read_text()
    resumed = bench("run", "--resume", str(run), "--quiet", "--history", url)
    assert resumed.returncode == 0, resumed.stderr
    pages = tmp_path / "pages"
    pages.mkdir()
    report = bench("report", str(run), "--out", str(pages / "report.html"))
    dashboard = bench("history", "report", "--store", url, "--out", str(pages / "history.html"))
    changes = bench("history", "changes", "--store", url)
    assert [p.returncode for p in (report, dashboard, changes)] == [0, 0, 0], dashboard.stderr
    server_log = (secret["server"].root / "log").read_text(errors="replace")
    outputs = [p.stdout + p.stderr for p in (made, resumed, report, dashboard, changes)]
    assert leaks(*outputs, store_dump(secret), server_log, folders=(run, pages)) == []
    assert sorted(p.name for p in pages.iterdir()) == ["history.html", "report.html"]


@pytest.mark.parametrize("form", ["user information", "capital scheme", "query",
                                  "encoded query key", "PGPASSWORD", "service file"])
def test_every_form_of_password_works_and_is_never_shown(secret, real_run, tmp_path, form):
    url, env = secret["forms"][form]
    added = bench("history", "add", str(real_run), "--store", url, env=env)
    assert added.returncode == 0 and " added (8 rows, " in added.stdout, added.stderr
    page = tmp_path / "pages" / "history.html"
    dashboard = bench("history", "report", "--store", url, "--out", str(page), env=env)
    assert dashboard.returncode == 0, dashboard.stderr
    assert leaks(added.stdout, added.stderr, dashboard.stdout, dashboard.stderr,
                 store_dump(secret), folders=(page.parent,)) == []


def wrong(text: str) -> str:
    return text.replace(PASSWORD, "PASSWORD-wrong").replace(ENCODED, quote("PASSWORD-wrong"))


@pytest.mark.parametrize("form", ["user information", "capital scheme", "query",
                                  "encoded query key", "PGPASSWORD", "service file"])
def test_a_wrong_password_is_refused_without_showing_it(secret, real_run, tmp_path, form):
    url, env = secret["forms"][form]
    if form == "service file":
        service = Path(env["PGSERVICEFILE"])
        service.write_text(wrong(service.read_text()))
    proc = bench("history", "add", str(real_run), "--store", wrong(url),
                 env={k: wrong(v) for k, v in env.items()})
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "cannot reach history store postgresql://" in proc.stderr
    assert "password authentication failed" in proc.stderr
    assert leaks(proc.stdout, proc.stderr) == []


def test_urls_libpq_would_misread_are_refused_without_showing_the_password(secret, real_run):
    role, port = secret["role"], secret["server"].port
    cases = {
        # libpq ends the user information at the first @ and would quote the rest back
        f"postgresql://{role}:{PASSWORD}@127.0.0.1:{port}/db": "percent-encode an @ or /",
        f"postgresql://{role}:PASSWORD/x@127.0.0.1:{port}/db": "percent-encode an @ or /",
        f"postgresql://{role}:{ENCODED}@[::1:{port}/db": "cannot reach history store",
        f"postgresql://{role}:{ENCODED}@127.0.0.1:{port}/db?foo=PASSWORD":
            "a query part that is not KEY=VALUE with a key libpq reads",
        f"host=127.0.0.1 port={port} user={role} password={ENCODED}":
            "a keyword=value connection string is not a store URL",
        f"postgresql//{role}:{ENCODED}@127.0.0.1:{port}/db": "URL starts postgresql://",
    }
    for url, expected in cases.items():
        proc = bench("history", "add", str(real_run), "--store", url)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
        assert expected in proc.stderr, proc.stderr
        assert leaks(proc.stdout, proc.stderr) == [], proc.stderr


@pytest.mark.parametrize("password", ["a%z", "%zz", "x%"])
def test_a_short_password_libpq_quotes_back_is_not_shown(real_run, password):
    """Too short to be masked by its value wherever it appears (it would mangle the message
    around it), and quoted whole by libpq's complaint about its percent-encoding."""
    url = f"postgresql://alice:{password}@127.0.0.1:5/bench"
    proc = bench("history", "add", str(real_run), "--store", url)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "cannot reach history store postgresql://alice@127.0.0.1:5/bench" in proc.stderr
    assert password not in proc.stdout + proc.stderr
