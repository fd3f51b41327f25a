"""Cells a sweep fills from a known set, held to that set: a row that names anything else
was not written by a sweep (it was edited by hand, or by another tool), and a store would
keep it as measured so. The sets are the writer's own, imported from where it takes them,
never copied here: the phases and the energy's sources (``bench/schema.py``), the clocks
and the reasons sampling stops (``bench/measure/timing_words.py``), what bounds a phase
(``bench/analyze/phase_bounds.py``), and the worker of each pass
(``bench/sweep/passes.py``, by the repeats sweep.json records). A configuration's outcome
is one status, which each of its phase rows repeats: rows of one configuration that
disagree were not written together. (The status itself is held to its set by the typed
reader, ``bench/analyze/reader.py``.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from bench.analyze.phase_bounds import COMPUTE, LAUNCH, NEITHER
from bench.errors import UsageError
from bench.measure.timing_words import CLOCKS, STOP_REASONS
from bench.schema import COUNTER, ESTIMATE, SWEEP_FILE, TIMED_PHASES
from bench.sweep.passes import worker_of

KNOWN = {"phase": TIMED_PHASES, "clock": CLOCKS, "stop_reason": STOP_REASONS,
         "bound": (COMPUTE, LAUNCH, NEITHER), "energy_source": (COUNTER, ESTIMATE)}


def check_known_values(path: Path, results: pd.DataFrame, sweep: dict[str, Any] | None,
                       workers: int) -> None:
    """Refuse in one line a row of ``results`` (typed) whose phase, clock, stop reason,
    bound or energy source is none the writer writes (an empty clock or stop reason is the
    status's business), a configuration whose rows name two statuses, or a worker other
    than the pass's own."""
    for column, known in KNOWN.items():
        text = results[column].astype(str)
        other = (text.str.strip().ne("") & ~text.isin(known)).to_numpy()
        if other.any():
            raise UsageError(f"{path}: line {_line(other)}: {column} holds "
                             f"{text.iloc[int(other.argmax())]!r:.40}, not one of "
                             f"{', '.join(known)}")
    first = results.groupby(["repeat", "config_id"], sort=False)["status"].transform("first")
    mixed = results["status"].ne(first).to_numpy()
    if mixed.any():
        row = results.iloc[int(mixed.argmax())]
        raise UsageError(f"{path}: line {_line(mixed)}: status holds {row['status']!r} on the "
                         f"{row['phase']} row of {row['config_id']} (repeat {row['repeat']}), "
                         f"whose other rows hold {first.iloc[int(mixed.argmax())]!r}: a "
                         "configuration has one outcome, which each of its phase rows says")
    check_workers(path, results, sweep, workers)


def check_workers(path: Path, results: pd.DataFrame, sweep: dict[str, Any] | None,
                  workers: int) -> None:
    """Each row's worker is the one its pass was measured by: worker k measures passes
    (k - 1) R + 1 to k R, R the repeats sweep.json records (``workers``: env.json's count,
    1 where it records none). A run not measured by workers names none."""
    settings = (sweep or {}).get("sweep")
    repeats = settings.get("repeats") if isinstance(settings, dict) else None
    named = results["worker"].notna().to_numpy()
    if not isinstance(repeats, int) or isinstance(repeats, bool) or repeats < 1:
        return  # the plan's check says what a sweep.json without repeats lacks
    passes = max(workers, 1) * repeats
    outside = ~results["repeat"].between(1, passes).to_numpy()
    if outside.any():
        raise UsageError(f"{path}: line {_line(outside)}: repeat holds "
                         f"{results['repeat'].iloc[int(outside.argmax())]}: the run's passes "
                         f"are numbered 1 to {passes} ({max(workers, 1)} worker(s), "
                         f"{repeats} pass(es) each, as {SWEEP_FILE} says)")
    if not named.any():
        return
    expected = results["repeat"].map(lambda repeat: worker_of(int(repeat), repeats))
    other = (named & results["worker"].ne(expected).to_numpy())
    if other.any():
        line = int(other.argmax())
        raise UsageError(f"{path}: line {line + 2}: worker holds "
                         f"{results['worker'].iloc[line]}, not {expected.iloc[line]}: the run "
                         f"had {workers} worker(s), numbered 1 to {workers}, each measuring "
                         f"{repeats} pass(es) as its {SWEEP_FILE} says, and pass (repeat) "
                         f"{results['repeat'].iloc[line]} is worker {expected.iloc[line]}'s")


def _line(mask) -> int:
    return int(mask.argmax()) + 2
