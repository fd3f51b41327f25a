"""Where a command may write the page or file it is asked for: never over what was measured
or stored.

A page written with ``--out`` replaces whatever the path held. Given by mistake the path of
a run's own file (its results.csv, say) or of a history store, a read command would destroy
what it reads. So an output path is refused, in one line and before any work, where it is a
file of a run folder, a database, one of the inputs, or a folder.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from bench.errors import UsageError
from bench.schema import (ENV_FILE, NETWORKS_FILE, OPERATORS_FILE, RATIOS_FILE, RESULTS_FILE,
                          SAMPLES_FILE, SWEEP_FILE)

# the files a run folder holds (report.html is written again from them, and may be replaced)
RUN_FILES = (RESULTS_FILE, SAMPLES_FILE, ENV_FILE, SWEEP_FILE, NETWORKS_FILE, RATIOS_FILE,
             OPERATORS_FILE)
SQLITE_HEADER = b"SQLite format 3\x00"
DUCKDB_MAGIC = b"DUCK"  # at bytes 8 to 12 of a DuckDB file


def holds_database(path: Path) -> bool:
    """Whether ``path`` is a DuckDB or SQLite file, by its first bytes."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
    except OSError:
        return False
    return head.startswith(SQLITE_HEADER) or head[8:12] == DUCKDB_MAGIC


def check_output(path: Path, option: str = "--out", *, inputs: Iterable[Path] = ()) -> None:
    """Refuse ``path`` as where ``option`` writes, in one line, where writing it would
    replace a run's file, a database, or one of ``inputs`` (files or folders read)."""
    where = f"{option} {path}"
    if path.is_dir():
        raise UsageError(f"{where} is a folder; give a file's path")
    if path.name in RUN_FILES and any((path.parent / f).is_file()
                                      for f in (RESULTS_FILE, SWEEP_FILE)):
        raise UsageError(f"{where} is a file of the run in {path.parent}, which writing "
                         "there would destroy; give another path")
    if holds_database(path):
        raise UsageError(f"{where} holds a database (a history store?), which writing there "
                         "would destroy; give another path")
    resolved = path.resolve()
    for given in inputs:
        if resolved == Path(given).resolve():
            raise UsageError(f"{where} is also what the command reads; give another path")
