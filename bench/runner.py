"""Runs a sweep: for each configuration, build the step, time it, collect memory, append
its rows to disk at once.

Validation happens before anything is created (``load_sweep`` and ``expand`` raise
``UsageError``), the environment is captured once, and the configurations of every repeat
run in a fresh random order, so slow drift of a shared machine spreads over all of them
instead of biasing whichever ran last.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import secrets
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import torch

from bench.atomic import write_json_atomic
from bench.config import SweepConfig, expand
from bench.devices import device_name
from bench.env import capture_environment
from bench.errors import UsageError
from bench.memory import RssPeak, analytic_breakdown, cuda_phase_peaks
from bench.nvml import NvmlSampler, find_handle, nvml_session
from bench.progress import Progress
from bench.results import ConfigResult, ResultsWriter, config_id
from bench.schema import ENV_FILE
from bench.timers import STEP, TimingOptions, time_step
from multinet.step import StepSpec, build_step

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
    rows: list[dict[str, Any]] = field(default_factory=list)
    results: list[ConfigResult] = field(default_factory=list)


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
                          nvml: NvmlHandles | None = None) -> ConfigResult:
    """Build, warm up and time one configuration, then take its memory figures in untimed
    passes."""
    device = torch.device(spec.device)
    result = ConfigResult(spec, device_name(spec.device), repeat,
                          dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                          threads=torch.get_num_threads())
    is_cuda = device.type == "cuda"
    if is_cuda:
        torch.cuda.set_device(device)
    step = build_step(spec)
    rss = RssPeak()
    sampler = nvml.sampler(device) if nvml else NvmlSampler(None, None)
    with sampler:
        if is_cuda:
            torch.cuda.reset_peak_memory_stats(device)
        result.timing = time_step(step, device, options)
        columns: dict[str, Any] = {}
        if is_cuda:
            columns["cuda_peak_allocated_mib"] = torch.cuda.max_memory_allocated(device) / MIB
            columns["cuda_peak_reserved_mib"] = torch.cuda.max_memory_reserved(device) / MIB
            for phase, peak in cuda_phase_peaks(step, device).items():
                result.phase_columns[phase] = {"phase_peak_allocated_mib": peak}
        breakdown = analytic_breakdown(step)
    columns.update(vars(breakdown))
    columns.update(sampler.columns() if sampler.active else {})
    columns["cpu_peak_rss_mib"] = rss.read_mib()
    result.config_columns = columns
    del step
    if is_cuda:
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()  # each configuration's reserved peak starts from nothing
    return result


def _label(result: ConfigResult) -> str:
    text = config_id(result.spec)
    if result.timing is not None and result.timing.device_ms[STEP]:
        text += f" | step {result.timing.summary(STEP).median:.3f} ms"
    return text


def prepare_out_dir(out_dir: Path) -> None:
    """Create the run folder, or say in one line why it cannot be written."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out-dir {out_dir} is a file, not a folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"--out-dir {out_dir} is not writable: {exc.strerror}") from None


def run_sweep(config: SweepConfig, out_dir: Path | None = None, *, argv: list[str] = (),
              progress: bool = True, stream: TextIO | None = None) -> RunOutcome:
    stream = stream or sys.stderr
    specs = expand(config)  # raises UsageError before anything is created
    run_id = new_run_id()
    out_dir = Path(out_dir) if out_dir else Path("results") / run_id
    prepare_out_dir(out_dir)
    for notice in config.notices:
        print(f"note: {notice}", file=stream)
    if config.threads:
        torch.set_num_threads(config.threads)

    env = capture_environment(run_id, list(argv))
    write_json_atomic(out_dir / ENV_FILE, env)
    writer = ResultsWriter(out_dir, run_id, torch.__version__, socket.gethostname())
    outcome = RunOutcome(run_id, out_dir)
    bar = Progress(len(specs) * config.repeats, stream, enabled=progress)
    nvml = NvmlHandles(stream)
    shuffler = random.Random(secrets.randbits(64))
    try:
        for repeat in range(1, config.repeats + 1):
            order = list(specs)
            shuffler.shuffle(order)
            for spec in order:
                result = measure_configuration(spec, config.timing, repeat=repeat, nvml=nvml)
                outcome.rows.extend(writer.write(result))
                outcome.results.append(result)
                bar.advance(_label(result))
    finally:
        writer.close()
        bar.close()
    return outcome
