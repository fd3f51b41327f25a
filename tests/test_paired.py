"""Environments measured in interleaved rounds, in real processes: the order of the rounds,
resuming, and the comparison that pairs them."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from bench.tools.paired import keep_what_is_measured, parse_environments, round_order, run_round
from tests.conftest import ROOT, run_cli

SWEEP = ("--scenarios sequential --batch-sizes 2 --optimizer-setups separate --devices cpu "
         "--min-samples 3 --budget-s 0 --warmup-s 0 --threads 1")


def test_two_environments_alternate_abba_and_more_shuffle_per_round():
    assert [round_order(["a", "b"], r) for r in (1, 2, 3, 4)] == [
        ["a", "b"], ["b", "a"], ["a", "b"], ["b", "a"]]
    orders = {tuple(round_order(["a", "b", "c"], r)) for r in range(1, 30)}
    assert len(orders) > 3 and all(sorted(o) == ["a", "b", "c"] for o in orders)
    assert round_order(["a", "b", "c"], 5) == round_order(["a", "b", "c"], 5)  # a rerun keeps it


def test_environments_and_their_variables_are_parsed_and_checked(capsys):
    py = sys.executable
    envs = parse_environments([f"a={py}", "b=python3"], ["b:TORCH_X=1"])
    assert [(e.name, e.python, e.variables) for e in envs] == [
        ("a", py, {}), ("b", "python3", {"TORCH_X": "1"})]
    for envs, sets, said in (([f"a={py}"], [], "a paired comparison needs at least two --env"),
                             (["a"], [], "--env 'a': expected NAME=PYTHON"),
                             ([f"a={py}", f"b={py}"], ["c:V=1"], "no environment 'c'"),
                             ([f"a={py}", "b=/no/python"], [],
                              "/no/python is not an executable interpreter")):
        with pytest.raises(SystemExit) as refused:
            parse_environments(envs, sets)
        assert refused.value.code == 2
        assert said in capsys.readouterr().err


@pytest.mark.parametrize("extra, said", [
    (["--env", "b=/no/python"], "error: --env 'b=/no/python': /no/python is not an executable"),
    (["--env", f"b={sys.executable}", "--run-args", '--scenarios "open'],
     "error: --run-args: No closing quotation (quote a value with spaces whole)"),
    (["--env", f"b={sys.executable}", "--threshold", "abc"], "error: --threshold 'abc' is not"),
    (["--env", f"b={sys.executable}", "--rounds", "1"], "--rounds must be at least 2"),
])
def test_the_tool_refuses_bad_input_in_one_line_before_it_starts_anything(tmp_path, extra,
                                                                         said):
    command = [sys.executable, "-m", "bench", "paired-rounds", "--env", f"a={sys.executable}",
               "--out-dir", str(tmp_path / "out"), *extra]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert said in proc.stderr and not (tmp_path / "out").exists()


def paired_tool(out, *extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "bench", "paired-rounds", "--env", f"a={sys.executable}",
               "--env", f"b={sys.executable}", "--set", "b:MULTINET_PAIRED_TEST=1",
               "--rounds", "2", "--out-dir", str(out), "--run-args", SWEEP, *extra]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_an_environment_name_is_one_folder_in_the_out_dir(tmp_path):
    """A name with a path in it would put its rounds outside --out-dir."""
    out = tmp_path / "runs" / "out"
    for name in ("../../escaped", "a/b", "..", ".hidden"):
        command = [sys.executable, "-m", "bench", "paired-rounds", "--env", f"a={sys.executable}",
                   "--env", f"{name}={sys.executable}", "--out-dir", str(out)]
        proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
        assert (f"error: --env '{name}={sys.executable}': the name '{name}' becomes a folder "
                "in --out-dir; use letters, digits") in proc.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["paired.html", "decisions.json",
                                  pytest.param("undecided.txt", marks=pytest.mark.slow),
                                  pytest.param("round-7", marks=pytest.mark.slow)])
def test_an_environment_named_as_the_rounds_own_file_is_refused(tmp_path, name):
    """Its folder would take the place of the page, the standing or the list of what the
    next round measures that the rounds write (found only once rounds had run), or would
    be taken for a round's folder when the command is run again to resume."""
    command = [sys.executable, "-m", "bench", "paired-rounds", "--env", f"a={sys.executable}",
               "--env", f"{name}={sys.executable}", "--out-dir", str(tmp_path / "out")]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert f"{name!r} is the name of a file the rounds write in --out-dir" in proc.stderr
    assert "or of a round's folder (round-01, ...)" in proc.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["sweep.json", pytest.param("Results.csv",
                                                              marks=pytest.mark.slow)])
