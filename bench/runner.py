"""Runs a sweep: for each configuration, build the step, time it, collect memory, append
its rows to disk at once.

Validation happens before anything is created (``load_sweep`` and ``expand`` raise
``UsageError``), the environment is captured once, and the configurations of every repeat
run in a fresh random order, so slow drift of a shared machine spreads over all of them
instead of biasing whichever ran last.

A configuration that fails is recorded, not fatal: out of memory, a non-finite loss or an
exception each gives rows with that status (see ``bench/failures.py``), and the sweep goes
on. SIGINT and SIGTERM stop it cleanly (``bench/interrupt.py``); ``resume_sweep`` continues
it later in the same folder.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import json
import random
import re
import secrets
import socket
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import torch

from bench.atomic import write_json_atomic
from bench.config import SweepConfig, expand_all
from bench.counting import count_phases, cuda_kernels
from bench.errors import RunFolderWriteError, UsageError
from bench.devices import device_name
from bench.env import capture_environment
from bench.failures import FAILURES, OomLimits, classify, spec_group
from bench.interrupt import Interrupted, StopOnSignal
from bench.memory import RssPeak, analytic_breakdown, cuda_phase_peaks
from bench.peaks import peak_tflops
from bench.nvml import NvmlSampler, find_handle, nvml_session
from bench.progress import Progress
from bench.results import ConfigResult, ResultsWriter, config_id
from bench.runfolder import (PreviousRun, open_previous_run, prepare_out_dir, read_sweep_record,
                             write_sweep_record)
from bench.schema import ENV_FILE, NONFINITE, OK, OOM, SKIPPED
from bench.ranks import NONFINITE_ELSEWHERE
from bench.timers import STEP, Agree, TimingOptions, alone, time_step
from multinet.step import JointStep, StepSpec, build_step

MIB = 1024 * 1024


def new_run_id(now: dt.datetime | None = None) -> str:
    """Time, host and a random suffix: two runs started in the same second still differ."""
    now = now or dt.datetime.now(dt.timezone.utc)
    host = re.sub(r"[^A-Za-z0-9-]+", "-", socket.gethostname())[:24].strip("-") or "host"
    return f"{now:%Y%m%d-%H%M%S}-{host}-{secrets.token_hex(3)}"


@dataclass
class RunOutcome:
    run_id: str
    out_dir: Path
    rows: list[dict[str, Any]] = field(default_factory=list)  # the run's, resumed ones too
    results: list[ConfigResult] = field(default_factory=list)  # measured by this call
    pending: int = 0  # configurations (per repeat) left unmeasured
    signum: int | None = None  # the signal that stopped the sweep
    failed_fast: ConfigResult | None = None  # the failure that stopped it (--fail-fast)
    write_error: str | None = None  # why the run folder could not be written, which stopped it

    @property
    def complete(self) -> bool:
        return self.pending == 0


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
    an exception propagates (``attempt_configuration`` records it). ``agree`` makes the
    ranks of a data-parallel run decide alike (see bench/timers.py)."""
    device = torch.device(spec.device)
    result = ConfigResult(spec, device_name(spec.device), repeat, _now(),
                          threads=torch.get_num_threads())
    is_cuda = device.type == "cuda"
    if is_cuda:
        torch.cuda.set_device(device)
    if spec.compile != "none":
        # Forget what earlier configurations compiled: otherwise a repeat would reuse them
        # and its compile time would be a cache lookup. (Inductor's on-disk cache stays, as
        # it does between a user's runs.)
        torch._dynamo.reset()
    step = build_step(spec)
    # Counting and the analytic breakdown dispatch through Python modes and hooks, which
    # compiled code and graph replays do not take: they run on an eager twin, which
    # computes the same thing.
    plain = spec.compile == "none" and not spec.cuda_graph
    eager = step if plain else build_step(dataclasses.replace(spec, compile="none",
                                                                 cuda_graph=False))
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


def attempt_configuration(spec: StepSpec, options: TimingOptions, *, repeat: int = 1,
                          nvml: NvmlHandles | None = None,
                          oom: OomLimits | None = None) -> ConfigResult:
    """One configuration's result, whatever happens: measured, ``nonfinite``, ``skipped``
    (a smaller batch ran out of memory), ``oom`` or ``error``. Only an interruption
    (a BaseException) propagates."""
    started = _now()
    reason = oom.skip_reason(spec) if oom else None
    if reason is not None:
        return _unmeasured(spec, repeat, started, SKIPPED, reason)
    try:
        return measure_configuration(spec, options, repeat=repeat, nvml=nvml)
    except Exception as exc:  # any failure of one configuration is recorded, not fatal
        status, reason = classify(exc)
    # Leaving the except clause dropped the exception and, with its traceback, the frames
    # that held the step's tensors; only now can their memory be given back.
    release_memory(torch.device(spec.device))
    if status == OOM and oom is not None:
        oom.record(spec)
    return _unmeasured(spec, repeat, started, status, reason)


def release_memory(device: torch.device) -> None:
    gc.collect()  # tensors held in reference cycles
    if device.type == "cuda":
        try:
            torch.cuda.synchronize(device)
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        except RuntimeError:
            pass  # a sticky CUDA error (an illegal access): each later configuration records it


