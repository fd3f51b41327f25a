"""``python -m bench.selfcheck.paired_noise ROUNDS_DIR``: the noise of paired rounds on this
machine, as a model to simulate comparisons under (``bench/selfcheck/sequential_noise.py``).

The model is fitted to an A/A measurement: the same environment twice, in paired rounds
(``python -m bench paired-rounds --env a=PY --env b=PY --every-round``), so every difference
between a round's two sides is noise. Per measurement key k (configuration and phase) and
round i, the log-ratio of the sides' medians is

    log(b / a)[k, i] = s[i, phase] + c[cell(k), i] + r[k, i]

with ``s`` the round's shift, common to its measurements (per phase, the median over them:
the level each process happened to run at); ``c`` the effect shared by a comparison
group's members in one phase (its cell: they are timed together, and a process that reads
a group 30% off reads all its members so); ``r`` what is left to the key. A simulated round
takes its shifts from one of the measured rounds drawn at random (every phase's together),
each cell's effect as the cell's own scale (the robust spread of its measured effects)
times a value drawn from every cell's effects over their scales, pooled, and each key's
rest the same way from the keys', so the tails stay as heavy as measured. (Drawing whole
measured rounds instead would repeat each of a few rounds many times over.)
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench.analyze.paired_rounds import round_medians
from bench.analyze.reader import Run
from bench.cli import OneLineParser
from bench.commands.paired import rounds_in
from bench.errors import UsageError
from bench.schema import OK, STEP

SLOWDOWN, SLOWED_SHARE = 1.10, 0.25
MAD_SCALE = 1.4826  # a normal law's sd over its median absolute deviation


@dataclass
class PairedNoise:
    keys: pd.MultiIndex  # (KEY...) of every key measured in every round
    config: np.ndarray  # per key: its configuration
    shifts: np.ndarray  # rounds x keys: each measured round's shift, per key's phase
    departures: np.ndarray  # rounds x keys: each key's log-ratio less the shift, centred
    cell: np.ndarray  # per key: the index of its comparison group and phase
    cell_scale: np.ndarray  # per cell: the robust spread of its effects over the rounds
    cell_standardized: np.ndarray  # every cell's effects over its scale, pooled
    key_scale: np.ndarray  # per key: the robust spread of what its cell leaves
    key_standardized: np.ndarray  # those rests over their key's scale, pooled

    @property
    def phase(self) -> np.ndarray:
        return self.keys.get_level_values("phase").to_numpy()

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        """One simulated round's log(b / a), per key."""
        shift = self.shifts[rng.integers(len(self.shifts))]
        cells = self.cell_scale * rng.choice(self.cell_standardized, size=len(self.cell_scale))
        rest = self.key_scale * rng.choice(self.key_standardized, size=len(self.key_scale))
        return shift + cells[self.cell] + rest

    def describe(self) -> dict:
        step = self.phase == STEP
        total = MAD_SCALE * np.median(np.abs(self.departures), axis=0)
        cells = self.departures_by_cell()
        return {"keys": len(self.keys), "cells": len(self.cell_scale),
                "rounds": int(self.shifts.shape[0]),
                "step_shift_sd": float(np.std(self.shifts[:, step][:, 0], ddof=1)),
                "departure_scale_quartiles": _quartiles(total),
                "cell_scale_quartiles": _quartiles(self.cell_scale),
                "key_scale_quartiles": _quartiles(self.key_scale),
                "cell_share_of_variance": float(cells.var() / self.departures.var()),
                "departures_over_20pct": float(np.mean(np.abs(self.departures) > 0.2))}

    def departures_by_cell(self) -> np.ndarray:
        """rounds x keys: each key's cell's mean departure in the round."""
        means = np.stack([self.departures[:, self.cell == c].mean(axis=1)
                          for c in range(len(self.cell_scale))], axis=1)
        return means[:, self.cell]


def _quartiles(values: np.ndarray) -> list[float]:
    return [float(q) for q in np.quantile(values, [0.25, 0.5, 0.75])]


