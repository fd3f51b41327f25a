"""Measuring configurations: each one's memory and work counted alone in untimed passes,
then the configurations of a comparison group timed together, round-robin. One
``ConfigResult`` comes out per configuration; an exception goes to the caller (the sweep
records it, ``bench/sweep/failures.py``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from collections.abc import Sequence
from typing import Any, TextIO

import torch

from bench.axes import COMPILE, CUDA_GRAPH
from bench.measure.attribution import attribute_into
from bench.measure.counting import count_phases, cuda_kernels
from bench.measure.devices import device_name
from bench.measure.energy import EnergyMeter
from bench.measure.memory import RssPeak, analytic_breakdown, cuda_phase_peaks
from bench.measure.nvml import NvmlSampler, find_handle, nvml_session
from bench.measure.peaks import peak_tflops
from bench.measure.result import ConfigResult
from bench.measure.timers import Agree, RoundRobin, Stopping, TimingOptions, alone
from bench.schema import MIB, NONFINITE, OK, STEP
from multinet.step import JointStep, StepSpec, build_step

# Untimed iterations of the pass that measures memory: the first creates the optimizers'
# state, the second runs as every later one does.
ALONE_ITERATIONS = 2
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


def new_result(spec: StepSpec, repeat: int) -> ConfigResult:
    result = ConfigResult(spec, device_name(spec.device), repeat, now(),
                          threads=torch.get_num_threads())
    if torch.device(spec.device).type == "cuda":
        result.peak_tflops = peak_tflops(result.device_name, spec.precision)
    return result


def measure_configuration(spec: StepSpec, options: TimingOptions, *, repeat: int = 1,
                          nvml: NvmlHandles | None = None, agree: Agree = alone) -> ConfigResult:
    """One configuration measured alone: a comparison group of one."""
    return measure_group([spec], options, repeat=repeat, nvml=nvml, agree=agree)[0]


def measure_group(specs: Sequence[StepSpec], options: TimingOptions, *, repeat: int = 1,
                  nvml: NvmlHandles | None = None, agree: Agree = alone) -> list[ConfigResult]:
    """Configurations compared with each other, all on one device: all timed together
    (``time_together``; a compiled one compiles there, which ``compile_s`` times), then each
    one's memory and work counted alone (``measure_alone``). An exception propagates (the
    sweep records it). ``agree`` makes the ranks of a data-parallel run decide alike (see
    bench/measure/timers.py)."""
    device = torch.device(specs[0].device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    results = [new_result(spec, repeat) for spec in specs]
    time_together(results, options, nvml=nvml, agree=agree)
    for result in results:
        if result.status == OK:  # every rank agreed on which are not
            measure_alone(result, options.attribution_s)
    return results


def measure_alone(result: ConfigResult, attribution_s: float = 1.0) -> None:
    """Memory and work of one configuration in untimed iterations, alone on its device, on a
    step built afresh: the allocator's peak over its first iterations (Adam creates its
    state in the first), the peak of each phase, the analytic breakdown, FLOPs, operators
    and kernels; then each network's share of the phases (``bench/measure/attribution.py``)."""
    spec = result.spec
    device = torch.device(spec.device)
    is_cuda = device.type == "cuda"
    rss = RssPeak()
    step = build_step(spec)
    # Counting and the analytic breakdown dispatch through Python modes and hooks, which
    # compiled code and graph replays do not take: they run on an eager twin, which
    # computes the same thing.
    plain = spec.compile == COMPILE.default and spec.cuda_graph == CUDA_GRAPH.default
    eager = step if plain else build_step(dataclasses.replace(
        spec, compile=COMPILE.default, cuda_graph=CUDA_GRAPH.default))
    columns: dict[str, Any] = {}
    if is_cuda:
        torch.cuda.reset_peak_memory_stats(device)
    for _ in range(ALONE_ITERATIONS):
        step.run()
    if is_cuda:
        columns["cuda_peak_allocated_mib"] = torch.cuda.max_memory_allocated(device) / MIB
        columns["cuda_peak_reserved_mib"] = torch.cuda.max_memory_reserved(device) / MIB
        for phase, peak in cuda_phase_peaks(step, device).items():
            result.phase_columns.setdefault(phase, {})["phase_peak_allocated_mib"] = peak
    columns.update(vars(analytic_breakdown(eager)))
    count_work(result, step, eager, is_cuda)
    columns["cpu_peak_rss_mib"] = rss.read_mib()
    result.config_columns.update(columns)
    del step, eager
    release_cuda(device)
    attribute_into(result, attribution_s)  # each network's share, in a pass of its own


