"""A profiler trace (Chrome trace JSON, ``bench/measure/tracing.py``) read back: its named
ranges, and the top operators of each network in each phase.

An operator belongs to the phase whose range ``phase:<name>`` its start falls in (stages
follow each other in time, whatever thread runs them), and to the network whose range
``network:<name>`` encloses its end on its own thread (a backward's ranges sit on the
autograd engine's thread); to ``(outside)`` where none does. The end, not the start: the
engine opens its own range around a node before the node's hook opens the network's. Its
self time is its duration less that of the operators it called (those it encloses on its
thread). A kernel belongs to the operator that launched it: the innermost operator
enclosing, on its thread, the runtime call with the kernel's correlation id. Pure Python:
reading a trace needs no torch.
"""

from __future__ import annotations

import bisect
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from bench.schema import OUTSIDE

PHASE_RANGE, NETWORK_RANGE = "phase:", "network:"
TOP_OPERATORS = 10
OPERATOR_CATEGORIES = ("cpu_op", "operator")
RANGE_CATEGORIES = ("user_annotation",)
LAUNCH_CATEGORIES = ("cuda_runtime", "cuda_driver", "runtime")
DEVICE_CATEGORIES = ("kernel", "gpu_memcpy", "gpu_memset")


@dataclass(frozen=True)
class Span:
    start: float  # microseconds, as the trace has them
    end: float
    name: str
    tid: object = None


def load_events(path: Path) -> list[dict]:
    """The events of a Chrome trace JSON file (an object with ``traceEvents``, or a list)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return data.get("traceEvents", []) if isinstance(data, dict) else data


def spans(events: list[dict], categories: tuple[str, ...], prefix: str = "") -> list[Span]:
    """Complete events (``ph: X``) of ``categories`` whose name starts with ``prefix``,
    sorted by start."""
    out = [Span(float(e["ts"]), float(e["ts"]) + float(e.get("dur", 0)), e.get("name", ""),
                e.get("tid"))
           for e in events if e.get("ph") == "X" and e.get("cat") in categories
           and e.get("name", "").startswith(prefix)]
    return sorted(out, key=lambda s: (s.start, -s.end))


def range_names(events: list[dict]) -> set[str]:
    """The names of the user ranges in a trace (``phase:...``, ``network:...``, ...)."""
    return {s.name for s in spans(events, RANGE_CATEGORIES)}


class Enclosing:
    """Finds the span that encloses a time, among spans that do not overlap (the stages,
    or one thread's network ranges, each closed before the next opens)."""

    def __init__(self, items: list[Span]):
        self.items = items
        self.starts = [s.start for s in items]

    def at(self, t: float) -> Span | None:
        i = bisect.bisect_right(self.starts, t) - 1  # the last to start by t: the only one
        return self.items[i] if i >= 0 and t <= self.items[i].end else None


def per_thread(items: list[Span]) -> dict[object, Enclosing]:
    grouped: dict[object, list[Span]] = defaultdict(list)
    for s in items:
        grouped[s.tid].append(s)
    return {tid: Enclosing(group) for tid, group in grouped.items()}


def self_times(operators: list[Span]) -> list[float]:
    """Each operator's duration less that of the operators it encloses on its thread."""
    own = [s.end - s.start for s in operators]
    stacks: dict[object, list[int]] = defaultdict(list)
    for i, op in enumerate(operators):
        stack = stacks[op.tid]
        while stack and operators[stack[-1]].end < op.end:
            stack.pop()
        if stack:
            own[stack[-1]] -= op.end - op.start
        stack.append(i)
    return own


def innermost(operators: list[Span]) -> dict[object, list[Span]]:
    """Per thread, operators in start order, to find the innermost enclosing one."""
    grouped: dict[object, list[Span]] = defaultdict(list)
    for op in operators:
        grouped[op.tid].append(op)
    return grouped


def launcher(ops: list[Span], starts: list[float], t: float) -> int | None:
    """Index in ``ops`` of the innermost (latest-starting) operator enclosing ``t``."""
    i = bisect.bisect_right(starts, t) - 1
    while i >= 0:
        if ops[i].end >= t:
            return i
        i -= 1
    return None


def device_time_by_operator(events: list[dict], operators: list[Span]) -> dict[int, float]:
    """Microseconds of device work per operator (its index in ``operators``)."""
    launches = {e.get("args", {}).get("correlation"): e for e in events
                if e.get("ph") == "X" and e.get("cat") in LAUNCH_CATEGORIES}
    index = {id(op): i for i, op in enumerate(operators)}
    threads = innermost(operators)
    starts = {tid: [op.start for op in ops] for tid, ops in threads.items()}
    out: dict[int, float] = defaultdict(float)
    for e in events:
        if e.get("ph") != "X" or e.get("cat") not in DEVICE_CATEGORIES:
            continue
        launch = launches.get(e.get("args", {}).get("correlation"))
        if launch is None or launch.get("tid") not in threads:
            continue
        ops = threads[launch["tid"]]
        j = launcher(ops, starts[launch["tid"]], float(launch["ts"]))
        if j is not None:
            out[index[id(ops[j])]] += float(e.get("dur", 0))
    return out


def operator_table(events: list[dict], steps: int,
                   top: int = TOP_OPERATORS) -> list[dict]:
    """The top ``top`` operators of each (phase, network), per iteration of ``steps``:
    rows of ``phase, network, rank, operator, calls, self_host_ms, device_ms`` (device_ms
    None where the trace has no device activity)."""
    operators = spans(events, OPERATOR_CATEGORIES)
    phases = Enclosing(spans(events, RANGE_CATEGORIES, PHASE_RANGE))
    networks = per_thread(spans(events, RANGE_CATEGORIES, NETWORK_RANGE))
    own, device = self_times(operators), device_time_by_operator(events, operators)
    has_device = any(e.get("cat") in DEVICE_CATEGORIES for e in events)
    totals: dict[tuple[str, str, str], list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    for i, op in enumerate(operators):
        phase = phases.at(op.start)
        if phase is None:
            continue
        net = networks[op.tid].at(op.end) if op.tid in networks else None
        key = (phase.name[len(PHASE_RANGE):],
               net.name[len(NETWORK_RANGE):] if net else OUTSIDE, op.name)
        entry = totals[key]
        entry[0] += 1
        entry[1] += own[i]
        entry[2] += device.get(i, 0.0)
    return ranked(totals, steps, top, has_device)


def ranked(totals: dict, steps: int, top: int, has_device: bool) -> list[dict]:
    grouped: dict[tuple[str, str], list] = defaultdict(list)
    for (phase, network, name), (calls, host_us, device_us) in totals.items():
        grouped[(phase, network)].append((name, calls, host_us, device_us))
    rows = []
    for (phase, network), ops in grouped.items():
        ops.sort(key=lambda o: (o[3], o[2]) if has_device else (o[2],), reverse=True)
        for rank, (name, calls, host_us, device_us) in enumerate(ops[:top], 1):
            rows.append({"phase": phase, "network": network, "rank": rank, "operator": name,
                         "calls": calls / steps, "self_host_ms": host_us / 1e3 / steps,
                         "device_ms": device_us / 1e3 / steps if has_device else None})
    return rows
