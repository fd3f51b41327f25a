"""One configuration's outcome, turned into rows of the schema and appended to disk.

Rows of a configuration are written together and flushed (and fsynced) as soon as it
finishes, so a run that dies loses at most the configuration in progress.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: one process writes a run folder
    fcntl = None

from bench.analyze.phase_bounds import phase_bound
from bench.axes import AXES, COMPILE, DIMENSIONS, config_id
from bench.errors import RunFolderWriteError
from bench.measure.result import ConfigResult
from bench.schema import (FIELDS, NETWORK_FIELDS, NETWORKS_FILE, OK, RESULTS_FILE,
                          SAMPLE_FIELDS, SAMPLES_FILE, SCHEMA_VERSION)
from bench.sweep.passes import worker_of

ERROR = "error"


def _num(value: float | None) -> float | str:
    # nine significant digits keep nanoseconds of a millisecond figure, without float noise
    return "" if value is None else float(f"{value:.9g}")


def result_rows(result: ConfigResult, run_id: str, torch_version: str,
                hostname: str, repeats: int = 1) -> list[dict[str, Any]]:
    spec = result.spec
    base = {
        "schema_version": SCHEMA_VERSION, "run_id": run_id, "repeat": result.repeat,
        "worker": worker_of(result.repeat, repeats),
        "config_id": config_id(spec), "group": result.group,
        **{axis.name: getattr(spec, axis.name) for axis in AXES},
        "device_name": result.device_name, "world_size": result.world_size,
        "backend": result.backend, "global_batch_size": spec.batch_size * result.world_size,
        "seed": spec.seed,
        "status": result.status, "error": result.error, "threads": result.threads,
        "torch_version": torch_version, "hostname": hostname, "started_at": result.started_at,
        **{k: _num(v) if isinstance(v, float) else v for k, v in result.config_columns.items()},
    }
    rows = []
    for phase in result.timed_phases:
        row = {**base, "phase": phase,
               **{k: _num(v) if isinstance(v, float) else v
                  for k, v in result.phase_columns.get(phase, {}).items()}}
        timing = result.timing
        if timing is not None and timing.device_ms[phase]:
            s, h = timing.summary(phase), timing.host_summary(phase)
            row.update({
                "clock": timing.clock, "n_samples": s.n, "median_ms": _num(s.median),
                "iqr_ms": _num(s.iqr), "mean_ms": _num(s.mean), "std_ms": _num(s.std),
                "min_ms": _num(s.min), "max_ms": _num(s.max), "ci_low_ms": _num(s.ci_low),
                "ci_high_ms": _num(s.ci_high), "rel_ci": _num(s.rel_ci), "noisy": s.noisy,
                "host_median_ms": _num(h.median), "host_iqr_ms": _num(h.iqr),
                "samples_per_s": _num(base["global_batch_size"] / s.median * 1e3)
                if s.median > 0 else "",
                "warmup_iters": timing.warmup_iters, "stop_reason": timing.stop_reason,
                "measure_s": _num(timing.elapsed_s), "blocks": len(timing.cpu_share),
                "disturbed_blocks": timing.disturbed_blocks,
            })
            if spec.compile != COMPILE.default:
                row["compile_s"] = _num(timing.first_iter_s)
            flops = row.get("flops")
            if isinstance(flops, (int, float)) and flops > 0 and s.median > 0:
                tflops = flops / (s.median * 1e-3) / 1e12
                row["tflops_per_s"] = _num(tflops)
                if result.peak_tflops:
                    row["peak_fraction"] = _num(tflops / result.peak_tflops)
            row["bound"] = phase_bound(spec.device, row["median_ms"], row["host_median_ms"],
                                       row.get("peak_fraction"), measured=result.status == OK)
        rows.append(row)
    return rows


def sample_rows(result: ConfigResult, run_id: str) -> list[dict[str, Any]]:
    timing = result.timing
    if timing is None:
        return []
    cid = config_id(result.spec)
    rows = []
    for phase in result.timed_phases:
        device, host, blocks = timing.device_ms[phase], timing.host_ms[phase], timing.block[phase]
        if len(blocks) != len(device):  # samples from elsewhere (a suite) have no rounds
            blocks = [""] * len(device)
        rows += [{"run_id": run_id, "repeat": result.repeat, "config_id": cid, "phase": phase,
                  "iteration": i, "block": b, "device_ms": _num(d), "host_ms": _num(h)}
                 for i, (d, h, b) in enumerate(zip(device, host, blocks))]
    return rows


def network_rows(result: ConfigResult, run_id: str) -> list[dict[str, Any]]:
    """The rows of ``networks.csv`` for ``result``: one per network and phase, ``(outside)``
    included; one ``error`` row where the attribution pass failed; none where there was no
    pass (a configuration not measured, or a data-parallel one)."""
    spec = result.spec
    base = {"schema_version": SCHEMA_VERSION, "run_id": run_id, "repeat": result.repeat,
            "config_id": config_id(spec),
            **{d.name: getattr(spec, d.name, None) for d in DIMENSIONS},
            "world_size": result.world_size, "device_name": result.device_name}
    if result.attribution_error:
        return [{**base, "status": ERROR, "error": result.attribution_error}]
    attribution = result.attribution
    if attribution is None:
        return []
    overall = {"status": OK, "clock": attribution.clock, "iterations": attribution.iterations,
               "eager_twin": attribution.eager_twin, "step_ms": _num(attribution.step_ms),
               "attributed_step_ms": _num(attribution.attributed_step_ms),
               "overhead": _num(attribution.overhead)}
    rows = []
    for t in attribution.times:
        attributed = attribution.attributed_ms(t.phase)
        memory = attribution.memory.get(t.network)
        rows.append({
            **base, **overall, "network": t.network, "phase": t.phase,
            "median_ms": _num(t.median_ms), "host_median_ms": _num(t.host_median_ms),
            "share": _num(t.median_ms / attributed) if attributed > 0 else "",
            "apportioned_ms": _num(t.apportioned_ms), "apportioned_by": t.apportioned_by,
            "phase_ms": _num(attribution.phase_ms.get(t.phase)),
            "attributed_ms": _num(attributed), "sum_gap": _num(attribution.sum_gap(t.phase)),
            **(vars(memory) if memory is not None else {})})
    return rows


class CsvAppender:
    """Appends rows to a CSV file, writing the header when the file is new.

    Each call renders its rows in memory and hands them to the OS in one write, then fsyncs,
    so a configuration's rows reach the disk together. A write that fails part way (the disk
    filled) is cut back off, so the file never ends in half a row. The workers of one run
    append to the same files: each write holds the file's lock, so theirs never interleave.
    """

    def __init__(self, path: Path, fields: tuple[str, ...]):
        self.path, self.fields = path, fields
        # unbuffered: a failed write must leave nothing behind in a buffer to retry at close
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.append([])  # the header, where the file is new

    def append(self, rows: list[dict[str, Any]]) -> int:
        """Append ``rows``; the file's size before, where ``truncate`` takes them back."""
        with _locked(self._fd):
            return self._append(rows)

    def _append(self, rows: list[dict[str, Any]]) -> int:
        start = os.fstat(self._fd).st_size
        if start and not rows:
            return start
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, self.fields, extrasaction="raise")
        if start == 0:
            writer.writeheader()
        writer.writerows(rows)
        data = memoryview(buffer.getvalue().encode("utf-8"))
        try:
            while data:
                data = data[os.write(self._fd, data):]
            os.fsync(self._fd)
        except OSError as exc:
            self.truncate(start)
            raise RunFolderWriteError(f"cannot write {self.path}: {exc.strerror or exc}") \
                from None
        return start

    def truncate(self, size: int) -> None:
        # shrinking a file needs no free space, so this works on the disk that just filled
        try:
            os.ftruncate(self._fd, size)
        except OSError:
            pass  # a folder gone from under us: there is nothing left to cut back

    def close(self) -> None:
        os.close(self._fd)


