"""What measuring one configuration yields: its spec, status, raw timing and the columns
measured once per configuration or per phase. The sweep turns it into rows
(``bench/sweep/writer.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bench.measure.timers import Timing
from bench.schema import OK, TARGET, TIMED_PHASES
from multinet.scenarios import SCENARIOS
from multinet.step import StepSpec

if TYPE_CHECKING:
    from bench.measure.attribution import Attribution


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
    # each network's share of each phase, from the attribution pass after the timing
    # (bench/measure/attribution.py); or why that pass failed
    attribution: Attribution | None = None
    attribution_error: str = ""

    @property
    def timed_phases(self) -> tuple[str, ...]:
        """The phases this configuration has rows for, whatever its status: the optional
        ``target`` phase only where the scenario has a target update."""
        scenario = SCENARIOS.get(self.spec.scenario)
        if scenario is not None and scenario.has_target_update:
            return TIMED_PHASES
        return tuple(p for p in TIMED_PHASES if p != TARGET)
