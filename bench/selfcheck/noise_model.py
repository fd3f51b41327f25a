"""``python -m bench.selfcheck.noise_model RUN_DIR...``: how often the comparisons' verdicts are
wrong under this machine's noise, by simulation.

The noise model is fitted to runs of one sweep measured here back to back (the folders of
``python -m bench.selfcheck.noise_check``, say). Per configuration c, phase p and run r, the
logarithm of the run's median is

    log m[c, p, r] = mu[c, p] + s[r] + e[c, p, r]

with ``mu`` the measurement's level (its median over the runs), ``s`` the run's shift,
common to every measurement of the run (the median over them of their deviations: a
process on this machine runs at one of a few speed levels), and ``e`` what is left. ``e``
is not one value per measurement: it belongs to the *time window* in which the
configuration's comparison group was timed. The members of a group are timed together,
round-robin, so a few slow seconds move all of them and all their phases alike: in eleven
runs of the default sweep here, 92-97% of the variance of ``e`` (by phase) is the group's
mean, and a group's phases move together (step against forward, correlation 0.9).

So a simulated run is a block bootstrap of the measured ones, by comparison group (a
configuration timed alone is its own group): each group takes its whole block of ``e``,
every member and every phase, from one measured run drawn at random, which keeps the
members' and the phases' agreement and tails exactly as heavy as measured (a few seconds
at half speed read as a group 2x slow). The two runs of a comparison draw different
measured runs for each group: two real runs never coincide, and a group drawn from the same
run on both sides would agree to the last digit. ``s`` is normal with the spread of the
fitted shifts; the comparison removes it anyway. What the blocks do not keep is the order
in which the groups ran: groups measured one after the other are alike only weakly here
(``neighbour_correlation``, per phase, of the groups' mean ``e`` in measured order).

Each unit's samples spread around its median as the measured samples did (the
configuration's robust spread of log samples), centred so that the unit's median is the
one drawn: the fitted ``e`` holds the samples' own noise already.

Simulated runs are written as run folders and judged by the comparisons themselves:
``compare_runs`` for one run per side, ``compare_paired`` for paired rounds. Two rates come
out: false flags (verdicts of a change where nothing changed) per measurement, and the
share of slowed configurations found when a quarter of them is made 10% slower. False
flags come in clusters (a slow group flags its members, every phase), so their 95% upper
bound is the Clopper-Pearson bound on the share of comparisons that flag anything, times
the mean number of false flags in those, per unchanged measurement of a comparison.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench.analyze.run_comparison import compare_runs, load_side
from bench.analyze.paired_rounds import compare_paired
from bench.analyze.reader import load_run
from bench.analyze.judge import IMPROVEMENT, REGRESSION
from bench.measure.stats import summarize
from bench.schema import OK, STEP
from tests.support.synthetic import env_record, write_run

SLOWDOWN, SLOWED_SHARE = 1.10, 0.25
# odd, so that a unit's median is one of its samples: exactly the median drawn
SAMPLES_PER_UNIT = 41
MAD_SCALE = 1.4826  # a normal law's sd over its median absolute deviation
KEY = ["config_id", "phase"]


@dataclass
class NoiseModel:
    rows: pd.DataFrame  # one measured row per configuration and phase: the shapes to copy
    level: pd.Series  # mu: log median per (config_id, phase), in the order of ``rows``
    shift_sd: float  # spread of s, the runs' common shift
    group: np.ndarray  # per row, the index of its comparison group (its block)
    residuals: np.ndarray  # rows x measured runs: e
    sample_sd: pd.Series  # robust sd of log samples within a unit, per row
    neighbours: dict  # per phase: correlation of the groups' mean e with the next group's

    def describe(self) -> dict:
        phase = self.rows["phase"].to_numpy()
        share, spread = {}, {}
        for p in dict.fromkeys(phase):
            mine = phase == p
            e = self.residuals[mine]
            means = pd.DataFrame(e).groupby(self.group[mine]).transform("mean").to_numpy()
            share[p] = float(1 - (e - means).var() / e.var())
            spread[p] = float(MAD_SCALE * np.median(np.abs(e)))
        return {"configurations_x_phases": len(self.level),
                "groups": int(self.group.max() + 1), "runs": self.residuals.shape[1],
                "shift_sd": self.shift_sd, "residual_sd_by_phase": spread,
                "group_share_of_variance": share, "neighbour_correlation": self.neighbours,
                "sample_sd_median": float(self.sample_sd.median())}


def group_of(rows: pd.DataFrame) -> pd.Series:
    """A row's comparison group, else its configuration timed alone: its time window."""
    group = rows["group"].fillna("").astype(str)
    return group.where(group != "", rows["config_id"])


