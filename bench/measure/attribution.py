"""The attribution pass: each network's share of each phase, in iterations of their own.

It runs after a configuration's timing, on a step built afresh, so the timed passes stay
unbroken. Its rounds alternate three kinds of iteration, in a rotating order so that the
machine's drift lands on all three alike:

- ``step``: the whole iteration with no boundaries (the unbroken step);
- ``phases``: boundaries between the stages only, as the timer's phase pass has them;
- ``networks``: the stages with every network's boundaries as well
  (``bench/measure/boundaries.py``).

A network's time in a phase is the median over the ``networks`` iterations of what it owned
in that phase's stages. Two checks come with it, each a ratio taken round by round, within
a round's few milliseconds, and its median over the rounds, so that the machine's changes
of speed between rounds cancel (as in the timer's paired ratios): the networks' times in a
phase (``OUTSIDE`` among them) against the phase's time in the same round's ``phases``
iteration (``sum_gap``: how far they miss adding up to it), and the ``networks``
iteration's whole time against the same round's unbroken step (``overhead``: what the
boundaries cost).

Time is taken as the timer takes it (``bench/measure/clocks.py``): on CUDA an event at each
boundary on the current stream, read after one synchronization per iteration, with the host
clock beside it; elsewhere the host clock alone. An update that one call makes for several
networks (a ``foreach`` or ``fused`` step over ``single``'s one group) is split among them
in proportion to their parameter elements, and the share is marked as apportioned.

Before the rounds, one surveying iteration hooks every autograd node (it learns each
backward's order) and reads the memory per network (``bench/measure/network_memory.py``).
Compiled steps and CUDA graphs have no module or node boundaries inside them: the pass runs
on their eager twin, and says so. Data-parallel steps are not attributed: the ranks would
have to agree on every iteration of the pass.
"""

from __future__ import annotations

import dataclasses
import gc
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from bench.axes import COMPILE, CUDA_GRAPH, DDP_WRAP
from bench.measure.boundaries import (NOBODY, OUTSIDE, NetworkBoundaries, Owner, apportion,
                                      network_elements)
from bench.measure.clocks import phase_names, synchronizer
from bench.measure.network_memory import NetworkMemory, survey_memory
from bench.measure.result import ConfigResult
from bench.measure.timing_words import CUDA_EVENT, MPS_SYNC, PERF_COUNTER
from multinet.step import JointStep, StepSpec, build_step

# Rounds of the three kinds: at least MIN_ROUNDS, then more until BUDGET_S is spent, at
# most MAX_ROUNDS. A round of a tiny CPU step takes milliseconds; of a published-size GPU
# step, a fraction of a second.
MIN_ROUNDS, MAX_ROUNDS, BUDGET_S = 7, 31, 1.0
KINDS = ("step", "phases", "networks")
APPORTIONED_BY = "parameter elements: one optimizer call updates {} together"


@dataclass
class NetworkTime:
    """One network's time in one phase: medians over the ``networks`` iterations."""

    network: str
    phase: str
    median_ms: float
    host_median_ms: float
    apportioned_ms: float = 0.0  # the part of median_ms split off a shared call
    apportioned_by: str = ""


@dataclass
class Attribution:
    clock: str
    iterations: int  # ``networks`` iterations behind each median
    eager_twin: bool
    times: list[NetworkTime] = field(default_factory=list)
    phase_ms: dict[str, float] = field(default_factory=dict)  # from the ``phases`` iterations
    step_ms: float = 0.0  # the unbroken step's median
    attributed_step_ms: float = 0.0  # the ``networks`` iterations' median
    memory: dict[str, NetworkMemory] = field(default_factory=dict)
    networks: tuple[str, ...] = ()  # the scenario's, then OUTSIDE

    def attributed_ms(self, phase: str) -> float:
        return sum(t.median_ms for t in self.times if t.phase == phase)

    # per phase: the median over rounds of the networks' time over the phase's, less 1
    sum_gaps: dict[str, float | None] = field(default_factory=dict)
    # the median over rounds of the attributed iteration over the unbroken step, less 1
    overhead: float | None = None

    def sum_gap(self, phase: str) -> float | None:
        return self.sum_gaps.get(phase)


