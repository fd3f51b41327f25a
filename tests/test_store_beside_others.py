"""Two teams' stores in one PostgreSQL database, one in a schema named after its role: a
role's search path ("$user", public by default) points at that schema, and it must never
be taken for a store made before the tables had a schema of their own (which lives in
public alone), neither read as the other team's nor moved by its add. A real server, real
runs, real subprocesses."""

from __future__ import annotations

import uuid

import pytest

from bench.history.store import open_store
from tests.test_history_shared import history, make_older_store, one_line, renamed, tables_of

pytestmark = pytest.mark.slow


def run_ids(url: str, schema: str) -> list[str]:
    with open_store(url, schema=schema) as store:
        return [run_id for (run_id,) in store.execute("SELECT run_id FROM runs ORDER BY 1")]


def test_a_store_in_the_role_s_own_schema_is_neither_read_nor_moved_by_another(
        real_run, tmp_path, postgres):
    role = f"team_{uuid.uuid4().hex[:8]}"
    postgres.create_role(role)
    url = postgres.create_database(f"db_{role}", owner=role).replace("postgres@", f"{role}@")
    theirs = history("add", str(real_run), "--store", url, "--schema", role)
    assert theirs.returncode == 0, theirs.stderr
    # the other team's default schema, on the same role: nothing of theirs is read as its
    said = one_line(history("changes", "--store", url))
    assert "holds no runs yet (no tables in schema multinet_bench" in said
    ours = history("add", str(renamed(real_run, tmp_path / "b", "run-b")), "--store", url)
    assert ours.returncode == 0, ours.stderr
    assert {schema for schema, _ in tables_of(url)} == {role, "multinet_bench"}
    first = [line for line in theirs.stdout.splitlines() if ": added" in line][0]
    assert run_ids(url, role) == [first.split(":")[0].strip()]
    assert run_ids(url, "multinet_bench") == ["run-b"]


def test_an_older_store_is_the_default_schema_s_alone_to_adopt(real_run, tmp_path, store_url):
    """A team naming its own schema starts empty: it neither reads the older store in the
    database's default schema as its own nor moves it away from the default one."""
    older = make_older_store(real_run, store_url)
    said = one_line(history("changes", "--store", store_url, "--schema", "team_b"))
    assert "holds no runs yet (no tables in schema team_b" in said
    proc = history("add", str(renamed(real_run, tmp_path / "b", "run-b")), "--store",
                   store_url, "--schema", "team_b")
    assert proc.returncode == 0, proc.stderr
    assert {schema for schema, _ in tables_of(store_url)} == {older, "team_b"}
    assert run_ids(store_url, "team_b") == ["run-b"]
    # the default schema's next writer still finds it where it was, and moves it
    proc = history("add", str(renamed(real_run, tmp_path / "c", "run-c")), "--store", store_url)
    assert proc.returncode == 0, proc.stderr
    assert {schema for schema, _ in tables_of(store_url)} == {"team_b", "multinet_bench"}
    assert len(run_ids(store_url, "multinet_bench")) == 2
