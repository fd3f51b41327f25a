"""A real PostgreSQL server for the history tests, started in a temporary folder.

``initdb`` and ``pg_ctl`` from Debian's `postgresql` package (on PATH, or under
/usr/lib/postgresql/<version>/bin), listening on a free local port with trust
authentication; stopped and removed afterwards. PostgreSQL refuses to run as root, so as
root the server runs as the `postgres` user the package creates. Where the binaries are
absent, ``find_binaries`` says so and the tests skip with that reason.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def find_binaries() -> tuple[Path | None, str]:
    """The folder holding initdb and pg_ctl, or None and why not."""
    found = shutil.which("initdb")
    candidates = ([Path(found).resolve().parent] if found else []) + \
        [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder, ""
    return None, "no PostgreSQL server binaries (initdb, pg_ctl): apt-get install postgresql"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    def __init__(self, binaries: Path):
        self.binaries = binaries
        self.root = Path(tempfile.mkdtemp(prefix="history-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(self.root, "postgres")

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, capture_output=True, timeout=120)

    def start(self) -> PostgresServer:
        self._run(str(self.binaries / "initdb"), "-D", str(self.data), "-A", "trust",
                  "-U", "postgres", "--no-sync")
        self._run(str(self.binaries / "pg_ctl"), "-D", str(self.data), "-l",
                  str(self.root / "log"), "-w", "-o",
                  f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off",
                  "start")
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str, owner: str = "postgres") -> str:
        import psycopg
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}" OWNER "{owner}"')
        return self.url(name)

    def sql(self, database: str, *statements: str) -> None:
        """Run ``statements`` as the superuser in ``database``."""
        import psycopg
        with psycopg.connect(self.url(database), autocommit=True) as connection:
            for statement in statements:
                connection.execute(statement)

    def create_role(self, name: str, password: str | None = None) -> None:
        """A login role; with a password, one that must give it (scram-sha-256) over TCP,
        while every other role keeps trust authentication."""
        from psycopg import sql
        import psycopg
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(name), sql.Literal(password)))
        if password is None:
            return
        hba = self.data / "pg_hba.conf"
        hba.write_text(f"host all {name} 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
        self._run(str(self.binaries / "pg_ctl"), "-D", str(self.data), "reload")
        deadline = time.monotonic() + 10  # the postmaster reads it again in its own time
        while time.monotonic() < deadline:
            try:
                psycopg.connect(f"postgresql://{name}@127.0.0.1:{self.port}/postgres").close()
            except psycopg.OperationalError as exc:
                if "password" in str(exc):
                    return
            time.sleep(0.05)
        raise RuntimeError(f"the server did not start asking {name} for a password")

    def stop(self) -> None:
        try:
            self._run(str(self.binaries / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                      "-w", "stop")
        except (subprocess.SubprocessError, OSError):
            pass
        for _ in range(3):
            shutil.rmtree(self.root, ignore_errors=True)
            if not self.root.exists():
                break
            time.sleep(0.2)
