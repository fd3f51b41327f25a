"""The per-network attribution and the traces on a GPU, as ``make gpu-check`` checks them
(``bench/tools/gpu_check.py``):

1. known GPU work (``torch.cuda._sleep``) planted in one network's forward, backward or
   update, or in the loss, lands there, at least 90% of it, and nowhere else;
2. the real workloads' sweep at their published sizes (``workloads-check/``) has every
   configuration attributed, its networks adding up to each phase within 5% (the median
   over configurations and phases of |sum_gap|), with what the boundaries cost;
3. a profiler trace of one published-size workload (DCGAN) into ``traces/``, with a range
   for every network and phase and device time for each network in its operator table.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from bench.analyze.networks import attribution_checks, networks_of
from bench.analyze.reader import load_run, read_operators
from bench.analyze.trace_ops import load_events, range_names
from bench.schema import OK, OPERATORS_FILE, OUTSIDE
from bench.sweep.traces import trace_into
from bench.tools.planted_work import LANDS_IN, PLACES, cuda_cycles_per_ms, landed
from multinet import StepSpec, build_step

WORK_MS, LANDS, STRAYS = 20.0, 0.9, 0.1
SUM_BOUND = 0.05
TRACED = StepSpec("dcgan", 64, "cuda:0", size="published", optimizer_impl="foreach")

Check = Callable[[str, bool, str, list], None]


def check_planted(device: str, checks: list, check: Check) -> None:
    shares = landed(WORK_MS, device, cuda_cycles_per_ms(device))
    for place in PLACES:
        target = LANDS_IN[place]
        strays = max(abs(v) for k, v in shares[place].items() if k != target)
        check(f"planted GPU work in the {place}", shares[place][target] >= LANDS
              and strays <= STRAYS, f"{WORK_MS:g} ms: {shares[place][target]:.1%} in "
              f"{target[0]}'s {target[1]}, at most {strays:.1%} elsewhere", checks)


def check_attributed_sweep(folder: Path, checks: list, check: Check) -> None:
    run = load_run(folder)
    raw = run.networks()
    failed = 0 if raw is None else int((raw["status"] != OK).sum())
    table = networks_of([run])
    figures = attribution_checks(table)
    if figures is None:
        check("workloads attributed", False, f"no networks.csv rows in {folder}", checks)
        return
    check("workloads attributed", failed == 0 and figures.configurations ==
          run.results["config_id"].nunique(),
          f"{figures.configurations} configurations, {failed} failed; boundaries cost "
          f"{figures.overhead_median:+.1%} (median)", checks)
    check("networks add up to each phase", figures.gap_median <= SUM_BOUND,
          f"median |sum_gap| {figures.gap_median:.1%} over configurations and phases "
          f"(bound {SUM_BOUND:.0%}), at most {figures.gap_high:.1%}", checks)


def check_trace(spec: StepSpec, out_dir: Path, checks: list, check: Check) -> None:
    """``spec`` traced into ``out_dir``: every range there, and each network busy in the
    operator table (device time where the trace has any, else host time)."""
    path = next(trace_into(out_dir, [spec]))
    step = build_step(spec)
    wanted = ({f"network:{n}" for n in step.networks}
              | {f"phase:{p}" for p, _ in step.phases()})
    missing = wanted - range_names(load_events(path))
    operators = read_operators(out_dir / OPERATORS_FILE)
    mine = operators[operators["trace"].str.endswith(path.name)]
    column = "device_ms" if mine["device_ms"].notna().any() else "self_host_ms"
    busy = mine.groupby("network")[column].sum()
    idle = [n for n in step.networks if not busy.get(n, 0) > 0]
    check("trace of a published-size workload", not missing and not idle,
          f"{path}: {len(wanted) - len(missing)}/{len(wanted)} ranges; {column} per "
          "iteration " + ", ".join(f"{n} {busy.get(n, 0):.3g}"
                                   for n in (*step.networks, OUTSIDE)), checks)


def check_attribution(device: str, out_dir: Path, checks: list, check: Check) -> None:
    check_planted(device, checks, check)
    check_attributed_sweep(out_dir / "workloads-check", checks, check)
    check_trace(dataclasses.replace(TRACED, device=device), out_dir, checks, check)
