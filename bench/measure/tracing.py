"""A profiler trace of a few iterations of one configuration, with a named range for every
phase and every network, in the Chrome trace format.

Opt-in (``python -m bench trace``, ``run --trace``) and never inside a timed pass: the step
is built afresh (its eager twin where it is compiled or graphed, which have no boundaries
inside them), run twice untimed through the network boundaries (the first surveys the
backward's order, ``bench/measure/boundaries.py``), then ``TRACED_STEPS`` iterations under
``torch.profiler``. Each stage is a range ``phase:<phase>``, each network's share of it a
range ``network:<name>`` (several networks updated by one optimizer call:
``network:<a>+<b>``); work outside every network has no network range. The ranges are
``record_function`` ranges, which the trace holds as user annotations, and on CUDA NVTX
ranges too, which Nsight Systems shows. A backward's network ranges sit on the thread the
autograd engine runs it on: on CUDA that is the engine's device thread, not the caller's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.autograd.profiler import record_function

from bench.measure.attribution import eager_twin
from bench.measure.boundaries import NOBODY, NetworkBoundaries, Owner
from bench.measure.clocks import synchronizer
from multinet.step import JointStep, StepSpec, build_step

TRACED_STEPS = 3
PHASE_RANGE, NETWORK_RANGE = "phase:", "network:"


def network_range(owner: Owner) -> str:
    return NETWORK_RANGE + "+".join(owner)


class Range:
    """A profiler range, and on CUDA an NVTX range, opened now and closed by ``close``.
    NVTX's start/end ranges may end on another thread than they began."""

    def __init__(self, name: str, cuda: bool):
        self.record = record_function(name)
        self.record.__enter__()
        self.nvtx = torch.cuda.nvtx.range_start(name) if cuda else None

    def close(self) -> None:
        self.record.__exit__(None, None, None)
        if self.nvtx is not None:
            torch.cuda.nvtx.range_end(self.nvtx)


class RangeMarks:
    """Marks that open a range per stage and per network's share of it."""

    def __init__(self, cuda: bool):
        self.cuda = cuda
        self.phase: Range | None = None
        self.network: Range | None = None

    def begin(self, phase: str, owner: Owner = NOBODY) -> None:
        self.phase = Range(PHASE_RANGE + phase, self.cuda)
        self.switch(owner)

    def switch(self, owner: Owner) -> None:
        if self.network is not None:
            self.network.close()
            self.network = None
        if owner != NOBODY:
            self.network = Range(network_range(owner), self.cuda)

    def end(self) -> None:
        self.switch(NOBODY)
        self.phase.close()
        self.phase = None


@dataclass(frozen=True)
class Trace:
    path: Path
    steps: int
    eager_twin: bool
    networks: tuple[str, ...]
    phases: tuple[str, ...]


def trace_configuration(spec: StepSpec, path: Path, steps: int = TRACED_STEPS) -> Trace:
    """Trace ``steps`` iterations of ``spec`` into ``path`` (a Chrome trace JSON)."""
    eager = eager_twin(spec)
    step = build_step(eager)
    device = torch.device(spec.device)
    return trace_step(step, device, path, steps, eager_twin=eager != spec)


def trace_step(step: JointStep, device: torch.device, path: Path,
               steps: int = TRACED_STEPS, *, eager_twin: bool = False) -> Trace:
    from torch.profiler import ProfilerActivity, profile

    cuda = device.type == "cuda"
    boundaries = NetworkBoundaries(step, RangeMarks(cuda))
    boundaries.iteration(survey=True)
    boundaries.iteration()
    sync = synchronizer(device)
    sync()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        for i in range(steps):
            with record_function(f"iteration {i}"):
                boundaries.iteration()
            sync()
    path.parent.mkdir(parents=True, exist_ok=True)
    prof.export_chrome_trace(str(path))
    phases = tuple(dict.fromkeys(name for name, _ in step.phases()))
    return Trace(path, steps, eager_twin, tuple(step.networks), phases)


def load_trace(path: Path) -> list[dict]:
    """The events of a Chrome trace JSON file."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return data["traceEvents"] if isinstance(data, dict) else data