class Timeline:
    """The marks of one iteration: at each boundary the owner from there on, the host clock
    and, on CUDA, an event (from a pool reused every iteration). MPS has no timing events:
    there the host synchronizes at every boundary, as its clock does for the phases."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.mps_sync = torch.mps.synchronize if device.type == "mps" else None
        self.pool: list[torch.cuda.Event] = []
        self.stages: list[tuple[str, list]] = []
        self._used = 0

    def reset(self) -> None:
        self.stages, self._used = [], 0

    def begin(self, phase: str, owner: Owner = NOBODY) -> None:
        self._marks: list = []
        self.stages.append((phase, self._marks))
        self.switch(owner)

    def switch(self, owner: Owner | None) -> None:
        if self.mps_sync is not None:
            self.mps_sync()
        # the host clock first: on the CPU this is all a boundary costs
        now = time.perf_counter_ns()
        event = None
        if self.cuda:
            if self._used == len(self.pool):
                self.pool.append(torch.cuda.Event(enable_timing=True))
            event = self.pool[self._used]
            self._used += 1
            event.record()
        self._marks.append((owner, now, event))

    def end(self) -> None:
        self.switch(None)

    def segments(self) -> dict[tuple[str, Owner], tuple[float, float]]:
        """(device ms, host ms) per phase and owner; call after synchronizing."""
        totals: dict[tuple[str, Owner], list[float]] = defaultdict(lambda: [0.0, 0.0])
        for phase, marks in self.stages:
            for (owner, t0, e0), (_, t1, e1) in zip(marks, marks[1:]):
                host = (t1 - t0) / 1e6
                entry = totals[(phase, owner)]
                entry[0] += e0.elapsed_time(e1) if self.cuda else host
                entry[1] += host
        return {k: (v[0], v[1]) for k, v in totals.items()}

    def stage_totals(self) -> tuple[dict[str, float], float]:
        """Device ms per phase, and of the whole iteration."""
        per_phase: dict[str, float] = defaultdict(float)
        for (phase, _), (device_ms, _) in self.segments().items():
            per_phase[phase] += device_ms
        return dict(per_phase), sum(per_phase.values())


def attributable(spec: StepSpec) -> bool:
    """Whether the pass runs for ``spec``: not for data-parallel steps."""
    return spec.ddp_wrap == DDP_WRAP.default


def attribute_into(result: ConfigResult, budget_s: float = BUDGET_S) -> None:
    """The pass for a measured configuration, into ``result.attribution``, once per
    configuration: in its first pass (repeat 1), not again in every repeat and worker. A
    failure (out of memory, say) is kept as ``result.attribution_error`` and never raised:
    the configuration's timing and memory stand whatever becomes of its attribution.
    ``budget_s`` 0: no pass at all (paired rounds compare the phases' times alone, and the
    pass took a quarter of each round)."""
    if not attributable(result.spec) or result.repeat != 1 or budget_s <= 0:
        return
    try:
        result.attribution = attribute(result.spec, budget_s=budget_s)
    except Exception as exc:  # recorded in networks.csv; the results row stays `ok`
        lines = str(exc).strip().splitlines()
        result.attribution_error = f"{type(exc).__name__}: {lines[0] if lines else ''}"
    # outside the except clause, whose traceback held the step's tensors
    gc.collect()
    if torch.device(result.spec.device).type == "cuda":
        torch.cuda.synchronize(result.spec.device)
        torch.cuda.empty_cache()


def eager_twin(spec: StepSpec) -> StepSpec:
    """The spec without compilation or graph capture (the same computation, eager)."""
    return dataclasses.replace(spec, compile=COMPILE.default, cuda_graph=CUDA_GRAPH.default)


def attribute(spec: StepSpec, *, min_rounds: int = MIN_ROUNDS, max_rounds: int = MAX_ROUNDS,
              budget_s: float = BUDGET_S) -> Attribution:
    """The attribution pass for ``spec`` on a step built afresh (its eager twin where it is
    compiled or graphed). Exceptions go to the caller."""
    eager = eager_twin(spec)
    return attribute_step(build_step(eager), torch.device(spec.device), eager_twin=eager != spec,
                          min_rounds=min_rounds, max_rounds=max_rounds, budget_s=budget_s)


def attribute_step(step: JointStep, device: torch.device, *, eager_twin: bool = False,
                   min_rounds: int = MIN_ROUNDS, max_rounds: int = MAX_ROUNDS,
                   budget_s: float = BUDGET_S) -> Attribution:
    """The attribution pass on ``step`` (which it advances)."""
    timeline = Timeline(device)
    boundaries = NetworkBoundaries(step, timeline)
    sync = synchronizer(device)
    timeline.reset()
    memory = survey_memory(boundaries)
    step.run()  # every later iteration as the timed ones: the optimizers' state exists
    sync()
    runs = {"step": lambda: _unbroken(step, timeline), "phases": lambda: _phases(step, timeline),
            "networks": boundaries.iteration}
    seen: dict[str, list] = {kind: [] for kind in KINDS}
    started, rounds = time.perf_counter(), 0
    while rounds < min_rounds or (rounds < max_rounds
                                  and time.perf_counter() - started < budget_s):
        for j in range(len(KINDS)):
            kind = KINDS[(rounds + j) % len(KINDS)]
            seen[kind].append(_timed(runs[kind], timeline, sync))
        rounds += 1
    return summarize(step, timeline, seen, memory, eager_twin)


def _timed(run: Callable[[], None], timeline: Timeline, sync: Callable[[], None]):
    """One iteration's segments, the collector paused as in the timed passes."""
    timeline.reset()
    enabled = gc.isenabled()
    gc.disable()
    try:
        run()
    finally:
        if enabled:
            gc.enable()
    sync()
    return timeline.segments(), timeline.stage_totals()