class TimedGroup:
    """The configurations of ``results`` being timed together, round-robin, in one process
    (a group of one is timed alone): built and warmed up on creation, then a round per
    ``visit`` until they stop, then ``finish`` keeps each one's timing; a loss that is not
    finite after timing makes that configuration ``nonfinite``, with no figures. NVML reads
    the device while they run: its columns are the group's, except the energy, which is
    read around each one's blocks (``bench/measure/energy.py``). Nothing of ``results``
    changes unless ``finish`` is reached; ``abandon`` lets the steps go instead."""

    def __init__(self, results: Sequence[ConfigResult], options: TimingOptions, *,
                 nvml: NvmlHandles | None = None, agree: Agree = alone,
                 stopping: Stopping | None = None):
        self.results, self.agree = list(results), agree
        specs = [r.spec for r in self.results]
        self.device = torch.device(specs[0].device)
        if any(spec.compile != COMPILE.default for spec in specs):
            # Forget what was compiled before: a repeat, or the untimed pass, would otherwise
            # make this compile time a cache lookup. (Inductor's on-disk cache stays, as it
            # does between a user's runs.)
            torch._dynamo.reset()
        self.steps = [build_step(spec) for spec in specs]
        self.sampler = nvml.sampler(self.device) if nvml else NvmlSampler(None, None)
        self.meter = EnergyMeter(self.sampler.nvml, self.sampler.handle, len(self.steps))
        self.sampler.__enter__()
        self.sampling = True
        try:
            self.robin = RoundRobin(self.steps, self.device, options, agree,
                                    block_hook=self.meter, stopping=stopping)
        except BaseException:
            self.abandon()
            raise

    @property
    def done(self) -> bool:
        return self.robin.done

    def visit(self, rewarm: bool = False) -> bool:
        """One round of each; whether they are done."""
        return self.robin.visit(rewarm)

    def finish(self) -> None:
        """Keep each configuration's timing (or record its non-finite loss)."""
        self._stop_sampling()
        readings = self.sampler.columns() if self.sampler.active else {}
        for i, (result, step, timing) in enumerate(zip(self.results, self.steps,
                                                       self.robin.timings)):
            bad_loss = nonfinite_loss(step)
            if self.agree([float(bad_loss is not None)])[0]:  # every rank records it, or none
                bad_loss = bad_loss or NONFINITE_ELSEWHERE
            if bad_loss is not None:
                result.status, result.error = NONFINITE, bad_loss
                result.timing, result.config_columns, result.phase_columns = None, {}, {}
            else:
                result.timing = timing
                result.config_columns.update(readings)
                result.config_columns.update(self.meter.columns(
                    i, timing, result.spec.batch_size, readings.get("power_w_mean")))
        self.abandon()

    def _stop_sampling(self) -> None:
        if self.sampling:
            self.sampling = False
            self.sampler.__exit__(None, None, None)

    def abandon(self) -> None:
        """Let the steps and the sampler go, and give the device's memory back."""
        self._stop_sampling()
        self.steps = []
        if hasattr(self, "robin"):
            self.robin.steps = []
        release_cuda(self.device)


def time_together(results: Sequence[ConfigResult], options: TimingOptions, *,
                  nvml: NvmlHandles | None = None, agree: Agree = alone,
                  stopping: Stopping | None = None) -> None:
    """Time the configurations of ``results`` together until they stop (``TimedGroup``)."""
    group = TimedGroup(results, options, nvml=nvml, agree=agree, stopping=stopping)
    try:
        while not group.visit():
            pass
    except BaseException:
        group.abandon()
        raise
    group.finish()


def release_cuda(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()  # the next configuration's reserved peak starts from nothing


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