def neighbour_correlation(measured: list[pd.DataFrame], residuals: pd.DataFrame) -> dict:
    """Per phase, the correlation of each group's mean e with that of the group measured
    next in the same run (results.csv lists the groups in the order they ran)."""
    out = {}
    for p in dict.fromkeys(residuals.index.get_level_values("phase")):
        now, after = [], []
        for i, m in enumerate(measured):
            rows = m[m["phase"] == p]
            e = residuals[i].xs(p, level="phase").reindex(rows["config_id"]).to_numpy()
            means = pd.Series(e).groupby(group_of(rows).to_numpy(), sort=False).mean().dropna()
            now += list(means.to_numpy()[:-1])
            after += list(means.to_numpy()[1:])
        out[p] = float(np.corrcoef(now, after)[0, 1]) if len(now) > 2 else float("nan")
    return out


def fit(folders: list[Path]) -> NoiseModel:
    runs = [load_run(f) for f in folders]
    measured = [r.results[r.results["status"] == OK] for r in runs]
    logs = pd.concat([np.log(m.set_index(KEY)["median_ms"]).rename(i)
                      for i, m in enumerate(measured)], axis=1).dropna()
    level = logs.median(axis=1)
    shifts = logs.sub(level, axis=0).median(axis=0)
    residuals = logs.sub(level, axis=0).sub(shifts, axis=1)
    rows = measured[0].set_index(KEY).loc[level.index].reset_index()
    group = pd.factorize(group_of(rows))[0]
    samples = runs[0].samples()
    spread = samples.assign(log=np.log(samples["device_ms"])).groupby(KEY)["log"].agg(
        lambda x: MAD_SCALE * np.median(np.abs(x - np.median(x))))
    spread = spread.reindex(level.index)
    return NoiseModel(rows, level, float(shifts.std(ddof=1)), group, residuals.to_numpy(),
                      spread.fillna(spread.median()),
                      neighbour_correlation(measured, residuals))


