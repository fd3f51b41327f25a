"""``python -m bench.selfcheck.noise_check``: do the harness's verdicts survive this machine?

Runs the default sweep N times back to back, each in a fresh process (or reuses the runs a
previous call left in ``--out-dir``), then measures three things:

1. **Setup verdicts across runs.** Each run sets `single` and `grouped` against `separate`,
   timed together round by round (ratios.csv). No configuration may be called faster in one
   run and slower in another; how often the runs' verdicts agree is reported.
2. **A/A comparisons.** Each run against the next (``python -m bench compare A B
   --fail-on-regression``): nothing changed, so every comparison must report 0
   regressions and exit 0.
3. **A real change is still seen.** A copy of one run with every time of one scenario
   1.3x (results and samples), compared with the run and with the next run (the noise
   between two runs then stands between them): that scenario is flagged, exit 1.
4. **A block is named, not averaged.** A run of two scenarios against a copy of itself
   with one of them 1.4x (``HALF_SLOWED``): that scenario named, exit 1, and no shift
   called common that half the configurations do not share.
5. **What each run cost and left undecided:** wall time, and the share of its setup
   verdicts still inconclusive.

It prints a table and writes ``summary.json`` into ``--out-dir``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from bench import PROJECT_ROOT
from bench.analyze.run_comparison import compare_runs, load_side
from bench.analyze.judge import FASTER, SLOWER
from bench.analyze.judge import UNDECIDED as INCONCLUSIVE
from bench.analyze.shifts import AGREEMENT
from bench.analyze.judge import REGRESSION
from bench.axes import SCENARIO
from bench.schema import RATIOS_FILE, RESULTS_FILE, SAMPLES_FILE, STEP

SLOWED_BY = 1.3
# The misdescribed case: two scenarios, two batch sizes, one setup; one of them 1.4x.
HALF_SLOWED_BY = 1.4
HALF_SWEEP = ["--scenarios", "sequential,shared_input", "--batch-sizes", "1,8",
              "--optimizer-setups", "separate"]
TIME_COLUMNS = ("median_ms", "mean_ms", "min_ms", "max_ms", "iqr_ms", "std_ms", "ci_low_ms",
                "ci_high_ms")


def bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=PROJECT_ROOT,
                          env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
                          capture_output=True, text=True)


def runs(out_dir: Path, count: int, run_args: list[str],
         name: str = "run") -> tuple[list[Path], dict[str, float]]:
    """``count`` complete runs in ``out_dir``, measuring those that are missing; the wall
    time of each measured here."""
    folders, seconds = [], {}
    for i in range(1, count + 1):
        folder = out_dir / f"{name}-{i:02d}"
        if not (folder / RESULTS_FILE).exists():
            started = time.monotonic()
            proc = bench("run", "--quiet", "--out-dir", str(folder), *run_args)
            if proc.returncode != 0:
                sys.exit(f"run {i} failed (exit {proc.returncode}): {proc.stderr[-500:]}")
            seconds[folder.name] = time.monotonic() - started
            print(f"{folder.name}: {seconds[folder.name]:.0f} s", flush=True)
        folders.append(folder)
    return folders, seconds


def undecided(folders: list[Path]) -> dict:
    """Per run, the share of its step verdicts still inconclusive."""
    shares = {}
    for folder in folders:
        ratios = pd.read_csv(folder / RATIOS_FILE)
        steps = ratios[ratios["phase"] == STEP]
        shares[folder.name] = float((steps["verdict"] == INCONCLUSIVE).mean())
    return shares


def verdicts(folders: list[Path]) -> dict:
    """Step verdicts of each setup against `separate`, across the runs."""
    tables = []
    for i, folder in enumerate(folders):
        ratios = pd.read_csv(folder / RATIOS_FILE)
        ratios = ratios[ratios["phase"] == STEP]
        tables.append(ratios.assign(run=i)[["run", "config_id", "verdict", "ratio"]])
    table = pd.concat(tables).pivot(index="config_id", columns="run", values="verdict")
    contradicted = [c for c, row in table.iterrows()
                    if FASTER in set(row) and SLOWER in set(row)]
    pairs = list(itertools.combinations(table.columns, 2))
    agreeing = sum((table[a] == table[b]).sum() for a, b in pairs)
    return {"configurations": len(table), "runs": len(folders),
            "contradicted": contradicted,
            "unanimous": int(table.nunique(axis=1).eq(1).sum()),
            "pairwise_agreement": agreeing / (len(pairs) * len(table)),
            "verdict_counts": {v: int((table == v).sum().sum())
                               for v in pd.unique(table.to_numpy().ravel())}}


def regressions_of(output: str) -> int:
    found = re.findall(r"(\d+) regression\(s\)", output)
    return sum(int(n) for n in found)


def a_a_comparisons(folders: list[Path], out_dir: Path) -> list[dict]:
    out = []
    for a, b in zip(folders, folders[1:]):
        proc = bench("compare", str(a), str(b), "--fail-on-regression",
                     "--out", str(out_dir / f"compare-{a.name}-{b.name}.html"))
        out.append({"baseline": a.name, "candidate": b.name, "exit": proc.returncode,
                    "regressions": regressions_of(proc.stdout),
                    "common_shift": next((line.strip() for line in proc.stdout.splitlines()
                                          if "throughout" in line), "")})
    return out


def slowed_copy(folder: Path, target: Path, scenario: str, by: float = SLOWED_BY) -> Path:
    """``folder`` with every time of ``scenario`` made ``by`` times longer."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(folder, target)
    results = pd.read_csv(target / RESULTS_FILE, dtype=str, keep_default_na=False)
    mine = results[SCENARIO.name] == scenario
    for column in TIME_COLUMNS:
        values = pd.to_numeric(results.loc[mine, column], errors="coerce") * by
        results.loc[mine, column] = values.map(lambda v: "" if pd.isna(v) else f"{v:.9g}")
    results.to_csv(target / RESULTS_FILE, index=False)
    samples = pd.read_csv(target / SAMPLES_FILE, dtype=str, keep_default_na=False)
    ids = set(results.loc[mine, "config_id"])
    rows = samples["config_id"].isin(ids)
    for column in ("device_ms", "host_ms"):
        samples.loc[rows, column] = (pd.to_numeric(samples.loc[rows, column]) * by
                                     ).map(lambda v: f"{v:.9g}")
    samples.to_csv(target / SAMPLES_FILE, index=False)
    (target / RATIOS_FILE).unlink(missing_ok=True)
    return target


