"""The parts of `python -m bench submit` that need no cluster: how a sweep is split over
jobs, the command a job runs on its node, reading Slurm's answers, and bad input refused in
one line before anything is submitted."""

import sys
from pathlib import Path

import pytest

from bench.cli import main
from bench.cluster.node import NodeTask, master_port, node_command
from bench.cluster.shards import shard_options
from bench.cluster.slurm_states import GONE, parse_sacct, parse_scontrol
from bench.errors import UsageError
from bench.sweep.config import load_sweep

SCONTROL = ("JobId=17 JobName=bench-alpha UserId=root(0) GroupId=root(0) JobState=COMPLETING "
            "Reason=None Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 ExitCode=0:15 "
            "RunTime=00:00:13 Partition=alpha NodeList=gpu[01-02] BatchHost=gpu01")


def sweep(**overrides):
    base = {"scenarios": ["sequential"], "sizes": ["seed"], "devices": ["cpu"],
            "batch_sizes": [1, 8, 32, 128, 512], "optimizer_setups": ["separate", "single"],
            "optimizers": ["adam"], "optimizer_impls": ["loop"]}
    return load_sweep(None, {**base, **overrides})


def test_shards_split_the_widest_axis_but_the_compared_one_every_nth_value():
    shards = shard_options(sweep(), 2)
    assert shards == [["--batch-sizes", "1,32,512"], ["--batch-sizes", "8,128"]]
    # the optimizer setups are compared within a group: never split, however many there are
    wide = sweep(optimizer_setups=["separate", "single", "grouped"], batch_sizes=[1, 8])
    assert shard_options(wide, 2) == [["--batch-sizes", "1"], ["--batch-sizes", "8"]]
    assert shard_options(sweep(), 1) == [[]]


def test_shards_refuse_what_cannot_be_split():
    with pytest.raises(UsageError, match=r"--shards 6: .*batch_sizes has 5 values.*"
                                         r"give --shards 5 or less"):
        shard_options(sweep(), 6)
    with pytest.raises(UsageError, match=r"\[\[parts\]\]"):
        shard_options(load_sweep(Path("bench/sweeps/default-cuda.toml")), 2)


def task(**values):
    base = dict(python="/venv/bin/python", run_args=("--devices", "cpu"), run_dir="/shared/r",
                store="postgresql://team@db/bench")
    return NodeTask(**{**base, **values})


def test_a_job_starts_a_run_or_continues_the_one_in_its_folder():
    assert node_command(task(), resume=False) == [
        "/venv/bin/python", "-m", "bench", "run", "--devices", "cpu", "--out-dir", "/shared/r",
        "--history", "postgresql://team@db/bench", "--quiet"]
    # a resume takes no sweep options: the folder's sweep.json holds the sweep
    assert node_command(task(loads=("/s.py",)), resume=True) == [
        "/venv/bin/python", "-m", "bench", "--load", "/s.py", "run", "--resume", "/shared/r",
        "--history", "postgresql://team@db/bench", "--quiet"]


def test_a_data_parallel_job_runs_torchrun_on_each_node_meeting_at_the_first():
    command = node_command(task(nodes=4, procs_per_node=8, dist_timeout_s=300), resume=False,
                           node_rank=2, master="gpu01", job_id="123456")
    assert command == [
        "/venv/bin/python", "-m", "bench", "launch", "--nnodes", "4", "--node-rank", "2",
        "--nproc-per-node", "8", "--rdzv-endpoint", "gpu01:23456", "--rdzv-conf",
        "timeout=300", "-m", "bench", "run", "--distributed", "--dist-timeout-s", "300",
        "--devices", "cpu", "--out-dir", "/shared/r", "--history",
        "postgresql://team@db/bench", "--quiet"]
    assert master_port("123456") == 20000 + 123456 % 12000 == 23456


def test_slurm_s_answers_are_read_as_their_base_state():
    state = parse_scontrol(SCONTROL)
    assert (state.job_id, state.state, state.nodes, state.reason) == ("17", "COMPLETING",
                                                                      "gpu[01-02]", "")
    assert not state.ended  # its processes are still finishing
    assert parse_scontrol("slurm_load_jobs error: Invalid job id specified") is None
    states = parse_sacct("17|CANCELLED by 0|gpu01|None\n18|PENDING|None assigned|Priority\n")
    assert states["17"].state == "CANCELLED" and states["17"].ended
    assert states["18"].state == "PENDING" and states["18"].reason == "Priority"
    assert parse_sacct("19||\n")["19"].state == GONE


@pytest.mark.parametrize("args, message", [
    ([], "--partition is required"),
    (["--partition", "a", "--nodes", "2"], "--nodes is for data-parallel jobs: add --distributed"),
    (["--partition", "a", "--distributed"], "--distributed on CPU nodes needs --procs-per-node"),
    (["--partition", "a", "--shards", "0"], "--shards must be at least 1, got 0"),
    (["--partition", "a", "--slurm", "account"], "--slurm 'account': expected KEY=VALUE"),
    (["--partition", "a", "--batch-sizes", "x"], "--batch-sizes: 'x' is not an integer"),
    (["--partition", "a", "--scenarios", "sequential", "--batch-sizes", "1,8", "--shards", "3"],
     "--shards 3: the sweep's axes cannot be split that many ways"),
    (["--partition", "a", "--poll-s", "nan"], "--poll-s must be a positive number"),
])
def test_bad_input_is_one_line_and_submits_nothing(args, message, tmp_path, capsys):
    code = main(["submit", "--history", str(tmp_path / "h.duckdb"), "--out-dir",
                 str(tmp_path / "s"), *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "s").exists()


def test_resume_takes_a_submission_folder_and_no_other_option(tmp_path, capsys):
    assert main(["submit", "--resume", str(tmp_path)]) == 2
    assert f"--resume {tmp_path}: no submission.json there" in capsys.readouterr().err
    assert main(["submit", "--resume", str(tmp_path), "--partition", "a"]) == 2
    assert "it takes no --partition" in capsys.readouterr().err
    assert main(["submit", "--resume", str(tmp_path), "--scenarios", "gan"]) == 2
    assert "it takes no --scenarios" in capsys.readouterr().err


def test_without_submitit_the_command_names_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "submitit", None)  # as if it were not installed
    code = main(["submit", "--partition", "a", "--history", str(tmp_path / "h.duckdb"),
                 "--devices", "cpu"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err == ("error: submitting to Slurm needs submitit: pip install -e "
                                 "'.[cluster]' (or pip install submitit)")
