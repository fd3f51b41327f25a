"""Where a command may write the page or file it is asked for: never over what was measured
or stored.

A page written with ``--out`` replaces whatever the path held. Given by mistake the path of
a run's own file (its results.csv, say), of the record of a folder of paired rounds, or of a
history store (its write-ahead log included), a command would destroy what it reads or
what a later command needs. So an output path is refused, in one line and before any work,
where it is in a run folder (but for the run's own page, written by ``report``), one of a
folder of paired rounds' own files (but for those ``paired`` writes there), a database or
its log, one of the inputs, a folder, or a device, a pipe or a socket.

A path through a symbolic link that leads nowhere is refused by name too, for every place
a command makes a folder or file: the system's own words for it are wrong (a folder made
through a link to nowhere "exists"), and pathlib raises, not an OSError, round a loop.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path

from bench.errors import UsageError
from bench.schema import RESULTS_FILE, SWEEP_FILE

# what makes a folder a run's: its results, its plan, or the lock of a sweep writing it
RUN_MARKERS = (RESULTS_FILE, SWEEP_FILE, ".lock")
# a folder of paired rounds: the record of what they measure, then the comparison's files
ROUNDS_RECORD = "rounds.json"
ROUNDS_FILES = (ROUNDS_RECORD, "paired.html", "decisions.json")
WRITE_AHEAD_LOG = ".wal"  # DuckDB keeps a store's latest commits in <store>.wal
SQLITE_HEADER = b"SQLite format 3\x00"
DUCKDB_MAGIC = b"DUCK"  # at bytes 8 to 12 of a DuckDB file


# scheme:/... (a Path makes a URL's // one /): a URL given where a path goes
URL_LIKE = re.compile(r"(?i)[a-z][a-z0-9+.-]*:/")


def broken_link(path: Path, where: str, *, folders_only: bool = False) -> str | None:
    """The line saying so where ``path``, or the nearest of its folders that is there, is a
    symbolic link to a place that does not exist or round a loop of links (``where``: the
    option, say, that gave it); None where no such link is in the way. ``folders_only``:
    ``path`` itself may be such a link (a file opened through it is made where it points)."""
    for part in (*(() if folders_only else (path,)), *path.parents):
        if not os.path.lexists(part):  # not there: made later, or under a link to nowhere
            continue
        if not os.path.islink(part) or os.path.exists(part):
            return None
        named = f"{where} {path}" + ("" if part == path else f": {part}")
        try:
            os.stat(part)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return (f"{named} is a symbolic link in a loop of links, which leads "
                        "nowhere; give another path")
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                return (f"{named} is a symbolic link to {os.readlink(part)}, which does not "
                        "exist; create that, or give another path")
        return None  # a target it may not look at (EACCES): what the write meets says so
    return None


def check_links(path: Path, option: str) -> None:
    """Refuse, in one line, a ``path`` where ``option`` makes a folder or file, that leads
    through a symbolic link to nowhere (``broken_link``)."""
    line = broken_link(path, option)
    if line is not None:
        raise UsageError(line)


def resolved(path: Path) -> Path:
    """``path`` with its links followed, never raising: round a loop of links Python 3.11's
    Path.resolve() raises RuntimeError, which would end the command in a traceback before
    the read or write that says what is wrong in a line."""
    return Path(os.path.realpath(path))


def special_file(path: Path) -> bool:
    """Whether ``path`` (a link followed) is a device, a pipe or a socket: opened to be read
    it may wait for a writer forever, and a page renamed over it would replace the device
    itself (``--out /dev/null`` as root)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def holds_database(path: Path) -> bool:
    """Whether ``path`` is a DuckDB or SQLite file, by its first bytes."""
    if special_file(path):
        return False
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
    except OSError:
        return False
    return head.startswith(SQLITE_HEADER) or head[8:12] == DUCKDB_MAGIC


def check_output(path: Path, option: str = "--out", *, inputs: Iterable[Path] = (),
                 may_replace: tuple[str, ...] = ()) -> None:
    """Refuse ``path`` as where ``option`` writes, in one line, where writing it would
    replace what a run, a folder of paired rounds or a store holds, or one of ``inputs``
    (files or folders read). ``may_replace``: the names of files this command writes in
    such folders itself (``report`` a run's report.html; ``paired`` its page and
    decisions beside the rounds)."""
    where = f"{option} {path}"
    inputs = [Path(given) for given in inputs]
    if URL_LIKE.match(str(path)):  # a store's URL in the wrong place: folders would be
        # made of it, named after its password
        raise UsageError(f"{where} is a URL, not a file's path")
    check_links(path, option)
    if path.is_dir():
        raise UsageError(f"{where} is a folder; give a file's path")
    if special_file(path):
        raise UsageError(f"{where} is not a plain file (a device, a pipe or a socket); give "
                         "a file's path")
    folder = path.parent
    # a run's own page, rewritten from that run alone; never another run's, nor one page
    # of several runs over one of theirs
    own = path.name in may_replace and [resolved(given) for given in inputs] == [resolved(folder)]
    if any((folder / marker).exists() for marker in RUN_MARKERS) and not own:
        raise UsageError(f"{where} is in the run folder {folder}, whose files are the run's "
                         "own; give a path outside it")
    # a folder the command reads (a side's rounds) holds what it holds: a page there
    # could take the name of a round still to come
    read_folders = [given for given in inputs if given.is_dir()]
    if not own and any(resolved(folder) == resolved(given) for given in read_folders):
        raise UsageError(f"{where} is in {folder}, a folder the command reads; give a path "
                         "outside it")
    if (folder / ROUNDS_RECORD).is_file() and path.name in ROUNDS_FILES \
            and (path.name == ROUNDS_RECORD or path.name not in may_replace):
        raise UsageError(f"{where} is one of the files of the paired rounds in {folder}; "
                         "give another path")
    if holds_database(path) or (path.name.endswith(WRITE_AHEAD_LOG) and holds_database(
            path.with_name(path.name[:-len(WRITE_AHEAD_LOG)]))):
        raise UsageError(f"{where} holds a database or its log (a history store?), which "
                         "writing there would destroy; give another path")
    target = resolved(path)
    for given in inputs:
        if target == resolved(given):
            raise UsageError(f"{where} is also what the command reads; give another path")
