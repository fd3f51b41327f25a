"""What holds for a run folder's files before their contents are read: each is a plain
file, and a folder's results are of one run."""

from __future__ import annotations

import codecs
import csv
from collections import Counter
from pathlib import Path

import pandas as pd

from bench.errors import UsageError
from bench.output_path import special_file
from bench.schema import ENV_FILE, RESULTS_FILE, SWEEP_FILE


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


def refuse_repeated_columns(path: Path) -> None:
    """The writer names each column once. A header naming one twice is an edit: pandas
    would read the second as `NAME.1`, a column no reader looks at, and its cells would
    be dropped without a word while the first was taken."""
    try:
        with open(path, newline="", encoding="utf-8", errors="replace") as handle:
            header = next(csv.reader(handle), [])
    except (OSError, csv.Error):
        return  # missing, unreadable or not CSV: the reader that opens it says so
    repeated = [(name, count) for name, count in Counter(header).items() if count > 1]
    if repeated:
        name, count = repeated[0]
        raise UsageError(f"{path}: its header names {name!r:.60} "
                         f"{'twice' if count == 2 else f'{count} times'}, where the writer "
                         "names each column once: the file was edited; restore it as the run "
                         "wrote it")


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


def check_one_run(folder: Path, run_id: str, env: dict, sweep: dict | None) -> None:
    """env.json and sweep.json are of the run its results are: a results.csv copied into
    another run's folder would be read as that run's."""
    for name, record in ((ENV_FILE, env), (SWEEP_FILE, sweep or {})):
        if "run_id" in record and record["run_id"] != run_id:
            raise UsageError(f"{folder / name} is of run {str(record['run_id'])!r:.60}, not "
                             f"of {run_id} ({RESULTS_FILE}'s): the folder mixes two runs")


def shared_run_ids(baseline, candidate) -> list[str]:
    """The run ids two sides' runs (``Run``s) have in common, sorted: a side compared with a
    copy of itself agrees by construction, not by measurement."""
    def ids(runs) -> set[str]:
        return {str(i) for run in runs for i in run.results["run_id"].unique()}
    return sorted(ids(baseline) & ids(candidate))