def judged(baseline: Path, candidate: Path, out: Path, scenario: str) -> dict:
    """``compare --fail-on-regression``: its exit, what it flagged, and whether any shift
    it called common had fewer than three quarters of its phase's measurements with it."""
    proc = bench("compare", str(baseline), str(candidate), "--fail-on-regression",
                 "--out", str(out))
    table = compare_runs(load_side(str(baseline)), [load_side(str(candidate))]).tables[0]
    flagged = table[table["verdict"] == REGRESSION]
    return {SCENARIO.name: scenario, "exit": proc.returncode,
            "regressions": regressions_of(proc.stdout),
            "flagged_scenarios": sorted(set(flagged[SCENARIO.name])),
            "flagged_of_scenario": f"{int((flagged[SCENARIO.name] == scenario).sum())} of "
                                   f"{int((table[SCENARIO.name] == scenario).sum())}",
            "named": [line for line in proc.stdout.splitlines() if " = " in line
                      and "than the rest" in line],
            "common_without_agreement": common_disagreed(table)}


def common_disagreed(table: pd.DataFrame) -> list[str]:
    """Phases whose shift was called common though under 3/4 of them moved with it."""
    out = []
    for shift, _, _ in table.attrs.get("shifts", []):
        if shift.dimension is None and shift.agree < AGREEMENT * shift.measurements:
            out.append(shift.phase)
    return out


