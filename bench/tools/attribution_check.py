"""The attribution pass's own figures for a run folder: whether every network of every
scenario has its rows, how closely each phase's networks add up to the phase, and what the
boundaries cost.

    python -m bench attribution-check RUN_DIR [--bound 0.05]

Exits 1 when a configuration lacks a network or a phase, when an attribution failed, or
when the median over configurations and phases of |sum_gap| is over ``--bound``.
"""

from __future__ import annotations

import sys

import pandas as pd

from bench.analyze.networks import attribution_checks, networks_of
from bench.analyze.reader import load_run
from bench.axes import N_NETWORKS, SCENARIO, SIZE
from bench.cli import OneLineParser, user_path
from bench.errors import UsageError
from bench.schema import OK, OUTSIDE
from multinet import StepSpec, build_step
from multinet.step import TARGET, PHASES

SUM_BOUND = 0.05


def expected_rows(scenario: str, size: str, n_networks: int) -> set[tuple[str, str]]:
    """(network, phase) pairs a configuration of ``scenario`` must have."""
    step = build_step(StepSpec(scenario, 1, size=size, n_networks=n_networks))
    phases = (*PHASES, TARGET) if step.scenario.has_target_update else PHASES
    return {(n, p) for n in (*step.networks, OUTSIDE) for p in phases}


def missing_rows(table: pd.DataFrame) -> list[str]:
    """Configurations lacking a (network, phase) their scenario has."""
    problems, expected = [], {}
    for config, rows in table.groupby("config_id", sort=False):
        first = rows.iloc[0]
        key = (first[SCENARIO.name], first[SIZE.name], int(first[N_NETWORKS.name]))
        if key not in expected:
            expected[key] = expected_rows(*key)
        lacking = expected[key] - set(zip(rows["network"], rows["phase"]))
        if lacking:
            problems.append(f"{config}: no row for {sorted(lacking)}")
    return problems


def gap_by_phase(table: pd.DataFrame) -> dict[str, float]:
    per_phase = table.drop_duplicates(["run", "config_id", "phase"])
    return {phase: float(rows["sum_gap"].abs().median())
            for phase, rows in per_phase.groupby("phase", sort=False)}


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m bench attribution-check",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=user_path)
    parser.add_argument("--bound", type=float, default=SUM_BOUND,
                        help="the median |sum_gap| allowed (default %(default)s)")
    args = parser.parse_args(argv)
    try:
        run = load_run(args.run)
        raw = run.networks()
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if raw is None:
        print(f"error: {args.run} has no networks.csv", file=sys.stderr)
        return 2
    failed = raw[raw["status"] != OK]
    table = networks_of([run])
    checks = attribution_checks(table)
    if checks is None:
        print(f"error: {args.run} has no network attribution rows: it was measured with "
              "--attribution-s 0 (as paired rounds' sweeps are); measure it with more",
              file=sys.stderr)
        return 2
    problems = missing_rows(table) + [f"{c}: {e}" for c, e in zip(failed["config_id"],
                                                                   failed["error"])]
    scenarios = ", ".join(f"{s} ({', '.join(dict.fromkeys(rows['network']))})"
                          for s, rows in table.groupby(SCENARIO.name, sort=False))
    print(f"{checks.configurations} configurations attributed, {len(failed)} failed; "
          f"networks: {scenarios}")
    print(f"every network and phase of every configuration: "
          f"{'yes' if not problems else 'NO'}")
    for problem in problems:
        print(f"  {problem}")
    print(f"networks' medians against each phase's: median |sum_gap| {checks.gap_median:.1%} "
          f"over configurations and phases (bound {args.bound:.0%}), at most "
          f"{checks.gap_high:.1%}; per phase "
          + ", ".join(f"{p} {g:.1%}" for p, g in gap_by_phase(table).items()))
    print(f"overhead of the boundaries against the unbroken step: median "
          f"{checks.overhead_median:+.1%} (from {checks.overhead_low:+.1%} to "
          f"{checks.overhead_high:+.1%})")
    print(f"apportioned (one optimizer call over several networks): {checks.apportioned} "
          f"configurations; attributed on an eager twin: {checks.eager_twins}")
    return 1 if problems or checks.gap_median > args.bound else 0


if __name__ == "__main__":
    raise SystemExit(main())