def _unmeasured(spec: StepSpec, repeat: int, started: str, status: str,
                reason: str) -> ConfigResult:
    return ConfigResult(spec, device_name(spec.device), repeat, started, status=status,
                        error=reason, threads=torch.get_num_threads())


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def progress_label(result: ConfigResult) -> str:
    text = config_id(result.spec)
    if result.status != OK:
        return f"{text} | {result.status}: {result.error}"
    if result.timing is not None and result.timing.device_ms[STEP]:
        text += f" | step {result.timing.summary(STEP).median:.3f} ms"
    return text


def sweep_order(specs: list[StepSpec], rng: random.Random) -> list[StepSpec]:
    """A random order in which, within each group that differs only in batch size, batch
    sizes come smallest first: one out-of-memory then spares every larger batch of its
    group. Groups still interleave at random, so drift spreads over the setups, optimizers
    and scenarios that a comparison sets side by side."""
    order = list(specs)
    rng.shuffle(order)
    ascending: dict[StepSpec, list[StepSpec]] = defaultdict(list)
    for spec in sorted(order, key=lambda s: s.batch_size):
        ascending[spec_group(spec)].append(spec)
    queues = {key: iter(group) for key, group in ascending.items()}
    return [next(queues[spec_group(spec)]) for spec in order]


def run_sweep(config: SweepConfig, out_dir: Path | None = None, *, argv: list[str] = (),
              progress: bool = True, stream: TextIO | None = None,
              fail_fast: bool = False) -> RunOutcome:
    """A new run: validate, prepare the folder, record the sweep and the environment,
    measure."""
    stream = stream or sys.stderr
    specs, not_attempted = expand_all(config)  # raises UsageError before anything is created
    if not specs:
        raise UsageError(f"no configuration of this sweep can run here: {not_attempted[0][1]}")
    run_id = new_run_id()
    out_dir = Path(out_dir) if out_dir else Path("results") / run_id
    lock = prepare_out_dir(out_dir)
    for notice in config.notices:
        print(f"note: {notice}", file=stream)
    for reason, count in Counter(reason for _, reason in not_attempted).items():
        print(f"note: {count} configuration(s) not attempted: {reason}", file=stream)
    if config.threads:
        torch.set_num_threads(config.threads)
    names = {device: device_name(device) for device in dict.fromkeys(s.device for s in specs)}
    write_sweep_record(out_dir, run_id, config, specs, torch.__version__, names)
    write_json_atomic(out_dir / ENV_FILE, capture_environment(run_id, list(argv)))
    try:
        return _measure(PreviousRun(out_dir, run_id, config, specs), progress, stream,
                        fail_fast)
    finally:
        if lock is not None:
            lock.close()


def resume_sweep(out_dir: Path, *, argv: list[str] = (), progress: bool = True,
                 stream: TextIO | None = None, fail_fast: bool = False) -> RunOutcome:
    """Continue the run in ``out_dir``: the configurations (per repeat) not yet recorded,
    with the same run_id. Refused (UsageError) where the figures would not be comparable."""
    stream = stream or sys.stderr
    out_dir = Path(out_dir)
    record = read_sweep_record(out_dir)
    lock = prepare_out_dir(out_dir, new=False)
    try:
        run = open_previous_run(out_dir, record)
        if run.config.threads:
            torch.set_num_threads(run.config.threads)
        note_resume(out_dir, run.run_id, list(argv))
        return _measure(run, progress, stream, fail_fast)
    finally:
        if lock is not None:
            lock.close()


def note_resume(out_dir: Path, run_id: str, argv: list[str]) -> None:
    """env.json keeps the run's environment as first captured; each resume is listed in it."""
    path = out_dir / ENV_FILE
    try:
        env = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        env = capture_environment(run_id, argv)
    env.setdefault("resumes", []).append({"started_at": _now(),
                                          "command_line": " ".join(["bench", *argv])})
    write_json_atomic(path, env)


def pending(run: PreviousRun) -> list[tuple[int, StepSpec]]:
    """What is left to measure, per repeat, each repeat in a fresh random order."""
    shuffler = random.Random(secrets.randbits(64))
    return [(repeat, spec) for repeat in range(1, run.config.repeats + 1)
            for spec in sweep_order(run.specs, shuffler)
            if (repeat, config_id(spec)) not in run.done]


def _measure(run: PreviousRun, progress: bool, stream: TextIO, fail_fast: bool) -> RunOutcome:
    todo = pending(run)
    outcome = RunOutcome(run.run_id, run.out_dir, rows=list(run.rows), pending=len(todo))
    writer = ResultsWriter(run.out_dir, run.run_id, torch.__version__, socket.gethostname())
    bar = Progress(len(todo), stream, enabled=progress)
    nvml = NvmlHandles(stream)
    stop = StopOnSignal(stream)
    try:
        with stop:
            for repeat, spec in todo:
                if stop.requested:
                    break
                result = attempt_configuration(spec, run.config.timing, repeat=repeat,
                                               nvml=nvml, oom=run.oom)
                try:
                    with stop.protected():  # samples and results of a configuration, or neither
                        outcome.rows.extend(writer.write(result))
                except RunFolderWriteError as exc:
                    outcome.write_error = str(exc)  # this one is lost; those before are kept
                    break
                outcome.results.append(result)
                outcome.pending -= 1
                bar.advance(progress_label(result))
                if fail_fast and result.status in FAILURES:
                    outcome.failed_fast = result
                    break
    except Interrupted:
        pass  # the configuration in progress is abandoned; nothing of it was written
    finally:
        writer.close()
        bar.close()
    outcome.signum = stop.signum
    return outcome
