"""``python -m bench.selfcheck.turn_pairing ROUNDS_DIR``: how alike the two sides' blocks of
a paired round are, where they took turns.

Paired rounds time the same configuration in A and then in B within a turn of each other
(``bench/sweep/turns.py``), so that what the machine does over those seconds touches both
and cancels in their ratio. Whether it does is a property of the machine, read off the
rounds' own samples: per configuration and round, each block's step median about that
configuration's median over the round's blocks, in A and in B, for the same block (round
of blocks) number. Alike blocks (a correlation near 1) mean the turns cancel the machine's
moves; unrelated ones (near 0) mean each process's blocks move on their own, and only
more blocks or more rounds narrow an interval. Also: how many iterations a block holds
(a block of one iteration is one step after the other side's turn).

``ROUNDS_DIR`` holds two environments' folders of round-* runs (``paired-rounds
--out-dir``, whose rounds keep their samples.csv). Prints one line of figures per
``ROUNDS_DIR``; ``--out`` writes them as JSON.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from bench.cli import OneLineParser
from bench.schema import SAMPLES_FILE, STEP


def block_deviations(run: Path) -> pd.DataFrame:
    """Per (config_id, block): the log of the block's step median about the configuration's
    mean over its blocks, and the iterations the block held."""
    samples = pd.read_csv(run / SAMPLES_FILE)
    samples = samples[samples["phase"] == STEP]
    blocks = samples.groupby(["config_id", "block"])["device_ms"]
    out = pd.DataFrame({"log": np.log(blocks.median()), "iterations": blocks.size()})
    out["deviation"] = out["log"] - out.groupby(level="config_id")["log"].transform("mean")
    return out


def pairing(rounds_dir: Path) -> dict:
    sides = sorted(p for p in rounds_dir.iterdir() if p.is_dir())
    if len(sides) != 2:
        raise SystemExit(f"error: {rounds_dir} holds {len(sides)} folders, not two sides")
    both = []
    for a, b in zip(sorted(sides[0].glob("round-*")), sorted(sides[1].glob("round-*"))):
        if (a / SAMPLES_FILE).is_file() and (b / SAMPLES_FILE).is_file():
            both.append(pd.concat([block_deviations(a).add_suffix("_a"),
                                   block_deviations(b).add_suffix("_b")],
                                  axis=1, join="inner"))
    if not both:
        raise SystemExit(f"error: no round of {rounds_dir} has its samples on both sides")
    table = pd.concat(both)
    a, b = table["deviation_a"].to_numpy(), table["deviation_b"].to_numpy()
    return {"rounds": len(both), "blocks": len(table),
            "block_sd_a": float(a.std(ddof=1)), "block_sd_b": float(b.std(ddof=1)),
            "paired_sd": float((b - a).std(ddof=1)),
            "correlation": float(np.corrcoef(a, b)[0, 1]),
            "one_iteration_blocks": float((table["iterations_a"] == 1).mean())}


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m bench.selfcheck.turn_pairing",
                           description="How alike the two sides' blocks of paired rounds are.")
    parser.add_argument("rounds_dir", type=Path, nargs="+")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    report = {str(folder): pairing(folder) for folder in args.rounds_dir}
    for folder, figures in report.items():
        print(f"{folder}: {figures['blocks']} blocks over {figures['rounds']} rounds; a "
              f"block's deviation {figures['block_sd_a']:.1%} in A, {figures['block_sd_b']:.1%}"
              f" in B, {figures['paired_sd']:.1%} in their ratio; correlation "
              f"{figures['correlation']:+.2f}; blocks of one iteration "
              f"{figures['one_iteration_blocks']:.0%}")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
