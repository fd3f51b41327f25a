"""``make gpu-check``'s check of the executions: networks on CUDA streams, and SAC's critics
stacked, against the same networks one after the other (``bench/sweeps/gpu-executions.toml``):
every configuration measured, each ratio to ``sequential`` given with its interval and
verdict whichever way it goes, and five steps of each execution ending where
``sequential``'s end, within the stated tolerance."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from bench.analyze.ratios import paired_ratios
from bench.analyze.reader import load_run
from bench.axes import DEVICE, EXECUTION, SCENARIO, SIZE
from bench.schema import OK, STEP
from bench.sweep.config import SWEEPS_DIR, load_sweep
from bench.sweep.loop import run_sweep
from multinet.verify import execution_equivalence

EXECUTIONS_SWEEP = SWEEPS_DIR / "gpu-executions.toml"
# The execution whose ratio to `sequential` each of these scenarios must have in the sweep;
# then where each execution is checked for where it ends: (scenario, size, networks, execution).
TIMED = ("streams", ("shared_input", "clip", "sac"))
EXECUTION_ENDS = (("shared_input", "seed", 2, "streams"), ("clip", "tiny", 2, "streams"),
                  ("sac", "tiny", 2, "streams"), ("sac", "tiny-redq", 2, "streams"),
                  ("n_ensemble", "seed", 8, "stacked"), ("sac", "tiny-redq", 2, "stacked"))


def execution_ratios(folder: Path) -> pd.DataFrame:
    """The step's ratio of each execution to `sequential`, as the run paired them."""
    ratios = paired_ratios(load_run(folder))
    return ratios[(ratios["phase"] == STEP) & (ratios["compared"] == EXECUTION.name)]


def execution_checks(device: str, folder: Path) -> list[tuple[str, bool, str]]:
    """Each check's name, whether it passed and what it found; ``folder`` exists, empty of
    run files."""
    config = load_sweep(EXECUTIONS_SWEEP, {DEVICE.sweep_key: [device]})
    started = time.time()
    rows = run_sweep(config, folder, argv=["gpu-check", "executions"],
                     progress=False).read().results
    ok = rows[rows["status"] == OK]
    measured = ("executions measured", len(ok) == len(rows) > 0,
                f"{len(ok)}/{len(rows)} rows ok, {time.time() - started:.0f} s, in {folder}")
    ratios = execution_ratios(folder)
    execution, scenarios = TIMED
    found = set(ratios.loc[ratios["value"] == execution, SCENARIO.name])
    timed = (f"{execution} against sequential", found == set(scenarios), "; ".join(
        f"{r[SCENARIO.name]} {r[SIZE.name]} {r['value']}: {r['ratio']:.3f} "
        f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}] {r['verdict']}"
        for _, r in ratios.iterrows()) or "no ratio")
    ends = [r for scenario, size, n, execution in EXECUTION_ENDS
            for r in execution_equivalence(scenario, execution, optimizer_impl="foreach",
                                           setups=("separate",), device=device, size=size,
                                           n_networks=n)]
    ended = ("executions end where sequential ends", all(r.ok for r in ends), "; ".join(
        f"{r.scenario} {r.execution}: " + ("identical" if r.bitwise else
                                          f"rel diff {r.max_rel_diff:.1e}")
        for r in ends) + f" ({ends[0].tolerance} where not identical)")
    return [measured, timed, ended]