def slowed_comparisons(folders: list[Path], out_dir: Path) -> dict:
    """One scenario of the first run made SLOWED_BY slower, against the run itself and
    against the next run."""
    scenario = pd.read_csv(folders[0] / RESULTS_FILE)[SCENARIO.name].iloc[0]
    slowed = slowed_copy(folders[0], out_dir / f"{folders[0].name}-slowed", scenario)
    out = {"against_itself": judged(folders[0], slowed, out_dir / "compare-slowed.html",
                                    scenario)}
    if len(folders) > 1:
        out["against_the_next_run"] = judged(folders[1], slowed,
                                             out_dir / "compare-slowed-next.html", scenario)
    return out


def half_slowed(out_dir: Path, run_args: list[str]) -> dict:
    """The two-scenario run against a copy with one scenario HALF_SLOWED_BY slower."""
    (folder,), _ = runs(out_dir, 1, [*HALF_SWEEP, *run_args], name="half")
    slowed = slowed_copy(folder, out_dir / f"{folder.name}-slowed", "shared_input",
                         HALF_SLOWED_BY)
    return judged(folder, slowed, out_dir / "compare-half.html", "shared_input")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.selfcheck.noise_check",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=11, help="back-to-back default runs "
                        "(default 11: ten consecutive pairs)")
    parser.add_argument("--out-dir", type=Path, default=Path("results/noise-check"))
    parser.add_argument("--run-args", default="--workers 0",
                        help="`python -m bench run` options (default: those of make bench)")
    args = parser.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    run_args = args.run_args.split()
    folders, seconds = runs(args.out_dir, args.runs, run_args)
    summary = {"verdicts": verdicts(folders),
               "a_a": a_a_comparisons(folders, args.out_dir),
               "slowed": slowed_comparisons(folders, args.out_dir),
               "half_slowed": half_slowed(args.out_dir, run_args),
               "wall_s": seconds, "undecided": undecided(folders)}
    report(summary)
    (args.out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return 0


def report(summary: dict) -> None:
    v, a_a = summary["verdicts"], summary["a_a"]
    print(f"Setup verdicts over {v['runs']} runs, {v['configurations']} configurations: "
          f"{len(v['contradicted'])} called faster in one run and slower in another; "
          f"{v['unanimous']} unanimous; pairwise agreement {v['pairwise_agreement']:.1%}; "
          f"counts {v['verdict_counts']}")
    clean = sum(c["exit"] == 0 and c["regressions"] == 0 for c in a_a)
    print(f"A/A comparisons of back-to-back runs: {clean} of {len(a_a)} with 0 regressions "
          f"and exit 0")
    for c in a_a:
        print(f"  {c['baseline']} -> {c['candidate']}: exit {c['exit']}, "
              f"{c['regressions']} regression(s). {c['common_shift']}")
    for name, s in [*summary["slowed"].items(), ("half", summary["half_slowed"])]:
        by = HALF_SLOWED_BY if name == "half" else SLOWED_BY
        print(f"{s[SCENARIO.name]} made {by}x slower ({name.replace('_', ' ')}): exit "
              f"{s['exit']}, {s['regressions']} regression(s) ({s['flagged_of_scenario']} of "
              f"its measurements), in scenarios {', '.join(s['flagged_scenarios']) or 'none'}"
              f"; common shifts without agreement: {s['common_without_agreement'] or 'none'}")
    shares = summary["undecided"]
    if shares:
        print(f"Undecided setup verdicts per run: {min(shares.values()):.0%} to "
              f"{max(shares.values()):.0%}; wall time of the runs measured now: "
              + (", ".join(f"{s:.0f} s" for s in summary["wall_s"].values()) or "none"))


if __name__ == "__main__":
    sys.exit(main())
