"""Measuring one configuration: build its step, warm up and time it, then take memory,
work counters and NVML readings in untimed passes. One ``ConfigResult`` comes out; an
exception goes to the caller (the sweep records it, ``bench/sweep/loop.py``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from typing import Any, TextIO

import torch

from bench.axes import COMPILE, CUDA_GRAPH
from bench.measure.counting import count_phases, cuda_kernels
from bench.measure.devices import device_name
from bench.measure.memory import RssPeak, analytic_breakdown, cuda_phase_peaks
from bench.measure.nvml import NvmlSampler, find_handle, nvml_session
from bench.measure.peaks import peak_tflops
from bench.measure.result import ConfigResult
from bench.measure.timers import Agree, TimingOptions, alone, time_step
from bench.schema import MIB, NONFINITE, STEP
from multinet.step import JointStep, StepSpec, build_step

# What a rank whose own loss was finite records when another's was not: every rank skips
# the untimed passes alike, but the row names the rank where it happened.
NONFINITE_ELSEWHERE = "the loss is not finite on another rank"


def now() -> str:
    """When a configuration started, as its rows record it (ISO 8601, UTC)."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


class NvmlHandles:
    """NVML handles per CUDA device, looked up once; says once why NVML is not used."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.handles: dict[str, Any] = {}
        self.warned = False

    def sampler(self, device: torch.device) -> NvmlSampler:
        if device.type != "cuda":
            return NvmlSampler(None, None)
        nvml, reason = nvml_session()
        key = str(device)
        if nvml is not None and key not in self.handles:
            self.handles[key], reason = find_handle(nvml, device)
        handle = self.handles.get(key)
        if handle is None and not self.warned:
            self.warned = True
            print(f"note: NVML columns stay empty: {reason}", file=self.stream)
        return NvmlSampler(nvml, handle)


def measure_configuration(spec: StepSpec, options: TimingOptions, *, repeat: int = 1,
                          nvml: NvmlHandles | None = None, agree: Agree = alone) -> ConfigResult:
    """Build, warm up and time one configuration, then take its memory figures in untimed
    passes. A loss that is not finite after timing makes it ``nonfinite``, with no figures;
    an exception propagates (the sweep records it). ``agree`` makes the
    ranks of a data-parallel run decide alike (see bench/measure/timers.py)."""
    device = torch.device(spec.device)
    result = ConfigResult(spec, device_name(spec.device), repeat, now(),
                          threads=torch.get_num_threads())
    is_cuda = device.type == "cuda"
    if is_cuda:
        torch.cuda.set_device(device)
    if spec.compile != COMPILE.default:
        # Forget what earlier configurations compiled: otherwise a repeat would reuse them
        # and its compile time would be a cache lookup. (Inductor's on-disk cache stays, as
        # it does between a user's runs.)
        torch._dynamo.reset()
    step = build_step(spec)
    # Counting and the analytic breakdown dispatch through Python modes and hooks, which
    # compiled code and graph replays do not take: they run on an eager twin, which
    # computes the same thing.
    plain = spec.compile == COMPILE.default and spec.cuda_graph == CUDA_GRAPH.default
    eager = step if plain else build_step(dataclasses.replace(
        spec, compile=COMPILE.default, cuda_graph=CUDA_GRAPH.default))
    if is_cuda:
        result.peak_tflops = peak_tflops(result.device_name, spec.precision)
    rss = RssPeak()
    sampler = nvml.sampler(device) if nvml else NvmlSampler(None, None)
    columns: dict[str, Any] = {}
    with sampler:
        if is_cuda:
            torch.cuda.reset_peak_memory_stats(device)
        result.timing = time_step(step, device, options, agree)
        bad_loss = nonfinite_loss(step)
        # Under DDP the passes below all-reduce too: every rank takes them, or none does.
        if agree([float(bad_loss is not None)])[0]:
            bad_loss = bad_loss or NONFINITE_ELSEWHERE
        if bad_loss is None:
            if is_cuda:
                columns["cuda_peak_allocated_mib"] = torch.cuda.max_memory_allocated(device) / MIB
                columns["cuda_peak_reserved_mib"] = torch.cuda.max_memory_reserved(device) / MIB
                for phase, peak in cuda_phase_peaks(step, device).items():
                    result.phase_columns[phase] = {"phase_peak_allocated_mib": peak}
            breakdown = analytic_breakdown(eager)
            count_work(result, step, eager, is_cuda)
    if bad_loss is not None:
        result.status, result.error, result.timing = NONFINITE, bad_loss, None
    else:
        columns.update(vars(breakdown))
        columns.update(sampler.columns() if sampler.active else {})
        columns["cpu_peak_rss_mib"] = rss.read_mib()
        result.config_columns = columns
    del step
    if is_cuda:
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()  # each configuration's reserved peak starts from nothing
    return result


def count_work(result: ConfigResult, step, eager: JointStep, is_cuda: bool) -> None:
    """FLOPs and operators per phase (from the eager twin), kernels on CUDA (from the step
    as timed), into the result's per-phase columns; ``step`` rows get the totals."""
    flops, ops = count_phases(eager)
    per_phase = {phase: {"flops": flops.get(phase, 0), "ops": ops.get(phase, 0)}
                 for phase in flops}
    if is_cuda:
        for phase, n in cuda_kernels(step).items():
            per_phase.setdefault(phase, {})["kernels"] = n
    totals: dict[str, int] = Counter()
    for columns in per_phase.values():
        totals.update(columns)
    for phase, columns in {**per_phase, STEP: dict(totals)}.items():
        result.phase_columns.setdefault(phase, {}).update(columns)


def nonfinite_loss(step: JointStep) -> str | None:
    """Why the last timed iteration's loss is not a number, or None when it is finite.
    Read after timing: inspecting the loss inside the timed region would add a sync."""
    loss = step.last_loss
    if loss is None or bool(torch.isfinite(loss).all()):
        return None
    value = loss.item() if loss.numel() == 1 else "not finite"
    return f"loss is {value} at the last timed iteration"
