"""Each configuration of a comparison group against the group's reference, with an
interval, from their samples paired block by block.

The configurations of a group were timed together, round-robin: each round ran one block of
each, seconds apart (``bench/measure/timers.py``). Whatever the machine did in a round (it
slowed down, another process took a core) hit both blocks of it, so the ratio of the two
blocks' medians cancels it, where the ratio of the two overall medians keeps it. A pair's
ratio is therefore taken per round, and the configuration's ratio is the 20% trimmed mean
of the rounds' log-ratios (of every repeat): a disturbed round or two at either end are
trimmed.

The groups stop as soon as their question is decided (``bench/analyze/sequential.py``): the
rounds were judged at planned looks, each with a share of a 5% error budget, so the
interval is built at the share of the look at which the group stopped. The verdict compares
it with a threshold ``t``: `same` when the whole interval lies within [1 - t, 1 + t]; else
`faster` when it lies below 1, `slower` when above 1; else `inconclusive`. Nothing is called
faster on its median alone.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.analyze.reader import Run
from bench.analyze.judge import DEFAULT_THRESHOLD
from bench.analyze.sequential import final_look, in_run_plan, judge_rounds
from bench.axes import DIMENSIONS, NAMES
from bench.schema import OK, RATIO_FIELDS

PAIR = ["run_id", "repeat", "group", "phase", "block"]
DEFAULT_MIN_ROUNDS = 10  # a run whose sweep.json does not say


def min_rounds(run: Run) -> int:
    """The sweep's min_rounds: the first look of its comparisons."""
    timing = (run.sweep or {}).get("sweep", {}).get("timing", {})
    value = timing.get("min_rounds", DEFAULT_MIN_ROUNDS) if isinstance(timing, dict) else None
    return value if isinstance(value, int) and value > 0 else DEFAULT_MIN_ROUNDS


def block_medians(results: pd.DataFrame, samples: pd.DataFrame) -> pd.DataFrame:
    """The median of each block of each measured configuration timed in a group."""
    grouped = results[(results["status"] == OK) & (results["group"] != "")]
    members = grouped[["run_id", "repeat", "config_id", "group"]].drop_duplicates()
    timed = samples[samples["block"].notna()].merge(members, on=["run_id", "repeat",
                                                                "config_id"])
    return (timed.groupby([*PAIR, "config_id"], sort=False)["device_ms"].median()
            .reset_index())


def paired_ratios(run: Run, threshold: float = DEFAULT_THRESHOLD) -> pd.DataFrame:
    """ratios.csv of ``run``: a row per configuration, other than a group's reference,
    and phase (columns: ``bench.schema.RATIO_COLUMNS``)."""
    results = run.results
    if results.empty or not results["group"].ne("").any():
        return pd.DataFrame(columns=list(RATIO_FIELDS))
    blocks = block_medians(results, run.samples())
    reference = blocks[blocks["config_id"] == blocks["group"]].drop(columns="config_id")
    pairs = blocks[blocks["config_id"] != blocks["group"]].merge(
        reference, on=PAIR, suffixes=("", "_reference"))
    pairs["log_ratio"] = np.log(pairs["device_ms"] / pairs["device_ms_reference"])
    plan = in_run_plan(min_rounds(run))
    keys = ["run_id", "group", "config_id", "phase"]
    rows = []
    for key, pair in pairs.groupby(keys, sort=False):
        # the look the group stopped at: its rounds in the repeat that took the most
        look = final_look(plan, int(pair.groupby("repeat")["block"].nunique().max()))
        judged = judge_rounds(pair["log_ratio"].to_numpy()[None, :], plan, look,
                              threshold)[0]
        rows.append({**dict(zip(keys, key)), "blocks": len(pair), "ratio": judged.ratio,
                     "ci_low": judged.low, "ci_high": judged.high,
                     "verdict": judged.verdict, "threshold": threshold,
                     "confidence": 1 - plan.level(look), "look": look})
    if not rows:
        return pd.DataFrame(columns=list(RATIO_FIELDS))
    table = pd.DataFrame(rows)
    return _described(table, results)


def _described(table: pd.DataFrame, results: pd.DataFrame) -> pd.DataFrame:
    """The ratios with each configuration's dimensions, its median and its reference's,
    and the axis it differs from the reference in."""
    ok = results[results["status"] == OK]
    medians = ok.groupby(["run_id", "config_id", "phase"])["median_ms"].median().rename(
        "config_ms")
    first = ok.drop_duplicates(["run_id", "config_id"]).set_index(["run_id", "config_id"])
    table = table.join(medians, on=["run_id", "config_id", "phase"])
    table = table.join(medians.rename("reference_ms"), on=["run_id", "group", "phase"])
    own = first.loc[list(zip(table["run_id"], table["config_id"]))]
    ref = first.loc[list(zip(table["run_id"], table["group"]))]
    for column in [*NAMES, "device_name"]:
        table[column] = own[column].to_numpy()
    differs = [[d.name for d in DIMENSIONS if a[d.name] != b[d.name]]
               for (_, a), (_, b) in zip(own.iterrows(), ref.iterrows())]
    table["compared"] = [names[0] if names else "" for names in differs]
    table["value"] = [a[n] if n else "" for n, (_, a) in zip(table["compared"], own.iterrows())]
    table["reference"] = [b[n] if n else "" for n, (_, b) in zip(table["compared"],
                                                                 ref.iterrows())]
    return table[list(RATIO_FIELDS)].reset_index(drop=True)
