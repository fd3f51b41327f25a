"""``python -m bench.tools.paired_noise ROUNDS_DIR``: how often paired comparisons are wrong
under this machine's noise, and how many rounds find a 10% slowdown, by simulation.

The model is fitted to an A/A measurement: the same environment twice, in paired rounds
(``python -m bench.tools.paired --env a=PY --env b=PY``), so every difference between a
round's two sides is noise. Per measurement key k (configuration and phase) and round i,
the log-ratio of the sides' medians is

    log(b / a)[k, i] = s[i, phase] + d[k, i]

with ``s`` the round's shift, common to its measurements (per phase, the median over them:
the level each process happened to run at), and ``d`` the key's departure from it. A
simulated round takes its shifts from one of the measured rounds drawn at random (every
phase's together), and each key's departure as the key's own scale (the robust spread of
its measured departures: a batch-1 forward is noisier than a batch-128 step) times a value
drawn from every key's departures over their scales, pooled, so the tails stay as heavy as
measured. (Drawing whole measured rounds instead would repeat each of a few rounds many
times over, and a rank test reads repeated values as agreement.)

Simulated rounds are written as run folders and judged by ``compare_paired`` itself, at
each number of rounds asked for: false flags (a change called where none was made) per
unchanged measurement, and the share of slowed configurations' steps found when a quarter
of the configurations is made 10% slower (per configuration, and per trial: any found).
The default number of rounds of ``bench/tools/paired.py`` is the fewest that finds at
least 90% of the slowed configurations with at most one false flag per 1,000.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pandas as pd

from bench.analyze.comparison import KEY, SLOT, device_slot
from bench.analyze.paired import compare_paired
from bench.analyze.reader import Run, load_run
from bench.analyze.significance import IMPROVEMENT, REGRESSION
from bench.commands.paired import rounds_in
from bench.measure.stats import summarize
from bench.schema import OK, STEP
from bench.tools.synthetic import env_record, write_run

SLOWDOWN, SLOWED_SHARE = 1.10, 0.25
MAD_SCALE = 1.4826  # a normal law's sd over its median absolute deviation
# Samples written per simulated unit: symmetric normal quantiles (an odd count: the middle
# one is 0), so a unit's median is exactly the one drawn; the fitted departures hold the
# samples' own noise already. Their spread is immaterial: the test sees unit medians.
QUANTILES = np.array([NormalDist().inv_cdf((i + 0.5) / 41) for i in range(41)])
SAMPLE_SD = 0.05


@dataclass
class PairedNoise:
    keys: pd.MultiIndex  # (KEY...) of every key measured in every round
    level: np.ndarray  # the baseline's median per key, over the rounds (ms)
    shifts: np.ndarray  # rounds x keys: each measured round's shift, per key's phase
    departures: np.ndarray  # rounds x keys: each key's departures, centred on their median
    scale: np.ndarray  # per key: the robust spread of its departures
    standardized: np.ndarray  # every departure over its key's scale, pooled
    rows: pd.DataFrame  # one measured results row per key: the shapes to copy

    def describe(self) -> dict:
        step = self.keys.get_level_values("phase") == STEP
        return {"keys": len(self.keys), "rounds": int(self.shifts.shape[0]),
                "step_shift_sd": float(np.std(self.shifts[:, step][:, 0], ddof=1)),
                "scale_quartiles": [float(q) for q in np.quantile(self.scale, [.25, .5, .75])],
                "step_scale_median": float(np.median(self.scale[step])),
                "standardized_p99_abs": float(np.quantile(np.abs(self.standardized), 0.99)),
                "departures_over_20pct": float(np.mean(np.abs(self.departures) > 0.2))}


def fit(folder: Path) -> PairedNoise:
    """The model from ``folder``'s two environments' rounds (the first, by name, is A)."""
    sides = sorted(p for p in folder.iterdir() if p.is_dir() and any(p.glob("round-*")))
    if len(sides) != 2:
        raise SystemExit(f"error: {folder} must hold two environments' rounds, found "
                         f"{[p.name for p in sides]}")
    a_rounds, b_rounds = (rounds_in(side, None) for side in sides)
    n = min(len(a_rounds), len(b_rounds))
    a = pd.concat([round_levels(r) for r in a_rounds[:n]], axis=1)
    b = pd.concat([round_levels(r) for r in b_rounds[:n]], axis=1)
    a.columns = b.columns = range(n)
    logs = np.log(b / a).dropna()
    shifts = logs.groupby(logs.index.get_level_values("phase")).transform("median")
    departures = logs - shifts
    departures = departures.sub(departures.median(axis=1), axis=0)
    scale = MAD_SCALE * departures.abs().median(axis=1)
    scale = scale.clip(lower=scale[scale > 0].min())  # a key that never moved
    rows = a_rounds[0].results
    return PairedNoise(logs.index, a.loc[logs.index].median(axis=1).to_numpy(),
                       shifts.to_numpy().T, departures.to_numpy().T, scale.to_numpy(),
                       departures.div(scale, axis=0).to_numpy().ravel(),
                       template(rows[rows["status"] == OK], logs.index))


def round_levels(run: Run) -> pd.Series:
    """Per key, the run's median from results.csv (its samples' median, as the runner wrote
    it): the rounds can be kept without their samples."""
    rows = run.results[run.results["status"] == OK].copy()
    rows[SLOT] = device_slot(rows)
    return rows.groupby(list(KEY), sort=False, dropna=False)["median_ms"].median()


def template(rows: pd.DataFrame, keys: pd.MultiIndex) -> pd.DataFrame:
    """One measured results row per key, in the keys' order, matched on the columns they
    share (every KEY column but the device's slot, which rows name by device)."""
    names = [n for n in keys.names if n in rows.columns]
    merged = keys.to_frame(index=False)[names].merge(rows, on=names, how="left")
    return merged.drop_duplicates(subset=names)


def simulated_round(model: PairedNoise, folder: Path, run_id: str, log_ms: np.ndarray) -> Path:
    rows, samples = [], {}
    for row, value in zip(model.rows.to_dict("records"), log_ms):
        values = np.exp(value + SAMPLE_SD * QUANTILES)
        s = summarize(values.tolist())
        rows.append({**row, "run_id": run_id, "repeat": 1, "group": "", "median_ms": s.median,
                     "iqr_ms": s.iqr, "ci_low_ms": s.ci_low, "ci_high_ms": s.ci_high,
                     "n_samples": len(values), "noisy": s.noisy})
        samples[(row["config_id"], row["phase"], 1)] = values.tolist()
    rows = [{k: ("" if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
            for r in rows]
    return write_run(folder, rows, samples, env_record(run_id))


def trial(model: PairedNoise, root: Path, rng: np.random.Generator, rounds: int,
          slowed: set[str]) -> np.ndarray:
    """(unchanged measurements, of them flagged, slowed steps, of them found, any found,
    common shift flagged) of one comparison of ``rounds`` simulated rounds."""
    configs = model.rows["config_id"].to_numpy()
    slow = np.log(SLOWDOWN) * np.isin(configs, list(slowed))
    base = np.log(model.level)
    a_runs, b_runs = [], []
    for i in range(rounds):
        shift = model.shifts[rng.integers(len(model.shifts))]
        departure = model.scale * rng.choice(model.standardized, size=len(model.scale))
        a_runs.append(load_run(simulated_round(model, root / f"a{i}", f"a{i}", base)))
        b_runs.append(load_run(simulated_round(model, root / f"b{i}", f"b{i}",
                                               base + shift + departure + slow)))
    table = compare_paired(a_runs, b_runs)
    changed = table["config"].isin(slowed)  # on the CPU a configuration's label is its id
    flagged = table["verdict"].isin([REGRESSION, IMPROVEMENT])
    steps = changed & (table["phase"] == STEP)
    found = int((steps & (table["verdict"] == REGRESSION)).sum())
    shift_flagged = (table.attrs["common_shift"] or {}).get("verdict") in (REGRESSION,
                                                                          IMPROVEMENT)
    return np.array([(~changed).sum(), (flagged & ~changed).sum(), steps.sum(), found,
                     found > 0, shift_flagged and not slowed], dtype=int)


def simulate(model: PairedNoise, trials: int, rounds: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    configs = sorted(set(model.rows["config_id"]))
    totals = np.zeros(6, dtype=int)
    with tempfile.TemporaryDirectory() as tmp:
        for t in range(trials):
            slowed = set(rng.choice(configs, size=max(1, round(SLOWED_SHARE * len(configs))),
                                    replace=False))
            for nothing in (True, False):  # an unchanged candidate, then a slowed one
                root = Path(tmp) / f"t{t}-{'same' if nothing else 'slow'}"
                totals += trial(model, root, rng, rounds, set() if nothing else slowed)
    unchanged, false_flags, steps, found, seen, shift_flags = totals.tolist()
    return {"rounds": rounds, "trials": trials, "unchanged_measurements": unchanged,
            "false_flags": false_flags, "false_flag_rate": false_flags / max(unchanged, 1),
            "common_shift_false_flags": shift_flags, "slowed_steps": steps, "found": found,
            "detection_rate": found / max(steps, 1), "trials_with_the_slowdown_seen":
            seen / trials}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tools.paired_noise",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("rounds_dir", type=Path,
                        help="an A/A paired measurement: two environments' round-* folders")
    parser.add_argument("--rounds", type=int, nargs="+", default=[4, 6, 8, 12])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    model = fit(args.rounds_dir)
    report = {"model": model.describe(), "fitted_on": str(args.rounds_dir), "paired": []}
    print(f"paired noise model: {json.dumps(report['model'])}", flush=True)
    for rounds in args.rounds:
        result = simulate(model, args.trials, rounds, args.seed + rounds)
        report["paired"].append(result)
        print(f"{rounds} rounds: {json.dumps(result)}", flush=True)
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