def _scale(values: np.ndarray) -> np.ndarray:
    """Per column, MAD_SCALE x the median absolute value (the values are centred)."""
    return MAD_SCALE * np.median(np.abs(values), axis=0)


def _floored(scale: np.ndarray) -> np.ndarray:
    """``scale`` with a column that never moved given the smallest scale that did (1e-6
    where none did): a value over its scale must stay finite."""
    moved = scale[scale > 0]
    return np.maximum(scale, moved.min() if moved.size else 1e-6)


def fit(folder: Path) -> PairedNoise:
    """The model from ``folder``'s two environments' rounds (the first, by name, is A)."""
    if not folder.is_dir():
        raise UsageError(f"{folder}: no such folder; give an A/A paired measurement, two "
                         "environments' round-* folders")
    sides = sorted(p for p in folder.iterdir() if p.is_dir() and any(p.glob("round-*")))
    if len(sides) != 2:
        raise UsageError(f"{folder} must hold two environments' folders of round-* "
                         f"folders (an A/A paired measurement); found "
                         f"{len(sides)}{': ' + ', '.join(p.name for p in sides) if sides else ''}")
    a_rounds, b_rounds = (rounds_in(side, None) for side in sides)
    common = sorted(a_rounds.keys() & b_rounds.keys())  # rounds pair by number
    n = len(common)
    a = pd.concat([round_medians(a_rounds[i]) for i in common], axis=1)
    b = pd.concat([round_medians(b_rounds[i]) for i in common], axis=1)
    a.columns = b.columns = range(n)
    logs = np.log(b / a).dropna()
    shifts = logs.groupby(logs.index.get_level_values("phase")).transform("median")
    departures = logs - shifts
    departures = departures.sub(departures.median(axis=1), axis=0).to_numpy().T
    config, group = key_groups(a_rounds[common[0]], logs.index)
    cell_names = pd.Series(group).str.cat(logs.index.get_level_values("phase"), sep="|")
    cell_codes, cell_index = pd.factorize(cell_names)
    effects = np.stack([departures[:, cell_codes == c].mean(axis=1)
                        for c in range(len(cell_index))], axis=1)
    effects = effects - np.median(effects, axis=0)
    cell_scale = _floored(_scale(effects))
    rest = departures - effects[:, cell_codes]
    rest -= np.median(rest, axis=0)
    shared = np.bincount(cell_codes)[cell_codes] > 1  # a key alone in its cell is its cell
    key_scale = np.where(shared, _scale(rest), 0.0)
    key_scale[shared] = _floored(key_scale[shared])
    return PairedNoise(logs.index, config, shifts.to_numpy().T, departures, cell_codes,
                       cell_scale, (effects / cell_scale).ravel(),
                       key_scale, (rest[:, shared] / key_scale[shared]).ravel()
                       if shared.any() else np.zeros(1))


def key_groups(run: Run, keys: pd.MultiIndex) -> tuple[np.ndarray, np.ndarray]:
    """Per key, its configuration and comparison group (the configuration itself where the
    run names none), from ``run``'s rows matched on the columns they share with the keys."""
    rows = run.results[run.results["status"] == OK]
    names = [n for n in keys.names if n in rows.columns]
    merged = keys.to_frame(index=False)[names].merge(rows, on=names, how="left")
    merged = merged.drop_duplicates(subset=names)
    config = merged["config_id"].astype(str).to_numpy()
    group = merged["group"].fillna("").astype(str).to_numpy()
    return config, np.where(group == "", config, group)


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m bench.selfcheck.paired_noise",
                           description="The noise of paired rounds, fitted to an A/A "
                           "measurement: each round's shift, each group's effect, each "
                           "configuration's rest (bench/selfcheck/sequential_noise.py simulates "
                           "comparisons under it).")
    parser.add_argument("rounds_dir", type=Path,
                        help="an A/A paired measurement: two environments' round-* folders")
    parser.add_argument("--out", type=Path, help="write the model's figures as JSON here")
    args = parser.parse_args(argv)
    try:
        model = fit(args.rounds_dir)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report = {"model": model.describe(), "fitted_on": str(args.rounds_dir)}
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