def test_an_environment_named_as_a_run_s_file_is_refused(tmp_path, name):
    """Its folder made --out-dir look like a run's: every round was measured, then the
    page refused inside it, and the command run again refused the folder for good."""
    command = [sys.executable, "-m", "bench", "paired-rounds", "--env", f"a={sys.executable}",
               "--env", f"{name}={sys.executable}", "--out-dir", str(tmp_path / "out")]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert (f"{name!r} is the name of a file a run writes (results.csv, samples.csv, env.json, "
            "sweep.json, ratios.csv, networks.csv, operators.csv), which would make --out-dir "
            "look like a run's folder") in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_interpreter_that_cannot_import_torch_is_refused_before_any_round(tmp_path,
                                                                           bare_python):
    out = tmp_path / "out"
    proc = paired_tool(out, "--env", f"c={bare_python}")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert (f"error: --env c={bare_python} cannot run a sweep (ModuleNotFoundError: No module "
            "named 'torch'); give the interpreter of an environment with torch and pandas") \
        == proc.stderr.strip()
    assert not out.exists()  # no round was started


@pytest.mark.slow
def test_a_sweep_whose_coordinator_is_killed_before_its_first_turn_says_so_in_a_line(
        tmp_path):
    """Killed while its sweeps still start up: each finds the turns gone when it first
    takes one, and stops in one line, not a traceback."""
    out = tmp_path / "paired"
    errors = tmp_path / "stderr.txt"
    with open(errors, "w") as stream:
        tool = subprocess.Popen([sys.executable, "-m", "bench", "paired-rounds", "--env",
                                 f"a={sys.executable}", "--env", f"b={sys.executable}",
                                 "--rounds", "2", "--out-dir", str(out), "--run-args", SWEEP],
                                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stream)
        deadline = time.monotonic() + 120
        while len(sweeps_running(out)) < 2:
            assert tool.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        tool.kill()
        tool.wait(timeout=30)
        while sweeps_running(out) and time.monotonic() < deadline:
            time.sleep(0.1)
    assert sweeps_running(out) == []
    text = errors.read_text()
    assert "Traceback" not in text, text
    assert text.count("the paired rounds' coordinator is gone: stopping here; its command, "
                      "run again, resumes the round\n") == 2, text
    assert not list(out.glob("*/round-01/results.csv"))  # neither measured alone


@pytest.mark.slow
def test_rounds_run_side_by_side_in_fresh_processes_then_pair(tmp_path):
    out = tmp_path / "paired"
    proc = paired_tool(out)
    assert proc.returncode == 0, proc.stderr
    rounds = [line for line in proc.stdout.splitlines() if line.startswith("[round")]
    assert rounds == [f"[round {r}/2] {o}, side by side, taking turns: {out}/*/round-0{r}"
                      for r, o in ((1, "a | b"), (2, "b | a"))]
    cpus = {}
    for name in ("a", "b"):
        for r in (1, 2):
            df = pd.read_csv(out / name / f"round-{r:02d}" / "results.csv")
            assert set(df.status) == {"ok"} and len(df) == 4
            # the rounds are compared on paired.html: no round writes a report of its own
            assert not (out / name / f"round-{r:02d}" / "report.html").exists()
            env = json.loads((out / name / f"round-{r:02d}" / "env.json").read_text())
            # both sides of a round measured on the one CPU they share
            assert env["took_turns"]["groups_order_seed"] == r
            assert env["took_turns"]["cpus"] == cpus.setdefault(r, env["took_turns"]["cpus"])
            assert len(cpus[r]) == 1 and cpus[r][0] in os.sched_getaffinity(0)
    assert "b against a: 4 measurements over 2 paired rounds" in proc.stdout
    # two rounds trim nothing: nothing is judged, and the page says so
    assert "With 2 round(s) nothing is judged: the first look comes after round 3" in proc.stdout
    assert "0 regression(s), 0 improvement(s)" in proc.stdout
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


