"""A run folder reopened to continue it: what a crash left is taken back, anything else that
is wrong is damage, refused in one line with the files left as they are.

The writer appends a comparison group's rows in one write per file, samples first, and
each configuration's rows together (``bench/sweep/writer.py``). A process killed outright
can therefore leave, at the end of a file and only there, a cut last line, a configuration
with some of its phases, and samples whose results never reached results.csv. Those are
removed, and their configurations measured again; so are their rows of networks.csv, which
is written last. A configuration recorded `ok` whose
samples are gone (samples.csv deleted, say) is measured again too: its figures could not be
checked or compared. Everything else (a short row in the middle, a configuration twice, a
cell of the wrong type, or one no sweep writes, such as a phase, clock or status edited by
hand, in the last configuration as anywhere) no crash of the writer can leave, so it is
damage: a configuration at the end is measured again only where it lacks rows after the
first, in the writer's order.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from bench.analyze.reader import (REQUIRED_RESULTS, REQUIRED_SAMPLES, SAMPLES_UNIT, check_table,
                                  refuse_duplicates, typed, typed_results)
from bench.analyze.run_files import refuse_byte_order_mark, refuse_special_file
from bench.atomic import write_text_atomic
from bench.errors import RunFolderWriteError, UsageError
from bench.sweep.known_values import check_known_values
from bench.schema import (FIELDS, NETWORK_FIELDS, NETWORKS_FILE, OK, OOM, RESULTS_FILE,
                          SAMPLE_COLUMNS, SAMPLE_FIELDS, SAMPLES_FILE, REQUIRED_PHASES, STEP,
                          TARGET, TIMED_PHASES, WHOLE_PHASES)

Key = tuple[str, str]  # (repeat, config_id) as the file spells them


def read_records(path: Path, fields: tuple[str, ...]) -> tuple[list[list[str]], bool]:
    """The records of a CSV file the writer appended to, and whether its last line was cut
    short (then left out). A record of the wrong length elsewhere than last is damage."""
    if not path.exists():
        return [], False
    refuse_special_file(path)
    refuse_byte_order_mark(path)  # else read as a header of other columns
    try:
        text = path.read_bytes().decode("utf-8")
        cut = bool(text) and not text.endswith("\n")
        if cut:
            text = text[:text.rfind("\n") + 1]
        records = list(csv.reader(io.StringIO(text)))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"{path} is damaged: {str(exc).splitlines()[0]}") from None
    if not records:
        return [], cut
    if tuple(records[0]) != fields:
        raise UsageError(f"{path} has other columns than this version writes; start a new run")
    body = records[1:]
    for line, record in enumerate(body[:-1], 2):
        if len(record) != len(fields):
            raise UsageError(f"{path}: line {line} has {len(record)} fields, not "
                             f"{len(fields)}: the file is damaged")
    if body and len(body[-1]) != len(fields):
        body, cut = body[:-1], True  # a last line cut short at a comma
    return body, cut


def _rewrite(path: Path, fields: tuple[str, ...], records: list[list[str]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)  # the dialect csv.DictWriter used to append them
    writer.writerow(fields)
    writer.writerows(records)
    try:
        write_text_atomic(path, buffer.getvalue())  # the old file stays whole if this fails
    except OSError as exc:
        raise RunFolderWriteError(f"cannot write {path}: {exc.strerror or exc}; nothing was "
                                  "measured") from None


def _runs_of(records: list[list[str]], key_of) -> list[tuple[Key, list[list[str]]]]:
    """Records in stretches of one key, in file order."""
    stretches: list[tuple[Key, list[list[str]]]] = []
    for record in records:
        key = key_of(record)
        if stretches and stretches[-1][0] == key:
            stretches[-1][1].append(record)
        else:
            stretches.append((key, [record]))
    return stretches


def repair(out_dir: Path, run_id: str, plan: set[Key] | None = None, *,
           scattered: bool = False,
           read_only: bool = False) -> tuple[set[tuple[int, str]], set[str]]:
    """Take back what a crash left in ``out_dir`` and what lost its samples; refuse damage
    before anything is rewritten. Returns the configurations kept on disk, (repeat,
    config_id), and the config_ids that ran out of memory. ``plan``: the (repeat,
    config_id) the run's sweep measures, as the file spells them; any other is damage.
    ``scattered``: several workers appended to the files, so samples whose results never
    came (a worker killed between its two writes) may lie anywhere, not only at the end.
    ``read_only``: what would be kept, with nothing rewritten (a worker reads the folder
    its coordinator repaired)."""
    results_path, samples_path = out_dir / RESULTS_FILE, out_dir / SAMPLES_FILE
    _refuse_lost_results(results_path, samples_path)
    records, results_cut = read_records(results_path, FIELDS)
    # every whole row typed and its known cells checked, a torn tail's too: a cell edited by
    # hand is damage, never taken for what a crash left and measured again in silence
    typed_rows = _typed(results_path, records, FIELDS)
    check_known_values(results_path, typed_rows, None, workers=1)  # a pass's worker: its add
    kept = _complete_configurations(results_path, records, run_id, plan)
    results_cut |= sum(len(rows) for _, rows in kept) != len(records)
    samples, samples_cut = read_records(samples_path, SAMPLE_FIELDS)
    _refuse_strangers(samples_path, samples, run_id)
    on_disk = {key for key, _ in kept}
    if scattered:
        samples, samples_cut = _without_orphans(samples, on_disk, samples_cut)
    counts, orphans = _samples_of(samples_path, samples, on_disk)
    samples = samples[:len(samples) - orphans]
    # typed through the checks every other consumer makes, before anything is written
    results = typed_rows.loc[[(r[FIELDS.index("repeat")], r[FIELDS.index("config_id")])
                              in on_disk for r in records]]
    _typed(samples_path, samples, SAMPLE_FIELDS)
    status = FIELDS.index("status")
    done = [(key, rows) for key, rows in kept
            if rows[0][status] != OK or _samples_whole(key, rows, counts)]
    keys = {key for key, _ in done}  # the typed rows are the kept records, in order
    # a configuration measured again takes its samples anew: what is left of its old ones goes
    sample_key = SAMPLE_FIELDS.index("repeat"), SAMPLE_FIELDS.index("config_id")
    whole = [r for r in samples if (r[sample_key[0]], r[sample_key[1]]) in keys]
    if (results_cut or len(done) != len(kept)) and not read_only:
        _rewrite(results_path, FIELDS, [r for _, rows in done for r in rows])
    if (samples_cut or orphans or len(whole) != len(samples)) and not read_only:
        _rewrite(samples_path, SAMPLE_FIELDS, whole)
    if not read_only:
        _keep_networks(out_dir / NETWORKS_FILE, keys)
    results = results.loc[np.repeat([key in keys for key, _ in kept],
                                    [len(rows) for _, rows in kept]).astype(bool)]
    return (set(zip(results["repeat"].tolist(), results["config_id"].tolist())),
            set(results.loc[results["status"] == OOM, "config_id"]))


def _refuse_lost_results(results_path: Path, samples_path: Path) -> None:
    """The writer makes results.csv before it writes any sample: samples without it are
    no crash's doing, and measuring again would write over them."""
    if results_path.exists() or not samples_path.exists():
        return
    with open(samples_path, "rb") as handle:
        handle.readline()  # the header
        holds_samples = bool(handle.readline().strip())
    if holds_samples:
        raise UsageError(f"{results_path} is missing, but {samples_path.name} holds samples: "
                         "the folder is damaged; restore it, or move "
                         f"{samples_path.name} aside to measure the run again")