def paired_draws(model: NoiseModel, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """For the two runs of a comparison, per group, the measured run whose block it takes:
    never the same one on both sides."""
    runs, groups = model.residuals.shape[1], int(model.group.max() + 1)
    first = rng.integers(runs, size=groups)
    return first, (first + rng.integers(1, runs, size=groups)) % runs


def simulated_run(model: NoiseModel, folder: Path, run_id: str, rng: np.random.Generator,
                  draws: np.ndarray, slowed: set[str] = frozenset()) -> Path:
    """A run folder drawn from the model, group g's block from measured run ``draws[g]``;
    configurations in ``slowed`` SLOWDOWN slower."""
    e = model.residuals[np.arange(len(model.group)), draws[model.group]]
    medians = np.exp(model.level.to_numpy() + rng.normal(0, model.shift_sd) + e)
    rows, samples = [], {}
    for row, median, sd in zip(model.rows.to_dict("records"), medians, model.sample_sd):
        median *= SLOWDOWN if row["config_id"] in slowed else 1.0
        noise = rng.normal(0, sd, SAMPLES_PER_UNIT)
        values = median * np.exp(noise - np.median(noise))
        s = summarize(values.tolist())
        rows.append({**row, "run_id": run_id, "repeat": 1, "median_ms": s.median,
                     "iqr_ms": s.iqr, "ci_low_ms": s.ci_low, "ci_high_ms": s.ci_high,
                     "n_samples": SAMPLES_PER_UNIT, "noisy": s.noisy})
        samples[(row["config_id"], row["phase"], 1)] = values.tolist()
    rows = [{k: ("" if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
            for r in rows]
    return write_run(folder, rows, samples, env_record(run_id))


def judged(table: pd.DataFrame, slowed: set[str]) -> tuple[int, ...]:
    """(measurements unchanged, of them flagged, slowed configurations' steps, of them
    found as regressions, whether any was: the slowdown seen at all, whether any unchanged
    measurement was flagged)."""
    changed = table["config"].isin(slowed)  # on the CPU a configuration's label is its id
    flagged = table["verdict"].isin([REGRESSION, IMPROVEMENT])
    steps = changed & (table["phase"] == STEP)
    found = int((steps & (table["verdict"] == REGRESSION)).sum())
    false_flags = int((flagged & ~changed).sum())
    return (int((~changed).sum()), false_flags, int(steps.sum()), found, int(found > 0),
            int(false_flags > 0))


def trial_single(model: NoiseModel, root: Path, rng: np.random.Generator,
                 slowed: set[str]) -> tuple[int, ...]:
    draws = paired_draws(model, rng)
    a = simulated_run(model, root / "a", "a", rng, draws[0])
    b = simulated_run(model, root / "b", "b", rng, draws[1], slowed)
    return judged(compare_runs(load_side(str(a)), [load_side(str(b))]).tables[0], slowed)


def trial_paired(model: NoiseModel, root: Path, rng: np.random.Generator, slowed: set[str],
                 rounds: int) -> tuple[int, ...]:
    base, cand = [], []
    for i in range(rounds):  # the two sides of a round, like two runs, never coincide
        draws = paired_draws(model, rng)
        base.append(load_run(simulated_run(model, root / f"a{i}", f"a{i}", rng, draws[0])))
        cand.append(load_run(simulated_run(model, root / f"b{i}", f"b{i}", rng, draws[1],
                                           slowed)))
    return judged(compare_paired(base, cand), slowed)


def binomial_upper(k: int, n: int, confidence: float = 0.95) -> float:
    """Clopper-Pearson: the largest share p whose binomial(n, p) gives k or fewer with
    probability 1 - confidence or more (one-sided), by bisection."""
    def at_most_k(p: float) -> float:  # 0 < p < 1 throughout the bisection
        return sum(math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
                            + i * math.log(p) + (n - i) * math.log1p(-p)) for i in range(k + 1))
    low, high = k / n, 1.0
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if at_most_k(middle) > 1 - confidence else (low, middle)
    return high


def simulate(model: NoiseModel, trials: int, rounds: int | None, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    configs = sorted(set(model.rows["config_id"]))
    totals = np.zeros(6, dtype=int)
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
    unchanged, false_flags, slowed_steps, found, seen, flagging = totals.tolist()
    comparisons = 2 * trials
    # false flags come in clusters: bound how often a comparison flags anything, and count
    # a cluster at its mean size (the whole comparison where none was seen)
    cluster = false_flags / flagging if flagging else unchanged / max(comparisons, 1)
    upper = binomial_upper(flagging, comparisons) * cluster * comparisons / max(unchanged, 1)
    return {"trials": trials, "rounds": rounds, "unchanged_measurements": unchanged,
            "false_flags": false_flags, "false_flag_rate": false_flags / max(unchanged, 1),
            "comparisons": comparisons, "comparisons_with_false_flags": flagging,
            "false_flag_rate_upper_95": upper,
            "slowed_steps": slowed_steps, "found": found,
            "detection_rate": found / max(slowed_steps, 1),
            "trials_with_the_slowdown_seen": seen / trials}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.selfcheck.noise_model",
                                     description=" ".join(__doc__.split("\n\n")[0].split()))
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
