"""Paired rounds that stop when decided: where a comparison stands after each round (what
the coordinator reads), a sweep restricted to the configurations still undecided, and the
coordinator measuring only those from the third round on."""

import json
import os
import re
import subprocess
import sys

import pandas as pd
import pytest

from bench.analyze.plans import MAX_ROUNDS
from tests.conftest import ROOT, run_cli
from tests.test_paired_command import write_rounds

TINY = ("--scenarios sequential --batch-sizes 1,2 --optimizer-setups separate,single "
        "--warmup-s 0 --budget-s 0.05 --threads 1")


def test_the_standing_names_what_is_undecided_and_how_long_it_will_likely_take(tmp_path):
    # four configurations, 1% noise a round: after five rounds every measurement of the
    # unchanged ones is decided; shared_input/single made 5.5% slower in b sits by the
    # threshold, where a change and none are hard to tell apart in five rounds
    a = write_rounds(tmp_path / "a", "a", 5)
    b = write_rounds(tmp_path / "b", "b", 5, seed=1)
    for folder in sorted(b.iterdir()):
        results = pd.read_csv(folder / "results.csv", dtype=str, keep_default_na=False)
        mine = (results.scenario == "shared_input") & (results.optimizer_setup == "single")
        for column in ("median_ms", "ci_low_ms", "ci_high_ms"):
            results.loc[mine, column] = (results.loc[mine, column].astype(float)
                                         * 1.055).map(repr)
        results.to_csv(folder / "results.csv", index=False)
    out = tmp_path / "standing.json"
    proc = run_cli("paired", str(a), str(b), "--decisions", str(out))
    assert proc.returncode == 0, proc.stderr
    standing = json.loads(out.read_text())
    assert standing["rounds"] == 5 and standing["measurements"] == 16
    assert standing["undecided_configs"] == ["shared_input/seed/cpu/bs32/single/adam/loop"]
    # the twelve unchanged measurements decided; some phase of the slowed one not yet
    assert 12 <= standing["decided"] < 16
    assert 5 < standing["rounds_to_decide"] <= MAX_ROUNDS
    assert not (tmp_path / "paired.html").exists()  # the standing only, no page


def test_a_sweep_measures_only_the_configurations_named(tmp_path):
    ids = "sequential/seed/cpu/bs2/single/adam/loop"
    listed = tmp_path / "only.txt"
    listed.write_text(f"{ids}\nsequential/seed/cpu/bs1/separate/adam/loop\n")
    proc = run_cli("run", *TINY.split(), "--min-rounds", "2", "--only", f"@{listed}",
                   "--out-dir", str(tmp_path / "run"), "--quiet", "--workers", "1")
    assert proc.returncode == 0, proc.stderr
    results = pd.read_csv(tmp_path / "run" / "results.csv")
    assert sorted(set(results.config_id)) == sorted(listed.read_text().split())
    sweep = json.loads((tmp_path / "run" / "sweep.json").read_text())
    assert sorted(sweep["sweep"]["only"]) == sorted(listed.read_text().split())


@pytest.mark.parametrize("only, says", [
    pytest.param("nothing/of/the/sweep", "none of the 1 configuration(s) to measure",
                 marks=pytest.mark.slow),
    pytest.param("@/no/such/file", "--only '@/no/such/file': cannot read /no/such/file",
                 marks=pytest.mark.slow),
    (",", "--only names no configuration")])
def test_a_bad_only_is_one_line_and_exit_2(tmp_path, only, says):
    proc = run_cli("run", *TINY.split(), "--only", only, "--out-dir", str(tmp_path / "run"))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and says in proc.stderr
    assert not (tmp_path / "run" / "results.csv").exists()


@pytest.mark.slow
def test_from_the_third_round_only_the_undecided_are_measured_again(tmp_path):
    out = tmp_path / "paired"
    python = sys.executable
    proc = subprocess.run([python, "-m", "bench", "paired-rounds", "--env", f"a={python}",
                           "--env", f"b={python}", "--rounds", "5", "--out-dir", str(out),
                           "--run-args", TINY], cwd=ROOT, capture_output=True, text=True,
                          timeout=900, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode in (0, 1), proc.stderr
    progress = [line for line in proc.stdout.splitlines() if line.startswith("[after round")]
    assert progress and progress[0].startswith("[after round 3]")
    counts = re.search(r"(\d+) of (\d+) measurements decided.*\((\d+) configuration",
                       progress[0])
    assert counts and int(counts.group(2)) == 16
    again = int(counts.group(3))
    rounds = sorted(p.name for p in (out / "a").iterdir())
    if again == 0:  # everything decided after the third: no fourth round
        assert rounds == ["round-01", "round-02", "round-03"]
    else:  # the fourth measured what the third left undecided, and nothing else
        for side in ("a", "b"):
            sweep = json.loads((out / side / "round-04" / "sweep.json").read_text())
            assert len(sweep["sweep"]["only"]) == again
            four = pd.read_csv(out / side / "round-04" / "results.csv")
            assert set(four.config_id) == set(sweep["sweep"]["only"])
