"""``python -m bench.tools.noise_model RUN_DIR...``: how often the comparisons' verdicts are
wrong under this machine's noise, by simulation.

The noise model is fitted to runs of one sweep measured here back to back (the folders of
``python -m bench.tools.noise_check``, say). Per configuration and phase, the logarithm of a
run's median is

    log m[c, r] = mu[c] + s[r] + e[c, r]

with ``mu`` the configuration's level (its median over the runs), ``s`` the run's shift,
common to every configuration of the run (the median over configurations of their
deviations: a process on this machine runs at one of a few speed levels), and ``e`` what
is left, the configuration's own run-to-run noise. ``s`` is drawn from a normal law with the
spread of the fitted shifts; ``e`` is the configuration's own scale (the robust spread of
its residuals: a batch-1 forward is far noisier than a batch-128 step) times a value drawn
from every configuration's residuals divided by their scales (so the tails stay as heavy
as measured); and each unit's samples spread around its median as the measured samples did
(the configuration's robust spread of log samples).

Simulated runs are written as run folders and judged by the comparisons themselves:
``compare_runs`` for one run per side, ``compare_paired`` for paired rounds. Two rates come
out: false flags (verdicts of a change where nothing changed) per measurement, and the
share of slowed configurations found when a quarter of them is made 10% slower.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench.analyze.comparison import compare_runs, load_side
from bench.analyze.paired import compare_paired
from bench.analyze.reader import load_run
from bench.analyze.significance import IMPROVEMENT, REGRESSION
from bench.measure.stats import summarize
from bench.schema import OK, STEP
from bench.tools.synthetic import env_record, write_run

SLOWDOWN, SLOWED_SHARE = 1.10, 0.25
SAMPLES_PER_UNIT = 40
MAD_SCALE = 1.4826  # a normal law's sd over its median absolute deviation


@dataclass
class NoiseModel:
    rows: pd.DataFrame  # one measured row per configuration and phase: the shapes to copy
    level: pd.Series  # mu: log median per (config_id, phase)
    shift_sd: float  # spread of s, the runs' common shift
    scale: np.ndarray  # the robust spread of each (config_id, phase)'s residuals
    standardized: np.ndarray  # every residual over its configuration's scale, pooled
    sample_sd: pd.Series  # robust sd of log samples within a unit, per (config_id, phase)

    def describe(self) -> dict:
        z = self.standardized
        return {"configurations_x_phases": len(self.level), "shift_sd": self.shift_sd,
                "scale_quartiles": [float(q) for q in np.quantile(self.scale, [0.25, 0.5, 0.75])],
                "standardized_p99_abs": float(np.quantile(np.abs(z), 0.99)),
                "sample_sd_median": float(self.sample_sd.median())}


def fit(folders: list[Path]) -> NoiseModel:
    runs = [load_run(f) for f in folders]
    key = ["config_id", "phase"]
    logs = pd.concat([np.log(r.results[r.results["status"] == OK].set_index(key)["median_ms"])
                      .rename(i) for i, r in enumerate(runs)], axis=1).dropna()
    level = logs.median(axis=1)
    shifts = logs.sub(level, axis=0).median(axis=0)
    residuals = logs.sub(level, axis=0).sub(shifts, axis=1)
    scale = MAD_SCALE * residuals.abs().median(axis=1)
    scale = scale.clip(lower=scale[scale > 0].min())  # a configuration that never moved
    standardized = residuals.div(scale, axis=0).to_numpy().ravel()
    samples = runs[0].samples()
    spread = samples.assign(log=np.log(samples["device_ms"])).groupby(key)["log"].agg(
        lambda x: MAD_SCALE * np.median(np.abs(x - np.median(x))))
    rows = runs[0].results[runs[0].results["status"] == OK].set_index(key).loc[level.index]
    return NoiseModel(rows.reset_index(), level, float(shifts.std(ddof=1)), scale.to_numpy(),
                      standardized, spread.reindex(level.index).fillna(spread.median()))


def simulated_run(model: NoiseModel, folder: Path, run_id: str, rng: np.random.Generator,
                  slowed: set[str] = frozenset()) -> Path:
    """A run folder drawn from the model; configurations in ``slowed`` SLOWDOWN slower."""
    shift = rng.normal(0, model.shift_sd)
    noise = model.scale * rng.choice(model.standardized, size=len(model.level))
    rows, samples = [], {}
    for (row, mu, e, sd) in zip(model.rows.to_dict("records"), model.level, noise,
                                model.sample_sd):
        median = np.exp(mu + shift + e) * (SLOWDOWN if row["config_id"] in slowed else 1.0)
        values = median * np.exp(rng.normal(0, sd, SAMPLES_PER_UNIT))
        s = summarize(values.tolist())
        rows.append({**row, "run_id": run_id, "repeat": 1, "group": "", "median_ms": s.median,
                     "iqr_ms": s.iqr, "ci_low_ms": s.ci_low, "ci_high_ms": s.ci_high,
                     "n_samples": SAMPLES_PER_UNIT, "noisy": s.noisy})
        samples[(row["config_id"], row["phase"], 1)] = values.tolist()
    rows = [{k: ("" if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
            for r in rows]
    return write_run(folder, rows, samples, env_record(run_id))


def judged(table: pd.DataFrame, slowed: set[str]) -> tuple[int, int, int, int, int]:
    """(measurements unchanged, of them flagged, slowed configurations' steps, of them
    found as regressions, whether any was: the slowdown seen at all)."""
    changed = table["config"].isin(slowed)  # on the CPU a configuration's label is its id
    flagged = table["verdict"].isin([REGRESSION, IMPROVEMENT])
    steps = changed & (table["phase"] == STEP)
    found = int((steps & (table["verdict"] == REGRESSION)).sum())
    return (int((~changed).sum()), int((flagged & ~changed).sum()), int(steps.sum()), found,
            int(found > 0))


def trial_single(model: NoiseModel, root: Path, rng: np.random.Generator,
                 slowed: set[str]) -> tuple[int, ...]:
    a = simulated_run(model, root / "a", "a", rng)
    b = simulated_run(model, root / "b", "b", rng, slowed)
    return judged(compare_runs(load_side(str(a)), [load_side(str(b))]).tables[0], slowed)


def trial_paired(model: NoiseModel, root: Path, rng: np.random.Generator, slowed: set[str],
                 rounds: int) -> tuple[int, ...]:
    base = [load_run(simulated_run(model, root / f"a{i}", f"a{i}", rng)) for i in range(rounds)]
    cand = [load_run(simulated_run(model, root / f"b{i}", f"b{i}", rng, slowed))
            for i in range(rounds)]
    return judged(compare_paired(base, cand), slowed)


def simulate(model: NoiseModel, trials: int, rounds: int | None, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    configs = sorted(set(model.rows["config_id"]))
    totals = np.zeros(5, dtype=int)
    with tempfile.TemporaryDirectory() as tmp:
        for t in range(trials):
            root = Path(tmp) / f"t{t}"
            slowed = set(rng.choice(configs, size=max(1, round(SLOWED_SHARE * len(configs))),
                                    replace=False))
            for nothing in (True, False):  # an unchanged candidate, then a slowed one
                chosen = set() if nothing else slowed
                args = (model, root / ("same" if nothing else "slow"), rng, chosen)
                totals += (trial_single(*args) if rounds is None
                           else trial_paired(*args, rounds))
    unchanged, false_flags, slowed_steps, found, seen = totals.tolist()
    return {"trials": trials, "rounds": rounds, "unchanged_measurements": unchanged,
            "false_flags": false_flags, "false_flag_rate": false_flags / max(unchanged, 1),
            "slowed_steps": slowed_steps, "found": found,
            "detection_rate": found / max(slowed_steps, 1),
            "trials_with_the_slowdown_seen": seen / trials}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tools.noise_model",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders of one sweep")
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--rounds", type=int, nargs="*", default=[8, 16, 32],
                        help="paired rounds to simulate")
    parser.add_argument("--paired-trials", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    model = fit(args.runs)
    report = {"model": model.describe(), "fitted_on": [str(r) for r in args.runs]}
    print(f"noise model from {len(args.runs)} runs: {json.dumps(report['model'])}", flush=True)
    report["single"] = simulate(model, args.trials, None, args.seed)
    print(f"one run per side: {json.dumps(report['single'])}", flush=True)
    report["paired"] = []
    for rounds in args.rounds:
        result = simulate(model, args.paired_trials, rounds, args.seed + rounds)
        report["paired"].append(result)
        print(f"paired, {rounds} rounds: {json.dumps(result)}", flush=True)
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