def _keep_networks(path: Path, keys: set[Key]) -> None:
    """networks.csv without the rows of configurations that are measured again (their
    attribution is written again with them); where its last line was cut, without the last
    configuration's rows either: that attribution alone is lost, never half of it kept."""
    records, cut = read_records(path, NETWORK_FIELDS)
    repeat, cid = NETWORK_FIELDS.index("repeat"), NETWORK_FIELDS.index("config_id")
    stretches = _runs_of(records, lambda r: (r[repeat], r[cid]))
    if cut and stretches:
        stretches.pop()
    kept = [r for key, rows in stretches if key in keys for r in rows]
    if cut or len(kept) != len(records):
        _rewrite(path, NETWORK_FIELDS, kept)


def _complete_configurations(path: Path, records: list[list[str]], run_id: str,
                             plan: set[Key] | None) -> list[tuple[Key, list[list[str]]]]:
    """The configurations of results.csv with all their rows. The last one may lack rows at
    its end, as a crash leaves the writer's one write of them, and is left out to be
    measured again. Anything else incomplete or repeated is damage."""
    index = {name: i for i, name in enumerate(FIELDS)}
    stretches = _runs_of(records, lambda r: (r[index["repeat"]], r[index["config_id"]]))
    seen: dict[Key, int] = {}
    kept: list[tuple[Key, list[list[str]]]] = []
    line = 2
    for n, (key, rows) in enumerate(stretches):
        if key in seen:
            raise UsageError(f"{path}: lines {seen[key]} and {line} both start {key[1]} "
                             f"(repeat {key[0]}): the file is damaged")
        seen[key] = line
        if plan is not None and key not in plan:
            raise UsageError(f"{path}: line {line}: {key[1]} (repeat {key[0]}) is not one of "
                             "the configurations the run's sweep measures: the file is damaged")
        stranger = next((r for r in rows if r[index["run_id"]] != run_id), None)
        if stranger is not None:
            raise UsageError(f"{path}: line {line} holds a row of run "
                             f"{stranger[index['run_id']]!r}, not of {run_id}")
        phases = [r[index["phase"]] for r in rows]
        if sorted(phases) in WHOLE_PHASES:
            kept.append((key, rows))
        elif n < len(stretches) - 1 or not _torn(phases):
            raise UsageError(f"{path}: line {line}: {key[1]} (repeat {key[0]}) has the rows "
                             f"{', '.join(phases)}, not one per phase in the order the writer "
                             f"writes them ({', '.join(REQUIRED_PHASES)}; {TARGET} before "
                             f"{STEP} where the scenario has one): the file is damaged")
        line += len(rows)
    return kept


