"""Units of a comparison: one repeat of one run of one configuration and phase, with its
raw samples. Each must count once, and each is summed up by the median of its samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from bench.analyze.reader import Run
from bench.errors import UsageError

UNIT = ("run_id", "repeat", "config_id", "phase")


def check_units_unique(runs: Sequence[Run]) -> None:
    """Each unit once: a folder pooled with itself or two folders of one run would count the
    same measurement as two repeats, and make them agree perfectly. (A row repeated within
    a file is refused by the reader.)"""
    folders: dict[Path, Run] = {}
    for run in runs:
        if folders.setdefault(run.path.resolve(), run) is not run:
            raise UsageError(f"{run.path} is given twice on one side: pooled with itself, "
                             "each of its measurements would count twice")
    units = pd.concat([r.results[list(UNIT)].assign(_run=i) for i, r in enumerate(runs)],
                      ignore_index=True)
    again = units.duplicated(list(UNIT))
    if not again.any():
        return
    second = units[again].iloc[0]
    first = units[(units[list(UNIT)] == second[list(UNIT)]).all(axis=1)].iloc[0]
    what = f"{second['config_id']} ({second['phase']}, repeat {second['repeat']})"
    one, other = runs[first["_run"]], runs[second["_run"]]
    raise UsageError(f"{one.path} and {other.path} both hold run {second['run_id']} ({what}); "
                     "pooled, its measurements would count twice")


def unit_medians(run: Run) -> pd.Series:
    """The median of each unit's raw samples, indexed by ``UNIT``.

    The writer puts a unit's samples together, so a unit is a stretch of rows with equal
    keys: found by comparing neighbours, far faster than hashing millions of strings. A file
    whose units are split falls back to grouping by name."""
    samples = run.samples()
    starts = np.zeros(len(samples), dtype=bool)
    starts[:1] = True
    for column in UNIT:
        values = samples[column].to_numpy()
        starts[1:] |= values[1:] != values[:-1]
    keys = samples.loc[starts, list(UNIT)]
    if keys.duplicated().any():
        return samples.groupby(list(UNIT), sort=False)["device_ms"].median()
    stretch = np.cumsum(starts) - 1
    medians = pd.Series(samples["device_ms"].to_numpy()).groupby(stretch).median()
    return pd.Series(medians.to_numpy(), index=pd.MultiIndex.from_frame(keys))
