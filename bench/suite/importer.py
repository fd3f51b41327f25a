"""Turns the JSON of a saved suite run (pytest-benchmark) into a run folder of this
project's schema, so ``report`` and ``compare`` work on it.

Statistics are recomputed from the raw per-round times (``--benchmark-save-data``) with the
same code as the runner's, so the two sources are summarised identically.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench.atomic import write_json_atomic
from bench.axes import AXES
from bench.errors import UsageError
from bench.measure.result import ConfigResult
from bench.measure.timers import Timing
from bench.schema import ENV_FILE, SCHEMA_VERSION, TIMED_PHASES
from bench.suite import SUITE
from bench.sweep.folder import new_run_id
from bench.sweep.writer import ResultsWriter
from multinet.step import StepSpec

CLOCK = "pytest_benchmark"


def load_suite_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"no such file: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path} is not JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list) \
            or "machine_info" not in data:
        raise UsageError(f"{path} is not pytest-benchmark output (no 'benchmarks' and "
                         "'machine_info')")
    if not data["benchmarks"]:
        raise UsageError(f"{path} holds no benchmarks")
    foreign = [b.get("name", "?") for b in data["benchmarks"]
               if (b.get("extra_info") or {}).get("suite") != SUITE]
    if foreign:
        raise UsageError(f"{path}: benchmark {foreign[0]!r} is not from the {SUITE} suite "
                         f"(bench/suite)")
    if any(not (b.get("stats") or {}).get("data") for b in data["benchmarks"]):
        raise UsageError(f"{path} has no per-round data; save runs with --benchmark-save-data")
    return data


def environment(data: dict[str, Any], run_id: str, source: Path) -> dict[str, Any]:
    machine, commit = data["machine_info"], data.get("commit_info") or {}
    cpu = machine.get("cpu") or {}
    first = data["benchmarks"][0]["extra_info"]
    return {
        "schema_version": SCHEMA_VERSION, "run_id": run_id,
        "started_at": data.get("datetime"), "source": f"pytest-benchmark {data.get('version')}",
        "imported_from": str(source), "hostname": machine.get("node"),
        "os": f"{machine.get('system')} {machine.get('release')}",
        "python": machine.get("python_version"),
        "cpu_model": cpu.get("brand_raw") or machine.get("processor"),
        "cpu_logical_cores": cpu.get("count"), "threads": first.get("threads"),
        "torch_version": first.get("torch_version"), "cuda_version": machine.get("cuda_version"),
        "devices": machine.get("devices"),
        "project": {"commit": commit.get("id"), "dirty": commit.get("dirty")},
    }


def import_run(path: Path, out_dir: Path) -> tuple[str, int]:
    """Write ``out_dir`` from the suite JSON at ``path``; return the run id and the number
    of configurations."""
    data = load_suite_json(path)
    first = data["benchmarks"][0]["extra_info"]
    try:
        when = dt.datetime.fromisoformat(str(data.get("datetime")))
    except ValueError:
        when = None
    run_id = "pytest-" + new_run_id(str(data["machine_info"].get("node", "")), when)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise UsageError(f"--out-dir {out_dir} is not empty")
    out_dir.mkdir(parents=True, exist_ok=True)

    by_config: dict[str, dict[str, dict]] = defaultdict(dict)
    for bench in data["benchmarks"]:
        info = bench["extra_info"]
        by_config[info["config_id"]][info["phase"]] = bench
    writer = ResultsWriter(out_dir, run_id, first.get("torch_version", ""),
                           str(data["machine_info"].get("node", "")))
    try:
        for phases in by_config.values():
            info = next(iter(phases.values()))["extra_info"]
            timing = Timing(clock=CLOCK)
            for phase in TIMED_PHASES:
                if phase in phases:
                    stats = phases[phase]["stats"]
                    ms = [t * 1e3 / stats.get("iterations", 1) for t in stats["data"]]
                    timing.device_ms[phase] = ms
                    timing.host_ms[phase] = list(ms)
            # a suite saved before an axis existed ran at its default
            spec = StepSpec(**{a.name: info[a.name] for a in AXES if a.name in info},
                            seed=info["seed"])
            writer.write(ConfigResult(spec, info.get("device_name", ""), 1,
                                      str(data.get("datetime", "")), timing=timing,
                                      threads=info.get("threads")))
    finally:
        writer.close()
    write_json_atomic(out_dir / ENV_FILE, environment(data, run_id, path))
    return run_id, len(by_config)
