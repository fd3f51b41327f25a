"""``python -m bench.selfcheck.sequential_noise ROUNDS_DIR``: the paired rounds' stopping rule
under noise fitted to this machine and under a quiet one, by simulation.

Paired rounds now stop once every measurement is decided, and from the third round on
measure only what is still undecided (``bench/tools/paired.py``,
``bench/analyze/paired_rounds.py``).
Looking after every round is what the group-sequential plan pays for; this checks that it
does, with the stopping included: each simulated comparison draws a round at a time, judges
every key at each look exactly as ``python -m bench paired`` does (``judge_sequentially``),
and leaves a decided configuration out of the rounds that follow (NaN, as a round that did
not measure it). Reported per noise model, over ``--trials`` comparisons of an unchanged
candidate and as many with a quarter of the configurations 10% slower:

- false changes per unchanged measurement (and the 95% upper bound, clusters counted as
  ``bench/selfcheck/noise_model.py`` counts them), stopping included;
- the share of the slowed configurations' steps found;
- the rounds until every measurement was decided (mean, and how often the cap was hit),
  and the measuring it took in whole rounds of the sweep (a round that measured a tenth
  of the configurations is a tenth of a round), against the fixed 18 rounds before.

Models: ``fitted`` is ``bench/selfcheck/paired_noise.py``'s model of an A/A measurement
(``ROUNDS_DIR``: two environments' round-* folders); ``quiet`` keeps its keys and groups
but draws every part normally with a 1% spread in all (a GPU-like machine).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.analyze.paired_rounds import PLAN, judge_sequentially
from bench.analyze.judge import DEFAULT_THRESHOLD, IMPROVEMENT, REGRESSION
from bench.analyze.judge import OPEN as UNDECIDED
from bench.cli import OneLineParser
from bench.errors import UsageError
from bench.schema import STEP
from bench.selfcheck.noise_model import binomial_upper
from bench.selfcheck.paired_noise import SLOWDOWN, SLOWED_SHARE, PairedNoise, fit

FIXED_ROUNDS = 18  # what the paired rounds took before they could stop
QUIET_SPREAD = 0.01


@dataclass
class QuietNoise:
    """The keys and groups of a fitted model, with a quiet machine's noise: a round's shift,
    a group's effect and a key's rest, normal, 1% in all."""

    base: PairedNoise

    def __post_init__(self):
        self.keys, self.config, self.cell = self.base.keys, self.base.config, self.base.cell

    @property
    def phase(self) -> np.ndarray:
        return self.base.phase

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        part = QUIET_SPREAD / np.sqrt(3)
        cells = rng.normal(0, part, self.cell.max() + 1)
        return rng.normal(0, part) + cells[self.cell] + rng.normal(0, part, len(self.cell))


def trial(model, rng: np.random.Generator, slowed: set[str], max_rounds: int) -> dict:
    """One comparison, round by round until every key is decided or the cap."""
    config = model.config
    changed = np.isin(config, list(slowed))
    rounds = np.full((len(config), max_rounds), np.nan)
    measured_share = []
    open_configs = set(config)
    judged, looked = None, {}
    for r in range(max_rounds):
        draw = model.draw(rng) + np.log(SLOWDOWN) * changed
        measuring = np.isin(config, list(open_configs))
        rounds[measuring, r] = draw[measuring]
        measured_share.append(measuring.mean())
        if r + 1 < PLAN.first:
            continue
        judged = judge_sequentially(rounds[:, :r + 1], model.phase, DEFAULT_THRESHOLD,
                                    looked=looked)
        open_configs = set(config[(judged["verdict"] == UNDECIDED).to_numpy()])
        if not open_configs:
            break
    verdicts = judged["verdict"].to_numpy()
    flagged = np.isin(verdicts, [REGRESSION, IMPROVEMENT])
    steps = changed & (model.phase == STEP)
    return {"unchanged": int((~changed).sum()), "false": int((flagged & ~changed).sum()),
            "slowed_steps": int(steps.sum()),
            "found": int((steps & (verdicts == REGRESSION)).sum()),
            "rounds": len(measured_share), "capped": bool(open_configs),
            "round_equivalents": float(np.sum(measured_share)),
            "undecided": int((verdicts == UNDECIDED).sum())}


def simulate(model, trials: int, seed: int, max_rounds: int) -> dict:
    rng = np.random.default_rng(seed)
    configs = sorted(set(model.config))
    same, slow = [], []
    for _ in range(trials):
        picked = set(rng.choice(configs, size=max(1, round(SLOWED_SHARE * len(configs))),
                                replace=False))
        same.append(trial(model, rng, set(), max_rounds))
        slow.append(trial(model, rng, picked, max_rounds))
    every = same + slow
    unchanged = sum(t["unchanged"] for t in every)
    false = sum(t["false"] for t in every)
    flagging = sum(t["false"] > 0 for t in every)
    cluster = false / flagging if flagging else 1.0
    upper = binomial_upper(flagging, len(every)) * cluster * len(every) / unchanged
    slowed = sum(t["slowed_steps"] for t in slow)
    return {"trials": trials, "unchanged_measurements": unchanged, "false_changes": false,
            "false_change_rate": false / unchanged, "false_change_rate_upper_95": upper,
            "slowed_steps": slowed, "found": sum(t["found"] for t in slow),
            "detection_rate": sum(t["found"] for t in slow) / max(slowed, 1),
            "mean_rounds": float(np.mean([t["rounds"] for t in every])),
            "capped_share": float(np.mean([t["capped"] for t in every])),
            "mean_round_equivalents": float(np.mean([t["round_equivalents"] for t in every])),
            "share_of_fixed_rounds": float(np.mean([t["round_equivalents"] for t in every])
                                           / FIXED_ROUNDS),
            "undecided_per_comparison": float(np.mean([t["undecided"] for t in every]))}


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m bench.selfcheck.sequential_noise",
                           description="The paired rounds' stopping rule under this "
                           "machine's noise and a quiet one, by simulation.")
    parser.add_argument("rounds_dir", type=Path, nargs="+",
                        help="A/A paired measurements: each two environments' round-* folders")
    parser.add_argument("--trials", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-rounds", type=int, default=PLAN.rounds()[-1])
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    if args.trials < 1:
        parser.error(f"--trials must be at least 1, got {args.trials}")
    report = {"plan": {"first_look": PLAN.first, "looks": PLAN.looks, "alpha": PLAN.alpha,
                       "alpha_same": PLAN.alpha_same}, "models": {}}
    try:
        fitted = {str(folder): fit(folder) for folder in args.rounds_dir}
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    models = {**{f"fitted: {name}": m for name, m in fitted.items()},
              "quiet (1% spread)": QuietNoise(next(iter(fitted.values())))}
    for i, (name, model) in enumerate(models.items()):
        result = simulate(model, args.trials, args.seed + i, args.max_rounds)
        report["models"][name] = result
        print(f"{name}: {json.dumps(result)}", flush=True)
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
