"""Which store a ``--store`` text names, decided before any database library sees it.

Spaces around the text are not part of it. Two kinds: a PostgreSQL URL (``postgresql://``
or ``postgres://``, in any case: libpq itself reads only the lower-case spelling, so it is
handed that) and a DuckDB file (a path, or ``duckdb://PATH``). Anything else with a scheme
(``mysql://``, ``sqlite://``, ``s3://``, DuckDB's own ``md:``) is refused by name: DuckDB
would otherwise take it for a path, or download an extension to open it; so is a DuckDB
special name (``:memory:`` keeps nothing), and a path with ``://`` in it (a mistyped URL,
not a file to create). A keyword/value connection string is refused too, without echoing
it. A file that exists is opened by DuckDB only when it is one (its header says so): an
SQLite database or any other file is refused by name.

A PostgreSQL URL's password (in its user information or its query) never leaves this
module but in the URL handed to libpq: the store's ``name`` has none, and ``secrets``
lists it for masking anything a library says (``bench/secrets.py``). A URL libpq would
read differently from the way it looks (an ``@`` in a password or a database name, where
libpq takes the first ``@`` for the end of the user information and would quote the rest
back in its errors) is refused, asking for the character percent-encoded.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from bench.history.store_error import StoreError
from bench.output_path import RUN_MARKERS, broken_link, resolved
from bench.secrets import MASK, hide

POSTGRESQL, DUCKDB = "postgresql", "duckdb"
POSTGRES_SCHEMES = ("postgresql", "postgres")
# a scheme of two letters or more: a single one before a colon is a path on this system
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):(.*)$", re.DOTALL)
_KEYWORDS = re.compile(r"(?i)(^|\s)(host|hostaddr|port|dbname|user|password|service)\s*=")
# query parameters that name where the store is, shown in its name; the rest are left out
PASSWORD_PARAMETERS = ("password", "sslpassword")
# libpq's connection parameters, passwords aside (its documentation's list)
SHOWN_PARAMETERS = (
    "host", "hostaddr", "port", "dbname", "user", "service", "passfile", "channel_binding",
    "connect_timeout", "client_encoding", "options", "application_name",
    "fallback_application_name", "keepalives", "keepalives_idle", "keepalives_interval",
    "keepalives_count", "tcp_user_timeout", "replication", "gssencmode", "sslmode",
    "sslnegotiation", "requiressl", "sslcompression", "sslcert", "sslkey", "sslcertmode",
    "sslrootcert", "sslcrl", "sslcrldir", "sslsni", "requirepeer", "require_auth",
    "ssl_min_protocol_version", "ssl_max_protocol_version", "krbsrvname", "gsslib",
    "gssdelegation", "target_session_attrs", "load_balance_hosts")
# DuckDB's file header: a checksum, then its magic bytes at offset 8
DUCKDB_MAGIC, DUCKDB_MAGIC_AT = b"DUCK", 8
SQLITE_MAGIC = b"SQLite format 3\x00"
MEMORY = ":memory:"


@dataclass(frozen=True)
class Location:
    kind: str  # POSTGRESQL or DUCKDB
    target: str  # the URL libpq is given, or the DuckDB file's path
    name: str  # for messages and pages: never a password
    secrets: tuple[str, ...] = ()


def locate(text: str) -> Location:
    """The store ``text`` names; a StoreError in one line, naming no password, where it
    names none this harness can open."""
    # a URL pasted with a space or a tab around it (a shell variable, a Makefile line) is
    # the URL: left in, it would make the whole text a file path
    text = text.strip()
    if not text:
        raise StoreError("the history store is empty: give a DuckDB file or a postgresql:// "
                         "URL")
    if _KEYWORDS.search(text) and "://" not in text:
        raise StoreError("a keyword=value connection string is not a store URL: give "
                         "postgresql://user@host:port/db, its password in the environment "
                         "or a service file, where libpq finds it")
    match = _SCHEME.match(text)
    if match is None:
        if re.match(r"(?i)postgres(ql)?//", text):  # not a file name anyone means
            raise StoreError("a PostgreSQL store's URL starts postgresql://")
        return _duckdb(text)
    scheme, rest = match.group(1).lower(), match.group(2)
    if scheme in POSTGRES_SCHEMES:
        if not rest.startswith("//"):
            raise StoreError("a PostgreSQL store's URL starts postgresql://")
        return postgresql(rest[2:])
    if scheme == DUCKDB:
        path = rest.removeprefix("//")
        if _SCHEME.match(path):
            raise StoreError(f"a duckdb:// store is a file path, not {_SCHEME.match(path)[1]}:")
        return _duckdb(path)
    raise StoreError(f"history store: unknown scheme {scheme}: give a DuckDB file (a path, "
                     "or duckdb://PATH) or a postgresql:// URL")


def postgresql(rest: str) -> Location:
    """A PostgreSQL URL from what follows ``postgresql://``, split as libpq splits it: the
    user information ends at the first ``@`` that comes before any ``/``."""
    credentials, tail = "", rest
    end = re.search(r"[@/]", rest)
    if end is not None and end.group() == "@":
        credentials, tail = rest[:end.start()], rest[end.end():]
    before_query, _, in_query = tail.partition("?")
    if "@" in before_query:
        raise StoreError("the history store's URL has an @ that libpq would not read as the "
                         "end of its user and password: percent-encode an @ or / in the "
                         "password or the database name (%40, %2F)")
    if "@" in in_query:  # read by libpq, but a second @ is where a password's masking begins
        raise StoreError("the history store's URL has an @ in its query: percent-encode it "
                         "there (%40)")
    user, has_password, password = credentials.partition(":")
    address, _, query = tail.partition("?")
    pairs = [part.partition("=") for part in query.split("&") if part]
    # libpq quotes back a part it cannot read (no =, or a key it does not know, such as a
    # mistyped `passwordSECRET` or `password%3DSECRET`): refused here, and not shown
    if any(not equals or _key(key) not in (*SHOWN_PARAMETERS, *PASSWORD_PARAMETERS)
           for key, equals, _ in pairs):
        raise StoreError("the history store's URL has a query part that is not KEY=VALUE with "
                         "a key libpq reads (not shown: it may hold a password); a "
                         "password goes in the environment or a service file, where libpq "
                         "finds it, or in the query's password parameter")
    secrets = [password] if has_password else []
    # keys as libpq reads them: percent-decoded (``pass%77ord`` is ``password``)
    secrets += [value for key, _, value in pairs if _key(key) in PASSWORD_PARAMETERS]
    # every setting libpq knows but a password: the store's name is what a resume command
    # connects with, so sslmode=verify-full, say, must not be dropped from it (a key libpq
    # does not know is refused by it, and its value may be anything: it is not shown)
    shown = "&".join(f"{key}={value}" for key, _, value in pairs
                     if _key(key) in SHOWN_PARAMETERS)
    name = f"postgresql://{user + '@' if user else ''}{address}{'?' + shown if shown else ''}"
    every = {form for secret in secrets if secret for form in (secret, unquote(secret))}
    # a shown setting may hold the password itself (application_name=PASSWORD-x): masked
    # there too, though the name then connects with that setting changed
    return Location(POSTGRESQL, "postgresql://" + rest, hide(name, every), tuple(sorted(every)))


# USER:PASSWORD@ before a path's first slash, as a URL's user information is written
_USERINFO = re.compile(r"[^/:@]*:[^/]*@")


# USER:PASSWORD@ within any part of a path
_IN_A_PART = re.compile(r"(^|/)[^/]*:[^/]*@")


def _shown(text: str) -> str:
    """``text`` masked, or not shown at all where a USER:PASSWORD@ that no rule of ``hide``
    foresaw may be left in it."""
    masked = hide(text)
    return "(not shown: it may hold a password)" if _IN_A_PART.search(
        masked.replace(f":{MASK}@", "@")) else masked


def _key(key: str) -> str:
    return unquote(key).lower()


def _duckdb(path: str) -> Location:
    """A DuckDB file at ``path``; never a name DuckDB reads as something else (``:memory:``
    keeps nothing), nor a text with a URL or a password in it (a file would be made of a
    mistyped URL, its password in the file's name)."""
    if path.startswith(":"):
        raise StoreError(f"history store {path}: DuckDB's special names ({MEMORY} and the "
                         "like) keep nothing; give a DuckDB file's path")
    if "://" in path or re.search(r"(?i)%3a//", path):  # a URL, its scheme mistyped
        raise StoreError(f"history store {_shown(path)} is neither a file path nor a URL "
                         "this harness reads: give a DuckDB file or a postgresql:// URL")
    if _USERINFO.match(path):  # duckdb://user:password@host/db: a server's URL, mistyped
        raise StoreError(f"history store {hide('duckdb://' + path)}: a duckdb:// store is a "
                         "file path, not USER:PASSWORD@HOST; a server's store is a "
                         "postgresql:// URL")
    if _IN_A_PART.search(path):  # a server's URL mistyped past recognition
        raise StoreError("history store: the path given has USER:PASSWORD@ in one of its "
                         "parts (not shown: it may hold a password), a server's URL, not a "
                         "file; a server's store is a postgresql:// URL")
    if hide(path) != path:  # a server's URL without its scheme: HOST/DB?password=...
        raise StoreError("history store: the path given holds what reads as a password (not "
                         "shown), a server's URL without its scheme, not a file; a server's "
                         "store is a postgresql:// URL")
    if not path.strip():
        raise StoreError("history store duckdb:// names no file; give duckdb://PATH or a path")
    # ~ the home folder, as a shell makes it (a quoted one, or $BENCH_HISTORY's, comes here
    # as typed): DuckDB expands it itself, so the store's folder, made from the text as
    # given, was a ./~ beside the store in the home folder, or not the store's at all
    path = os.path.expanduser(path)
    return Location(DUCKDB, path, path)


def check_duckdb_file(path: Path) -> None:
    """Refuse, by name, a path DuckDB must not open: a folder, or a file that is not a
    DuckDB database (DuckDB would try to read an SQLite file through an extension it
    downloads)."""
    # DuckDB makes a new store where a link to nowhere points; the folders above it are
    # made here, and through such a link the system says only "File exists"
    line = broken_link(path, "history store", folders_only=True)
    if line is not None:
        raise StoreError(line)
    if path.is_dir():
        if any((path / marker).exists() for marker in RUN_MARKERS):  # not a file in it
            raise StoreError(f"history store {path} is a run folder; give a file outside "
                             "it, e.g. results/history.duckdb")
        raise StoreError(f"history store {path} is a folder; give a file, e.g. "
                         f"{path / 'history.duckdb'}")
    if not path.exists():
        return
    if not path.is_file():  # a device or a pipe: read, it may never answer
        raise StoreError(f"history store {path} is not a plain file (a device, a pipe or a "
                         "socket): give a DuckDB file or a postgresql:// URL")
    try:
        with open(path, "rb") as f:
            head = f.read(len(SQLITE_MAGIC))
    except OSError as exc:
        raise StoreError(f"cannot read history store {path}: {exc.strerror or exc}") from None
    if head.startswith(SQLITE_MAGIC):
        raise StoreError(f"history store {path} is an SQLite database, not a DuckDB file: "
                         "give a DuckDB file or a postgresql:// URL")
    if head[DUCKDB_MAGIC_AT:DUCKDB_MAGIC_AT + len(DUCKDB_MAGIC)] != DUCKDB_MAGIC:
        raise StoreError(f"history store {path} is not a DuckDB file: give a DuckDB file "
                         "(a new one is created where none is) or a postgresql:// URL")


def check_store_apart(store: str, folder: Path | None, option: str) -> None:
    """A DuckDB store is a file of its own, never the run ``folder`` or a file in it: a run
    folder holds the run's files alone (a sweep would find its folder taken, or the store
    refused as no store, only once it was over; an add would leave the store among the
    files of the run it stored)."""
    location = locate(store)
    if location.kind != DUCKDB:
        return
    target = resolved(Path(location.target))
    if any((target.parent / marker).exists() for marker in RUN_MARKERS):  # another run's
        raise StoreError(f"{option} {location.name} is in the run folder {target.parent}; "
                         "give a store outside it, e.g. results/history.duckdb")
    if folder is None:
        return
    run = resolved(Path(folder))
    if target == run or run in target.parents:
        where = "the run folder" if target == run else "in the run folder"
        raise StoreError(f"{option} {location.name} is {where} {folder}; give a store "
                         "outside it, e.g. results/history.duckdb")