LONGER = ("--scenarios sequential,shared_input --batch-sizes 1,2,4 --devices cpu "
          "--min-samples 3 --budget-s 0.3 --warmup-s 0 --threads 1")


def sweeps_running(out) -> list[int]:
    """The pids of `bench run` processes writing under ``out``."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if str(out) in cmdline and "bench\0run" in cmdline:
            pids.append(int(proc.name))
    return pids


def started_tool(out) -> subprocess.Popen:
    """The tool on a sweep long enough to be interrupted, once a configuration is written."""
    command = [sys.executable, "-m", "bench", "paired-rounds", "--env", f"a={sys.executable}",
               "--env", f"b={sys.executable}", "--rounds", "2", "--out-dir", str(out),
               "--run-args", LONGER]
    tool = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    # results.csv is made, header only, before anything is measured: wait for a row
    deadline = time.monotonic() + 120
    while not measured_any(out / "a" / "round-01" / "results.csv"):
        assert tool.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    return tool


def measured_any(results: Path) -> bool:
    try:
        return len(results.read_text().splitlines()) > 1
    except FileNotFoundError:
        return False


def rows_of(out) -> int:
    return sum(len(pd.read_csv(p)) for p in out.glob("*/round-*/results.csv"))


@pytest.mark.slow
def test_a_signal_stops_the_rounds_keeps_them_and_the_same_command_resumes(tmp_path):
    out = tmp_path / "paired"
    tool = started_tool(out)
    tool.send_signal(signal.SIGINT)
    _, err = tool.communicate(timeout=120)
    assert tool.returncode == 130, err
    assert err.strip().splitlines()[-1] == ("SIGINT: stopped; the rounds on disk are kept, "
                                            "and the same command resumes them")
    assert "Traceback" not in err and sweeps_running(out) == []
    kept = rows_of(out)
    assert kept > 0
    proc = subprocess.run(tool.args, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    # 6 configurations x 3 setups x 4 phases, two rounds, two environments
    assert rows_of(out) == 6 * 3 * 4 * 2 * 2 > kept


@pytest.mark.slow
def test_sweeps_whose_coordinator_is_killed_stop_rather_than_measure_alone(tmp_path):
    out = tmp_path / "paired"
    tool = started_tool(out)
    assert len(sweeps_running(out)) == 2
    tool.kill()
    tool.communicate(timeout=30)
    deadline = time.monotonic() + 60
    while sweeps_running(out) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert sweeps_running(out) == []  # each stopped at its next turn, not at its round's end
    done = rows_of(out)
    assert done < 6 * 3 * 4 * 2  # neither finished round 1 alone


@pytest.mark.slow
def test_an_out_dir_keeps_one_measurement_and_a_round_holds_one_run(tmp_path):
    out = tmp_path / "paired"
    first = paired_tool(out)
    assert first.returncode == 0, first.stderr
    recorded = json.loads((out / "rounds.json").read_text())
    assert recorded["run_args"] == SWEEP.split()
    assert [e["name"] for e in recorded["environments"]] == ["a", "b"]
    before = {p: p.read_bytes() for p in out.glob("*/round-*/results.csv")}
    assert len(before) == 4
    # another sweep into the same folder would pair with these rounds as one measurement
    other = SWEEP.replace("--batch-sizes 2", "--batch-sizes 4")
    command = [sys.executable, "-m", "bench", "paired-rounds", "--env", f"a={sys.executable}",
               "--env", f"b={sys.executable}", "--set", "b:MULTINET_PAIRED_TEST=1",
               "--rounds", "3", "--out-dir", str(out), "--run-args", other]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "holds rounds of another measurement" in proc.stderr
    assert not list(out.glob("*/round-03"))
    assert {p: p.read_bytes() for p in out.glob("*/round-*/results.csv")} == before
    # the command that began them carries on (here: nothing left, the comparison again)
    again = paired_tool(out)
    assert again.returncode == 0, again.stderr
    # a round whose rows name two runs is no round: refused as `history add` refuses it
    path = out / "b" / "round-02" / "results.csv"
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    table.loc[1, "run_id"] = "someother"
    table.to_csv(path, index=False)
    proc = run_cli("paired", str(out / "a"), str(out / "b"))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert f"{out / 'b' / 'round-02'}: a run folder holds one run; results.csv has 2 run ids" \
        in proc.stderr


def test_an_environment_name_too_long_for_a_folder_is_refused_before_any_round(tmp_path):
    name = "n" * 300
    command = [sys.executable, "-m", "bench", "paired-rounds", "--env", f"a={sys.executable}",
               "--env", f"{name}={sys.executable}", "--out-dir", str(tmp_path / "out")]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "too long for a folder's name" in proc.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("given", ["--out-dir /tmp/elsewhere", "--resume /tmp/elsewhere",
                                   "--only a/b", "--out /tmp/x", "--res=/tmp/x"])
def test_options_the_rounds_set_themselves_are_refused_in_run_args(tmp_path, given):
    out = tmp_path / "paired"
    command = [sys.executable, "-m", "bench", "paired-rounds", "--env", f"a={sys.executable}",
               "--env", f"b={sys.executable}", "--out-dir", str(out), "--run-args",
               f"{given} --batch-sizes 1"]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "is set by the rounds themselves" in proc.stderr and not out.exists()


@pytest.mark.slow
def test_an_out_dir_that_is_a_file_is_called_one(tmp_path):
    target = tmp_path / "file"
    target.write_text("kept")
    command = [sys.executable, "-m", "bench", "paired-rounds", "--env", f"a={sys.executable}",
               "--env", f"b={sys.executable}", "--out-dir", str(target)]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert f"--out-dir {target} is a file" in proc.stderr and target.read_text() == "kept"


def test_a_round_removed_on_one_side_is_refused_not_measured_alone(real_run, tmp_path, capsys):
    """Measured now, round 2 of `b` would pair with `a`'s round 2, run hours before."""
    out = tmp_path / "out"
    for folder in ("a/round-01", "b/round-01", "a/round-02"):
        shutil.copytree(real_run, out / folder)
    envs = parse_environments([f"a={sys.executable}", f"b={sys.executable}"], [])
    with pytest.raises(SystemExit) as stop:
        run_round(envs, 2, 2, out, [], False, None)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1
    assert (f"round 2 is measured in some environments but not in b: measured now, it would "
            f"pair with rounds not run beside it; remove {out}/*/round-02") in err
    assert not (out / "b" / "round-02").exists()