@contextmanager
def _locked(fd: int) -> Iterator[None]:
    if fcntl is None:
        yield
        return
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


class ResultsWriter:
    """``results.csv``, ``samples.csv`` and ``networks.csv`` of one run folder
    (``repeats``: the passes each worker makes, which give each row its worker)."""

    def __init__(self, out_dir: Path, run_id: str, torch_version: str, hostname: str,
                 repeats: int = 1):
        self.run_id, self.torch_version, self.hostname = run_id, torch_version, hostname
        self.repeats = repeats
        self.results = CsvAppender(out_dir / RESULTS_FILE, FIELDS)
        self.samples = CsvAppender(out_dir / SAMPLES_FILE, SAMPLE_FIELDS)
        self.networks = CsvAppender(out_dir / NETWORKS_FILE, NETWORK_FIELDS)

    def write(self, *results: ConfigResult) -> list[dict[str, Any]]:
        """The rows of ``results`` (a configuration, or a comparison group's) appended
        together: one write per file."""
        rows = [row for result in results
                for row in result_rows(result, self.run_id, self.torch_version, self.hostname,
                                       self.repeats)]
        # samples first: a results row never points at samples that are not on disk
        start = self.samples.append([row for result in results
                                     for row in sample_rows(result, self.run_id)])
        try:
            self.results.append(rows)
        except RunFolderWriteError:
            self.samples.truncate(start)  # no samples without their results row either
            raise
        # last: a configuration whose results are on disk is not measured again, so its
        # attribution is never written twice (a crash here loses that attribution alone)
        self.networks.append([row for result in results
                              for row in network_rows(result, self.run_id)])
        return rows

    def close(self) -> None:
        self.results.close()
        self.samples.close()
        self.networks.close()