def _unbroken(step: JointStep, timeline: Timeline) -> None:
    timeline.begin("step")
    step.run()
    timeline.end()


def _phases(step: JointStep, timeline: Timeline) -> None:
    for phase, fn in step.phases():
        timeline.begin(phase)
        fn()
        timeline.end()


def summarize(step: JointStep, timeline: Timeline, seen: dict[str, list],
              memory: dict[str, NetworkMemory], eager_twin: bool) -> Attribution:
    phases = phase_names(step)
    networks = (*step.networks, OUTSIDE)
    clock = CUDA_EVENT if timeline.cuda else MPS_SYNC if timeline.mps_sync else PERF_COUNTER
    result = Attribution(clock=clock,
                         iterations=len(seen["networks"]), eager_twin=eager_twin,
                         memory=memory, networks=networks)
    steps = [total for _, (_, total) in seen["step"]]
    attributed = [total for _, (_, total) in seen["networks"]]
    result.step_ms, result.attributed_step_ms = map(statistics.median, (steps, attributed))
    result.overhead = paired_gap(attributed, steps)
    for p in phases:
        alone = [per.get(p, 0.0) for _, (per, _) in seen["phases"]]
        result.phase_ms[p] = statistics.median(alone)
        result.sum_gaps[p] = paired_gap([per.get(p, 0.0) for _, (per, _) in seen["networks"]],
                                        alone)
    elements = network_elements(step)
    per_iteration = [owned_by_network(segments, elements) for segments, _ in seen["networks"]]
    for phase in phases:
        for name in networks:
            result.times.append(network_time(name, phase, per_iteration))
    return result


def paired_gap(values: list[float], references: list[float]) -> float | None:
    """The median over rounds of each round's value over its reference, less 1 (None where
    a reference took no time)."""
    ratios = [v / r for v, r in zip(values, references) if r > 0]
    return statistics.median(ratios) - 1 if ratios else None


def owned_by_network(segments: dict, elements: dict[str, int]) -> dict:
    """One iteration's segments per (phase, network): [device ms, host ms, apportioned
    device ms, the owners a shared call covered]."""
    out: dict[tuple[str, str], list] = defaultdict(lambda: [0.0, 0.0, 0.0, ()])
    for (phase, owner), (device_ms, host_ms) in segments.items():
        if len(owner) == 1:
            entry = out[(phase, owner[0])]
            entry[0] += device_ms
            entry[1] += host_ms
            continue
        device_split = apportion(device_ms, owner, elements)
        host_split = apportion(host_ms, owner, elements)
        for name in owner:
            entry = out[(phase, name)]
            entry[0] += device_split[name]
            entry[1] += host_split[name]
            entry[2] += device_split[name]
            entry[3] = owner
    return out


def network_time(name: str, phase: str, per_iteration: list[dict]) -> NetworkTime:
    values = [it.get((phase, name), (0.0, 0.0, 0.0, ())) for it in per_iteration]
    shared = next((v[3] for v in values if v[3]), ())
    return NetworkTime(
        name, phase, statistics.median(v[0] for v in values),
        statistics.median(v[1] for v in values),
        apportioned_ms=statistics.median(v[2] for v in values),
        apportioned_by=APPORTIONED_BY.format(", ".join(shared)) if shared else "")
