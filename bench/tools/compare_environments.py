"""Two environments compared in paired rounds, a verdict per measurement: the one function
every caller that needs "did this environment change anything against that one" goes
through (``bench/tools/bisect.py``).

It runs paired rounds (``bench/tools/paired.py``: side by side, taking turns) until every
measurement is decided, or ``rounds`` at most, measuring from the third round on only what
is undecided, and judges them as ``python -m bench paired`` does
(``bench/analyze/paired_rounds.py``). Rounds on disk are kept: the same call in the same folder
resumes them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from bench.analyze.paired_rounds import compare_paired
from bench.analyze.reader import Run
from bench.analyze.judge import DEFAULT_THRESHOLD
from bench.commands.paired import rounds_in
from bench.tools.paired import DEFAULT_ROUNDS, Environment, run_rounds


@dataclass(frozen=True)
class EnvironmentComparison:
    """``table``: one row per measurement (``bench.analyze.paired_rounds.COLUMNS``: the ratio of
    the candidate over the baseline, its 95% interval, q-value and verdict);
    ``common_shift`` the step phase's shift of everything, judged over the rounds;
    ``envs``: each side's env.json (its first round's), by environment name."""

    baseline: Environment
    candidate: Environment
    table: pd.DataFrame
    rounds: int
    folder: Path
    envs: dict[str, dict[str, Any]]

    @property
    def common_shift(self) -> dict | None:
        return self.table.attrs.get("common_shift")


def _first_env(runs: list[Run]) -> dict[str, Any]:
    return runs[0].env if runs else {}


def compare_environments(baseline: Environment, candidate: Environment, out_dir: Path,
                         run_args: list[str], *, rounds: int = DEFAULT_ROUNDS,
                         threshold: float = DEFAULT_THRESHOLD,
                         one_at_a_time: bool = False) -> EnvironmentComparison:
    """Measure ``baseline`` and ``candidate`` in paired rounds of the sweep ``run_args``
    (``python -m bench run`` options) into ``out_dir/<name>/round-NN``, and judge every
    measurement. ``rounds``: at most this many."""
    out_dir = Path(os.path.abspath(out_dir))  # the rounds run in the same folder, wherever
    failed = run_rounds([baseline, candidate], rounds, out_dir, run_args, one_at_a_time,
                        f"{threshold * 100:g}")
    if failed:
        print(f"note: the sweep did not complete in {', '.join(failed)}; their rounds pair "
              "where they hold the configuration", flush=True)
    base = rounds_in(out_dir / baseline.name, rounds)
    cand = rounds_in(out_dir / candidate.name, rounds)
    table = compare_paired(base, cand, threshold)
    return EnvironmentComparison(baseline, candidate, table, table.attrs["rounds"], out_dir,
                                 {baseline.name: _first_env(list(base.values())),
                                  candidate.name: _first_env(list(cand.values()))})