def test_a_record_whose_rounds_measured_nothing_gives_way_to_new_arguments(real_run, tmp_path,
                                                                          capsys):
    out = tmp_path / "out"
    envs = parse_environments([f"a={sys.executable}", f"b={sys.executable}"], [])
    keep_what_is_measured(out, envs, ["--history=postgresql://u:x@127.0.0.1:1/db"])
    keep_what_is_measured(out, envs, ["--batch-sizes", "1"])  # the first measured nothing
    assert json.loads((out / "rounds.json").read_text())["run_args"] == ["--batch-sizes", "1"]
    shutil.copytree(real_run, out / "a" / "round-01")  # once a round is measured, it binds
    with pytest.raises(SystemExit):
        keep_what_is_measured(out, envs, ["--batch-sizes", "2"])
    assert "holds rounds of another measurement" in capsys.readouterr().err


@pytest.mark.slow
def test_rounds_a_side_could_not_measure_end_in_exit_1(tmp_path):
    """An environment whose sweep fails in a round (here: its interpreter refuses round 2 of 3)
    leaves that round to the others alone: the rounds said so in a note, then exited 0."""
    picky = tmp_path / "picky-python"
    picky.write_text(f'#!/bin/sh\ncase "$*" in *round-02*) echo refused >&2; exit 3;; esac\n'
                     f'exec {sys.executable} "$@"\n')
    picky.chmod(0o755)
    proc = subprocess.run([sys.executable, "-m", "bench", "paired-rounds",
                           "--env", f"a={sys.executable}", "--env", f"b={picky}",
                           "--rounds", "3", "--every-round", "--out-dir", str(tmp_path / "out"),
                           "--run-args", SWEEP], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert "[round 2] b: the sweep did not complete (exit 3)" in proc.stderr, proc.stderr
    assert "note: the sweep did not complete in b" in proc.stderr
    assert proc.returncode == 1, proc.stderr
    assert (tmp_path / "out" / "b" / "round-01" / "results.csv").exists()
