"""Traces of configurations into a run folder: ``traces/<config>.pt.trace.json`` each, and
their top operators per network and phase in ``operators.csv`` (``bench/schema.py``).

``operators.csv`` is written whole each time, atomically: a configuration traced again
replaces its rows, the others' stay.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from bench.analyze.reader import read_operators
from bench.analyze.trace_ops import load_events, operator_table
from bench.atomic import write_text_atomic
from bench.axes import config_id
from bench.measure.tracing import TRACED_STEPS, trace_configuration
from bench.schema import OPERATOR_FIELDS, OPERATORS_FILE, TRACES_DIR
from multinet.step import StepSpec

TRACE_SUFFIX = ".pt.trace.json"  # the ending TensorBoard's profiler plugin looks for


def trace_name(spec: StepSpec) -> str:
    """The trace's file name: its config_id with every `/` and `:` a `_`, and no dot
    (TensorBoard's plugin reads a dot and digits before the suffix as a span)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", config_id(spec)) + TRACE_SUFFIX


def trace_into(folder: Path, specs: Iterable[StepSpec],
               steps: int = TRACED_STEPS) -> Iterator[Path]:
    """Trace each of ``specs`` into ``folder`` and record its operators, one at a time
    (yielding each trace's path once its rows are written)."""
    for spec in specs:
        relative = f"{TRACES_DIR}/{trace_name(spec)}"
        trace = trace_configuration(spec, folder / relative, steps)
        rows = [{"config_id": config_id(spec), "trace": relative, "steps": trace.steps, **row}
                for row in operator_table(load_events(trace.path), trace.steps)]
        replace_operators(folder / OPERATORS_FILE, relative, rows)
        yield trace.path


def replace_operators(path: Path, trace: str, rows: list[dict]) -> None:
    kept = []
    if path.is_file():
        old = read_operators(path)
        kept = old[old["trace"] != trace].to_dict("records")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, OPERATOR_FIELDS)
    writer.writeheader()
    for row in [*kept, *rows]:
        writer.writerow({k: ("" if _missing(v) else v) for k, v in row.items()})
    write_text_atomic(path, buffer.getvalue())


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and value != value)  # NaN
