"""Environments measured in interleaved rounds, in real processes: the order of the rounds,
resuming, and the comparison that pairs them."""

import json
import subprocess
import sys

import pandas as pd
import pytest

from bench.tools.paired import parse_environments, round_order
from tests.conftest import ROOT, run_cli

SWEEP = ("--scenarios sequential --batch-sizes 2 --optimizer-setups separate --devices cpu "
         "--min-samples 3 --budget-s 0 --warmup-s 0 --threads 1")


def test_two_environments_alternate_abba_and_more_shuffle_per_round():
    assert [round_order(["a", "b"], r) for r in (1, 2, 3, 4)] == [
        ["a", "b"], ["b", "a"], ["a", "b"], ["b", "a"]]
    orders = {tuple(round_order(["a", "b", "c"], r)) for r in range(1, 30)}
    assert len(orders) > 3 and all(sorted(o) == ["a", "b", "c"] for o in orders)
    assert round_order(["a", "b", "c"], 5) == round_order(["a", "b", "c"], 5)  # a rerun keeps it


def test_environments_and_their_variables_are_parsed_and_checked():
    envs = parse_environments(["a=/x/python", "b=/y/python"], ["b:TORCH_X=1"])
    assert [(e.name, e.python, e.variables) for e in envs] == [
        ("a", "/x/python", {}), ("b", "/y/python", {"TORCH_X": "1"})]
    for envs, sets, said in ((["a=/x"], [], "at least two"), (["a"], [], "NAME=PYTHON"),
                             (["a=/x", "b=/y"], ["c:V=1"], "no environment 'c'")):
        with pytest.raises(SystemExit, match=said):
            parse_environments(envs, sets)


def paired_tool(out, *extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "bench.tools.paired", "--env", f"a={sys.executable}",
               "--env", f"b={sys.executable}", "--set", "b:MULTINET_PAIRED_TEST=1",
               "--rounds", "2", "--out-dir", str(out), "--run-args", SWEEP, *extra]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_rounds_run_side_by_side_in_fresh_processes_then_pair(tmp_path):
    out = tmp_path / "paired"
    proc = paired_tool(out)
    assert proc.returncode == 0, proc.stderr
    rounds = [line for line in proc.stdout.splitlines() if line.startswith("[round")]
    assert rounds == [f"[round {r}/2] {o}, side by side, taking turns: {out}/*/round-0{r}"
                      for r, o in ((1, "a | b"), (2, "b | a"))]
    for name in ("a", "b"):
        for r in (1, 2):
            df = pd.read_csv(out / name / f"round-{r:02d}" / "results.csv")
            assert set(df.status) == {"ok"} and len(df) == 4
            env = json.loads((out / name / f"round-{r:02d}" / "env.json").read_text())
            assert env["took_turns"] == {"groups_order_seed": r}
    assert "b against a: 4 measurements over 2 paired rounds" in proc.stdout
    # 2 / 2^2: two rounds cannot call anything, and the page says so
    assert "With 2 rounds no measurement can be called a change" in proc.stdout
    assert "2 / 2^2 = 0.5" in proc.stdout
    assert (out / "paired.html").stat().st_size > 0
    # a second call keeps the rounds on disk: it resumes them, measuring nothing again
    before = (out / "a" / "round-01" / "results.csv").read_text()
    proc = paired_tool(out)
    assert proc.returncode == 0, proc.stderr
    assert (out / "a" / "round-01" / "results.csv").read_text() == before


@pytest.mark.slow
def test_one_at_a_time_rounds_alternate_abba(tmp_path):
    proc = paired_tool(tmp_path / "paired", "--one-at-a-time")
    assert proc.returncode == 0, proc.stderr
    started = [line.split("]")[1].split(":")[0].strip() for line in proc.stdout.splitlines()
               if line.startswith("[round")]
    assert started == ["a", "b", "b", "a"]
    env = json.loads((tmp_path / "paired" / "a" / "round-01" / "env.json").read_text())
    assert "took_turns" not in env


def test_pairing_needs_round_folders(tmp_path):
    (tmp_path / "a").mkdir()
    proc = run_cli("paired", str(tmp_path / "a"), str(tmp_path / "b"))
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"error: {tmp_path / 'a'} holds no round-* folder")
