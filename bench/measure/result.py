"""What measuring one configuration yields: its spec, status, raw timing and the columns
measured once per configuration or per phase. The sweep turns it into rows
(``bench/sweep/writer.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.measure.timers import Timing
from bench.schema import OK
from multinet.step import StepSpec


@dataclass
class ConfigResult:
    """Everything measured for one configuration; the rows are derived from it."""

    spec: StepSpec
    device_name: str
    repeat: int
    started_at: str
    status: str = OK
    error: str = ""
    timing: Timing | None = None
    threads: int | None = None
    # columns measured once per configuration (memory, NVML): the same on each of its rows
    config_columns: dict[str, Any] = field(default_factory=dict)
    # per-phase columns (phase_peak_allocated_mib, flops, ops, kernels)
    phase_columns: dict[str, dict[str, Any]] = field(default_factory=dict)
    # the device's published dense peak at this precision, where known (TFLOP/s)
    peak_tflops: float | None = None
    # the config_id of the comparison group's reference, where it was timed with others
    group: str = ""
    # a data-parallel run: its ranks, and the backend of its collectives
    world_size: int = 1
    backend: str = ""