def _torn(phases: list[str]) -> bool:
    """Whether ``phases`` are the first rows of a configuration, in the order the writer
    writes them, and not all of them: what a crash during that write leaves."""
    return any(len(phases) < len(order) and phases == list(order[:len(phases)])
               for order in (REQUIRED_PHASES, TIMED_PHASES))


def _without_orphans(records: list[list[str]], on_disk: set[Key],
                     cut: bool) -> tuple[list[list[str]], bool]:
    """Samples of configurations results.csv holds; whether any were dropped."""
    repeat, cid = SAMPLE_FIELDS.index("repeat"), SAMPLE_FIELDS.index("config_id")
    kept = [r for r in records if (r[repeat], r[cid]) in on_disk]
    return kept, cut or len(kept) != len(records)


def _refuse_strangers(path: Path, samples: list[list[str]], run_id: str) -> None:
    """Samples of another run are no crash's doing: the file is damaged."""
    column = SAMPLE_FIELDS.index("run_id")
    line = next((n for n, r in enumerate(samples, 2) if r[column] != run_id), None)
    if line is not None:
        raise UsageError(f"{path}: line {line} holds a sample of run "
                         f"{samples[line - 2][column]!r}, not of {run_id}")


def _samples_whole(key: Key, rows: list[list[str]], counts: Counter) -> bool:
    """Whether each phase row of a measured configuration has as many samples as it counted
    (a phase that lost some, to a cut or an edit, is measured again, not kept short)."""
    phase, counted = FIELDS.index("phase"), FIELDS.index("n_samples")
    for row in rows:
        try:
            wanted = int(float(row[counted] or 0))
        except ValueError:
            return False  # damage the typed check names
        if counts[(*key, row[phase])] != wanted:
            return False
    return True


def _samples_of(path: Path, records: list[list[str]], on_disk: set[Key]) -> tuple[Counter, int]:
    """The samples of each (repeat, config_id, phase), and how many records at the end of
    samples.csv belong to no configuration on disk (a crash between the two writes: they
    go). Samples of no configuration anywhere else are damage."""
    repeat, cid = SAMPLE_FIELDS.index("repeat"), SAMPLE_FIELDS.index("config_id")
    phase = SAMPLE_FIELDS.index("phase")
    stretches = _runs_of(records, lambda r: (r[repeat], r[cid]))
    trailing = len(stretches)
    while trailing and stretches[trailing - 1][0] not in on_disk:
        trailing -= 1
    stray = next((key for key, _ in stretches[:trailing] if key not in on_disk), None)
    if stray is not None:
        raise UsageError(f"{path} holds samples of {stray[1]} (repeat {stray[0]}), which "
                         f"{RESULTS_FILE} does not: the file is damaged")
    orphans = sum(len(rows) for _, rows in stretches[trailing:])
    counts = Counter((*key, r[phase]) for key, rows in stretches[:trailing] for r in rows)
    return counts, orphans


def _typed(path: Path, records: list[list[str]], fields: tuple[str, ...]) -> pd.DataFrame:
    df = pd.DataFrame(records, columns=list(fields), dtype=str)
    if fields == FIELDS:
        return typed_results(check_table(df, path, REQUIRED_RESULTS, "median_ms",
                                         allow_empty=True), path)
    df = typed(path, check_table(df, path, REQUIRED_SAMPLES, "device_ms", allow_empty=True),
               SAMPLE_COLUMNS)
    refuse_duplicates(df, path, SAMPLES_UNIT)
    return df
