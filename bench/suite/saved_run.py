"""The JSON of a saved suite run (pytest-benchmark), read and checked at the door.

The file may come from another machine, another version or a hand edit, so nothing in it
is trusted: every benchmark must be an object of this project's suite, name a known phase
and valid axis values that agree with its config_id, and carry its per-round times as
finite, positive numbers over a positive count of iterations. Each (configuration, phase)
comes once: a second would count the same measurement twice; and every phase of a
configuration is there, since a run folder has a row for each. Anything else is one
UsageError line naming the file, the benchmark and the key.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.axes import AXES, config_id
from bench.errors import UsageError
from bench.measure.result import ConfigResult
from bench.schema import TIMED_PHASES
from bench.suite import SUITE
from bench.sweep.config import check_value, scalar_bounds
from multinet.errors import MultinetError
from multinet.step import StepSpec


@dataclass(frozen=True)
class SavedBenchmark:
    """One benchmark of the suite: a phase of a configuration and its per-round times."""

    spec: StepSpec
    phase: str
    ms: tuple[float, ...]  # per iteration, in milliseconds
    device_name: str
    threads: int | None
    torch_version: str


@dataclass(frozen=True)
class SavedRun:
    data: dict[str, Any]  # the whole file, for the environment record
    benchmarks: tuple[SavedBenchmark, ...]

    @property
    def machine(self) -> dict[str, Any]:
        return self.data["machine_info"]


def read_saved_run(path: Path) -> SavedRun:
    data = _load(path)
    benchmarks, seen = [], {}
    for i, bench in enumerate(data["benchmarks"]):
        where = f"{path}: benchmark {i + 1}"
        saved = _benchmark(bench, where)
        key = (config_id(saved.spec), saved.phase)
        if key in seen:
            raise UsageError(f"{where} repeats benchmark {seen[key]} ({key[0]}, {key[1]}); "
                             "the same measurement would count twice")
        seen[key] = i + 1
        benchmarks.append(saved)
    _check_whole(path, benchmarks, seen)
    return SavedRun(data, tuple(benchmarks))


def _check_whole(path: Path, benchmarks: list[SavedBenchmark], seen: dict) -> None:
    """Every configuration with a benchmark of each of its phases."""
    for bench in benchmarks:
        for phase in ConfigResult(bench.spec, "", 1, "").timed_phases:
            if (config_id(bench.spec), phase) not in seen:
                raise UsageError(f"{path}: {config_id(bench.spec)} has no {phase!r} benchmark; "
                                 "import a whole run of the suite")


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise UsageError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise UsageError(f"{path} is a folder; give the JSON file of a saved run") from None
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        # JSONDecodeError is a ValueError; RecursionError: nested past Python's stack
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise UsageError(f"{path} is not JSON: {reason}") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list) \
            or not isinstance(data.get("machine_info"), dict):
        raise UsageError(f"{path} is not pytest-benchmark output (no 'benchmarks' list and "
                         "'machine_info' object)")
    if not data["benchmarks"]:
        raise UsageError(f"{path} holds no benchmarks")
    for key in ("datetime", "version"):
        if not isinstance(data.get(key, ""), str):
            raise UsageError(f"{path}: {key!r} is not text: {data[key]!r:.60}")
    if not isinstance(data["machine_info"].get("node", ""), str):
        raise UsageError(f"{path}: machine_info 'node' is not text")
    return data


def _benchmark(bench: Any, where: str) -> SavedBenchmark:
    if not isinstance(bench, dict):
        raise UsageError(f"{where} is not an object: {bench!r:.60}")
    info, stats = bench.get("extra_info"), bench.get("stats")
    if not isinstance(info, dict) or info.get("suite") != SUITE:
        raise UsageError(f"{where} ({bench.get('name', '?')!r:.60}) is not from the {SUITE} "
                         "suite (bench/suite)")
    if info.get("phase") not in TIMED_PHASES:
        raise UsageError(f"{where}: phase {info.get('phase')!r:.60} is not one of "
                         f"{', '.join(TIMED_PHASES)}")
    values = {}
    missing = [a.name for a in AXES if a.sweep_default is None and a.name not in info]
    if missing or not info.get("device_name"):
        raise UsageError(f"{where}: extra_info has no {(missing or ['device_name'])[0]}")
    for axis in AXES:  # a suite saved before an axis existed ran at its default
        if axis.name in info:
            value = info[axis.name]
            # the default need not be sweepable (ddp_wrap `none`); 0 is not False, though
            if type(value) is not type(axis.default) or value != axis.default:
                check_value(axis, value, where)
            values[axis.name] = info[axis.name]
    seed = info.get("seed")
    low, high = scalar_bounds()["seed"]
    if isinstance(seed, bool) or not isinstance(seed, int) or not low <= seed <= high:
        raise UsageError(f"{where}: seed must be an integer from {low} to {high}, got "
                         f"{seed!r:.60}")
    try:
        spec = StepSpec(**values, seed=seed)
    except MultinetError as exc:
        raise UsageError(f"{where}: {exc}") from None
    if info.get("config_id") != config_id(spec):
        raise UsageError(f"{where}: config_id {info.get('config_id')!r:.80} does not match "
                         f"its axes ({config_id(spec)})")
    threads = info.get("threads")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                or threads < 0):
        raise UsageError(f"{where}: threads must be a count, got {threads!r:.60}")
    for key in ("device_name", "torch_version"):
        if not isinstance(info.get(key, ""), str):
            raise UsageError(f"{where}: {key} is not text: {info[key]!r:.60}")
    return SavedBenchmark(spec, info["phase"], _per_iteration_ms(stats, where),
                          info.get("device_name", ""), threads, info.get("torch_version", ""))


def _per_iteration_ms(stats: Any, where: str) -> tuple[float, ...]:
    if not isinstance(stats, dict):
        raise UsageError(f"{where} has no 'stats' object")
    rounds = stats.get("data")
    if not isinstance(rounds, list) or not rounds:
        raise UsageError(f"{where} has no per-round data; save runs with "
                         "--benchmark-save-data")
    iterations = stats.get("iterations", 1)
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise UsageError(f"{where}: iterations must be a positive integer, got "
                         f"{iterations!r:.60}")
    for n, t in enumerate(rounds, 1):
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) \
                or t <= 0:
            raise UsageError(f"{where}: round {n} of its data is {t!r:.60}, not a positive "
                             "number of seconds")
    return tuple(t * 1e3 / iterations for t in rounds)
