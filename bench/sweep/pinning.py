"""Which CPUs the processes of a paired round measure on.

The processes of a paired round take turns: one works at a time (``bench/sweep/turns.py``).
So they can share one CPU, and on this kind of machine they should: a process that the
scheduler moves between cores, or that starts on a core another process favours, runs at
a level of its own for its life, and that level is most of the noise between the two sides
of a round. Probes of fresh processes here (``python -m bench.selfcheck.spread_sources``,
results/reference/spread-sources-cpu/) put the spread between processes at 0.17 (log sd)
with one thread and 0.10-0.14 with that thread pinned to one core.

The coordinator names the CPUs, in order of preference; each process pins every thread it
has, once it is ready to measure (its imports done on whatever cores were free), to as
many of them as torch runs threads (one, the default sweep's). ``auto`` prefers, at the
start of each round, the CPU that was idlest over the quarter second before (``/proc/stat``),
the later one on a tie: a CPU another process keeps busy (another user's paired rounds,
pinned too) would halve the sides' speed, and the first CPU is where a machine's interrupts
and housekeeping usually land. Standard library only: the coordinator runs under the
bootstrap interpreter.
"""

from __future__ import annotations

import os
import sys
import time

AUTO, ALL = "auto", "all"
SAMPLE_S = 0.25  # how long ``auto`` watches the CPUs' use before choosing


def allowed_cpus() -> list[int]:
    """The CPUs this process may run on; empty where the system cannot say (not Linux)."""
    getter = getattr(os, "sched_getaffinity", None)
    return sorted(getter(0)) if getter else []


def choose_cpus(text: str) -> tuple[int, ...] | None:
    """``--cpus``: ``auto`` (this process's CPUs, the last first), ``all`` (no pinning:
    None) or a list of CPU numbers this process may use, e.g. ``3`` or ``2,3``. ``ValueError``
    with what is wrong and what is valid."""
    text = text.strip().lower()
    allowed = allowed_cpus()
    if text == ALL:
        return None
    if text == AUTO:
        before = cpu_times()
        time.sleep(SAMPLE_S if before else 0)
        return idlest_first(allowed, before, cpu_times()) or None
    try:
        cpus = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"{text!r}: expected {AUTO}, {ALL} or CPU numbers such as 3 or "
                         "2,3") from None
    if not allowed:
        raise ValueError(f"{text!r}: this system cannot pin processes to CPUs; give {ALL}")
    outside = [cpu for cpu in cpus if cpu not in allowed]
    if outside or len(set(cpus)) != len(cpus):
        what = f"{outside[0]} is not" if outside else "a CPU is given twice;"
        raise ValueError(f"{text!r}: {what} one of the CPUs this process may use "
                         f"({format_cpus(allowed)})")
    return cpus


def cpu_times(text: str | None = None) -> dict[int, tuple[int, int]]:
    """Per CPU, the clock ticks it spent busy and in all, from ``/proc/stat`` (or ``text``
    in its form); empty where there is none."""
    if text is None:
        try:
            with open("/proc/stat", encoding="ascii") as handle:
                text = handle.read()
        except OSError:
            return {}
    times = {}
    for line in text.splitlines():
        name, *fields = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and len(fields) >= 8:
            # user nice system idle iowait irq softirq steal: idle and iowait are not busy
            ticks = [int(f) for f in fields[:8]]
            times[int(name[3:])] = (sum(ticks) - ticks[3] - ticks[4], sum(ticks))
    return times


def idlest_first(allowed: list[int], before: dict[int, tuple[int, int]],
                 after: dict[int, tuple[int, int]]) -> tuple[int, ...]:
    """``allowed``, the CPU least busy between the two readings first, the later CPU first
    among equals; the last first where the readings say nothing."""
    def busy(cpu: int) -> float:
        if cpu not in before or cpu not in after:
            return 0.0
        total = after[cpu][1] - before[cpu][1]
        return (after[cpu][0] - before[cpu][0]) / total if total > 0 else 0.0
    return tuple(sorted(reversed(allowed), key=busy))  # sorted is stable: ties keep the order


def format_cpus(cpus: list[int] | tuple[int, ...]) -> str:
    return ",".join(str(cpu) for cpu in cpus)


def parse_cpus(text: str) -> tuple[int, ...]:
    """The CPUs as the turns variable carries them (``format_cpus``); ValueError else."""
    cpus = tuple(int(part) for part in text.split(",") if part)
    if not cpus or any(cpu < 0 for cpu in cpus):
        raise ValueError(text)
    return cpus


def pin_threads(cpus: tuple[int, ...]) -> list[int]:
    """Every thread of this process onto the first of ``cpus``, as many as torch runs
    threads (where it is imported; else one); the CPUs pinned to, or [] where the system
    cannot pin (then nothing changes)."""
    setter = getattr(os, "sched_setaffinity", None)
    if setter is None or not os.path.isdir("/proc/self/task"):
        return []
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch is not None else 1
    chosen = set(cpus[:max(1, threads)])
    # threads started later inherit the affinity of the one that starts them
    for tid in os.listdir("/proc/self/task"):
        try:
            setter(int(tid), chosen)
        except (OSError, ValueError):  # a thread that has exited since the listing
            pass
    return sorted(chosen) if os.sched_getaffinity(0) == chosen else []
