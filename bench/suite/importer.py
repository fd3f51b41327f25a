"""Turns the JSON of a saved suite run (pytest-benchmark) into a run folder of this
project's schema, so ``report`` and ``compare`` work on it.

Statistics are recomputed from the raw per-round times (``--benchmark-save-data``) with the
same code as the runner's, so the two sources are summarised identically. The file is read
and checked in ``bench/suite/saved_run.py``.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench.atomic import write_json_atomic
from bench.errors import RunFolderWriteError, UsageError
from bench.measure.result import ConfigResult
from bench.measure.timers import Timing
from bench.measure.timing_words import PYTEST_BENCHMARK
from bench.output_path import check_links
from bench.schema import ENV_FILE, RESULTS_FILE, SAMPLES_FILE, SCHEMA_VERSION
from bench.suite.saved_run import SavedBenchmark, SavedRun, read_saved_run
from bench.sweep.folder import new_run_id
from bench.sweep.writer import ResultsWriter
from multinet.step import StepSpec

CLOCK = PYTEST_BENCHMARK


def environment(saved: SavedRun, run_id: str, source: Path) -> dict[str, Any]:
    data, machine = saved.data, saved.machine
    commit = data.get("commit_info") if isinstance(data.get("commit_info"), dict) else {}
    cpu = machine.get("cpu") if isinstance(machine.get("cpu"), dict) else {}
    first = saved.benchmarks[0]
    return {
        "schema_version": SCHEMA_VERSION, "run_id": run_id,
        "started_at": data.get("datetime"), "source": f"pytest-benchmark {data.get('version')}",
        "imported_from": str(source), "hostname": machine.get("node"),
        "os": f"{machine.get('system')} {machine.get('release')}",
        "python": machine.get("python_version"),
        "cpu_model": cpu.get("brand_raw") or machine.get("processor"),
        "cpu_logical_cores": cpu.get("count"), "threads": first.threads,
        "torch_version": first.torch_version, "cuda_version": machine.get("cuda_version"),
        "devices": machine.get("devices"),
        "project": {"commit": commit.get("id"), "dirty": commit.get("dirty")},
    }


def import_run(path: Path, out_dir: Path) -> tuple[str, int]:
    """Write ``out_dir`` from the suite JSON at ``path``; return the run id and the number
    of configurations. The file is checked whole before anything is written, and a write
    that fails takes back what it wrote, so the same command can be run again."""
    saved = read_saved_run(path)
    try:
        when = dt.datetime.fromisoformat(saved.data.get("datetime", ""))
    except ValueError:
        when = None
    node = saved.machine.get("node", "")
    run_id = "pytest-" + new_run_id(node, when)
    if out_dir.is_file():
        raise UsageError(f"--out-dir {out_dir} is a file, not a folder")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise UsageError(f"--out-dir {out_dir} is not empty")
    check_links(out_dir, "--out-dir")  # the system would say "File exists"
    by_config: dict[StepSpec, dict[str, SavedBenchmark]] = defaultdict(dict)
    for bench in saved.benchmarks:
        by_config[bench.spec][bench.phase] = bench
    created = not out_dir.exists()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        _write(out_dir, run_id, saved, by_config, node)
        write_json_atomic(out_dir / ENV_FILE, environment(saved, run_id, path))
    except BaseException as exc:
        _take_back(out_dir, created)
        if isinstance(exc, OSError):
            raise RunFolderWriteError(f"cannot write {out_dir}: {exc.strerror or exc}; "
                                      "nothing was imported") from None
        raise
    return run_id, len(by_config)


def _write(out_dir: Path, run_id: str, saved: SavedRun,
           by_config: dict[StepSpec, dict[str, SavedBenchmark]], node: str) -> None:
    writer = ResultsWriter(out_dir, run_id, saved.benchmarks[0].torch_version, node)
    try:
        for spec, phases in by_config.items():
            timing = Timing(clock=CLOCK)
            for phase, bench in phases.items():
                timing.device_ms[phase] = list(bench.ms)
                timing.host_ms[phase] = list(bench.ms)
            first = next(iter(phases.values()))
            writer.write(ConfigResult(spec, first.device_name, 1,
                                      str(saved.data.get("datetime", "")), timing=timing,
                                      threads=first.threads))
    finally:
        writer.close()


def _take_back(out_dir: Path, created: bool) -> None:
    """What a failed import wrote: its files, and the folder if it made it."""
    if created:
        shutil.rmtree(out_dir, ignore_errors=True)
        return
    for name in (RESULTS_FILE, SAMPLES_FILE, ENV_FILE):
        (out_dir / name).unlink(missing_ok=True)
