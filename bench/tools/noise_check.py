"""``python -m bench.tools.noise_check``: do the harness's verdicts survive this machine?

Runs the default sweep N times back to back, each in a fresh process (or reuses the runs a
previous call left in ``--out-dir``), then measures three things:

1. **Setup verdicts across runs.** Each run sets `single` and `grouped` against `separate`,
   timed together round by round (ratios.csv). No configuration may be called faster in one
   run and slower in another; how often the runs' verdicts agree is reported.
2. **A/A comparisons.** Each run against the next (``python -m bench compare A B
   --fail-on-regression``): nothing changed, so every comparison must report 0
   regressions and exit 0.
3. **A real change is still seen.** A copy of one run with every time of one scenario
   1.3x (results and samples), compared with the run: that scenario is flagged, exit 1.

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
from bench.analyze.comparison import compare_runs, load_side
from bench.analyze.ratios import FASTER, SLOWER
from bench.analyze.significance import REGRESSION
from bench.axes import SCENARIO
from bench.schema import RATIOS_FILE, RESULTS_FILE, SAMPLES_FILE, STEP

SLOWED_BY = 1.3
TIME_COLUMNS = ("median_ms", "mean_ms", "min_ms", "max_ms", "iqr_ms", "std_ms", "ci_low_ms",
                "ci_high_ms")


def bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=PROJECT_ROOT,
                          env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
                          capture_output=True, text=True)


def runs(out_dir: Path, count: int, run_args: list[str]) -> list[Path]:
    """``count`` complete default runs in ``out_dir``, measuring those that are missing."""
    folders = []
    for i in range(1, count + 1):
        folder = out_dir / f"run-{i:02d}"
        if not (folder / RESULTS_FILE).exists():
            started = time.monotonic()
            proc = bench("run", "--quiet", "--out-dir", str(folder), *run_args)
            if proc.returncode != 0:
                sys.exit(f"run {i} failed (exit {proc.returncode}): {proc.stderr[-500:]}")
            print(f"run {i}: {time.monotonic() - started:.0f} s", flush=True)
        folders.append(folder)
    return folders


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


def slowed_copy(folder: Path, target: Path, scenario: str) -> Path:
    """``folder`` with every time of ``scenario`` made SLOWED_BY times longer."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(folder, target)
    results = pd.read_csv(target / RESULTS_FILE, dtype=str, keep_default_na=False)
    mine = results[SCENARIO.name] == scenario
    for column in TIME_COLUMNS:
        values = pd.to_numeric(results.loc[mine, column], errors="coerce") * SLOWED_BY
        results.loc[mine, column] = values.map(lambda v: "" if pd.isna(v) else f"{v:.9g}")
    results.to_csv(target / RESULTS_FILE, index=False)
    samples = pd.read_csv(target / SAMPLES_FILE, dtype=str, keep_default_na=False)
    ids = set(results.loc[mine, "config_id"])
    rows = samples["config_id"].isin(ids)
    for column in ("device_ms", "host_ms"):
        samples.loc[rows, column] = (pd.to_numeric(samples.loc[rows, column]) * SLOWED_BY
                                     ).map(lambda v: f"{v:.9g}")
    samples.to_csv(target / SAMPLES_FILE, index=False)
    (target / RATIOS_FILE).unlink(missing_ok=True)
    return target


def slowed_comparison(folder: Path, out_dir: Path) -> dict:
    scenario = pd.read_csv(folder / RESULTS_FILE)[SCENARIO.name].iloc[0]
    slowed = slowed_copy(folder, out_dir / f"{folder.name}-slowed", scenario)
    proc = bench("compare", str(folder), str(slowed), "--fail-on-regression",
                 "--out", str(out_dir / "compare-slowed.html"))
    table = compare_runs(load_side(str(folder)), [load_side(str(slowed))]).tables[0]
    flagged = table[table["verdict"] == REGRESSION]
    return {SCENARIO.name: scenario, "exit": proc.returncode,
            "regressions": regressions_of(proc.stdout),
            "flagged_scenarios": sorted(set(flagged[SCENARIO.name])),
            "flagged_of_scenario": f"{int((flagged[SCENARIO.name] == scenario).sum())} of "
                                   f"{int((table[SCENARIO.name] == scenario).sum())}"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tools.noise_check",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=11, help="back-to-back default runs "
                        "(default 11: ten consecutive pairs)")
    parser.add_argument("--out-dir", type=Path, default=Path("results/noise-check"))
    parser.add_argument("--run-args", default="", help="extra `python -m bench run` options")
    args = parser.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    folders = runs(args.out_dir, args.runs, args.run_args.split())
    summary = {"verdicts": verdicts(folders),
               "a_a": a_a_comparisons(folders, args.out_dir),
               "slowed": slowed_comparison(folders[0], args.out_dir)}
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
    s = summary["slowed"]
    print(f"{s[SCENARIO.name]} made {SLOWED_BY}x slower: exit {s['exit']}, "
          f"{s['regressions']} regression(s) ({s['flagged_of_scenario']} of its "
          f"measurements), in scenarios {', '.join(s['flagged_scenarios']) or 'none'}")
    (args.out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
