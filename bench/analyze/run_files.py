"""What holds for a run folder's files before their contents are read: each is a plain
file, and a folder's results are of one run."""

from __future__ import annotations

import codecs
from pathlib import Path

import pandas as pd

from bench.errors import UsageError
from bench.output_path import special_file
from bench.schema import RESULTS_FILE


def refuse_special_file(path: Path) -> None:
    """A run's files are plain files. A device or a pipe in their place (a link to
    /dev/zero, a FIFO) would be read without end, or wait for a writer that never comes."""
    if special_file(path):  # not where missing: the reader that opens it says so
        raise UsageError(f"{path} is not a plain file (a device, a pipe or a socket); a run "
                         "folder's files are plain files")


def refuse_byte_order_mark(path: Path) -> None:
    """The harness writes its CSV and JSON files as UTF-8 without a byte-order mark: one in
    front of a file was put there by an editor or another tool, and a reader would take it
    for part of the first column's name, or of nothing at all."""
    try:
        with open(path, "rb") as handle:
            start = handle.read(len(codecs.BOM_UTF8))
    except OSError:
        return  # missing or unreadable: the reader that opens it says so
    if start == codecs.BOM_UTF8:
        raise UsageError(f"{path} starts with a byte-order mark (EF BB BF), which the harness "
                         "never writes: the file was edited or rewritten by another tool; "
                         "remove the mark, or restore the file as the run wrote it")


MAX_RUN_ID = 200


def one_run_id(folder: Path, results: pd.DataFrame) -> str:
    """The one run id of a run folder's results, or a UsageError: a folder holds one run,
    and rows of another would be counted as this one's."""
    run_ids = sorted(set(results["run_id"].astype(str)))
    if len(run_ids) != 1:
        raise UsageError(f"{folder}: a run folder holds one run; {RESULTS_FILE} has "
                         f"{len(run_ids)} run ids")
    run_id = run_ids[0]
    # printed on every line that names the run, and a key of the store's indexes
    # and never blank at either end, which prints as another run's id does
    if len(run_id) > MAX_RUN_ID or not run_id.isprintable() or run_id != run_id.strip() \
            or not run_id:
        raise UsageError(f"{folder}: run id {run_id[:40]!r} is not one a run writes: "
                         f"printable characters, no space at either end, {MAX_RUN_ID} at most")
    return run_id


def shared_run_ids(baseline, candidate) -> list[str]:
    """The run ids two sides' runs (``Run``s) have in common, sorted: a side compared with a
    copy of itself agrees by construction, not by measurement."""
    def ids(runs) -> set[str]:
        return {str(i) for run in runs for i in run.results["run_id"].unique()}
    return sorted(ids(baseline) & ids(candidate))
