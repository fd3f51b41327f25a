"""`python -m bench submit` against a real single-node Slurm cluster (tests/slurm_cluster.py):
two partitions' jobs land in one store and one page; a job cancelled with `scancel` is named,
its partial run kept, and `--resume` completes that same run; a data-parallel job runs
torchrun under srun."""

import json
import subprocess
import sys
import time

import pandas as pd
import pytest

from bench.history.store import open_store
from tests.support.chromium import Chromium
from tests.conftest import ROOT, chromium_or_skip

pytestmark = [pytest.mark.slow, pytest.mark.slurm]
pytest.importorskip("submitit")

TINY = ["--scenarios", "sequential", "--sizes", "seed", "--devices", "cpu",
        "--optimizer-setups", "separate,single", "--optimizer", "adam", "--optimizer-impl",
        "loop", "--budget-s", "0.05", "--min-rounds", "2", "--warmup-s", "0"]


def submit(slurm, *args, timeout=600):
    return subprocess.run([sys.executable, "-m", "bench", "submit", "--poll-s", "1", *args],
                          cwd=ROOT, env={**slurm.env(), "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=timeout)


def stored_runs(store):
    with open_store(str(store)) as history:
        rows = history.execute("SELECT run_id, env_json FROM runs ORDER BY run_id")
        counts = dict(history.execute("SELECT run_id, count(DISTINCT config_id) FROM results "
                                      "GROUP BY run_id"))
    return {run_id: (json.loads(env)["slurm"], counts[run_id]) for run_id, env in rows}


def manifest(folder):
    return json.loads((folder / "submission.json").read_text())


def test_two_partitions_land_in_one_store_and_one_page(slurm, tmp_path):
    store, out = tmp_path / "history.duckdb", tmp_path / "submission"
    proc = submit(slurm, "--partition", "alpha,beta", "--history", str(store), "--out-dir",
                  str(out), *TINY, "--batch-sizes", "1,8")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    jobs = {job["name"]: job["slurm_ids"] for job in manifest(out)["jobs"]}
    assert list(jobs) == ["alpha", "beta"] and all(len(ids) == 1 for ids in jobs.values())
    # the command said each job's state as it changed, ending with COMPLETED
    for name, (job_id,) in jobs.items():
        assert f"{name} (job {job_id}): RUNNING" in proc.stdout
        assert f"{name} (job {job_id}): COMPLETED" in proc.stdout
    runs = stored_runs(store)
    # one run per partition, each recording the job and partition it ran in; 2 setups x 2
    # batch sizes each
    assert sorted((s["partition"], s["job_id"], n) for s, n in runs.values()) == \
        [("alpha", jobs["alpha"][0], 4), ("beta", jobs["beta"][0], 4)]
    assert "Hardware comparison:" in proc.stdout and "2 of 2 runs" in proc.stdout
    with Chromium(chromium_or_skip()) as browser:
        check = browser.check_page(out / "hardware.html")
    assert check.errors == []
    # the step chart: a series per partition, a point and an interval per configuration
    step = check.charts[0]
    assert step["svg"] > 0 and step["marks"] == 2 * 4 and step["errorbars"] == 2 * 4
    assert "alpha · " in check.text and "beta · " in check.text
    assert check.headings == ["Step time by device type", "Every phase", "Runs"]


def configurations(results):
    return set(pd.read_csv(results)["config_id"])


def wait_for_rows(results, at_least, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if results.is_file() and len(results.read_text().splitlines()) > at_least:
            return
        time.sleep(0.5)
    raise AssertionError(f"{results} got no rows in {timeout} s")


def test_a_cancelled_job_is_named_kept_and_resumed(slurm, tmp_path):
    store, out = tmp_path / "history.duckdb", tmp_path / "submission"
    # groups timed one at a time: the first is written long before the last
    args = ["--partition", "beta", "--history", str(store), "--out-dir", str(out),
            *TINY[:-6], "--budget-s", "0.4", "--min-rounds", "2", "--warmup-s", "0",
            "--scenarios", "sequential,shared_input,detached", "--batch-sizes", "1,8",
            "--interleave", "1"]
    process = subprocess.Popen([sys.executable, "-m", "bench", "submit", "--poll-s", "1",
                                *args], cwd=ROOT, env={**slurm.env(), "PYTHONPATH": str(ROOT)},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    results = out / "runs" / "beta" / "results.csv"
    wait_for_rows(results, 1)  # a configuration is written: the job runs the sweep
    job_id = manifest(out)["jobs"][0]["slurm_ids"][0]
    assert slurm.command("scancel", job_id).returncode == 0
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 1, stdout + stderr
    assert f"beta (job {job_id}): CANCELLED; its partial run is kept in {out / 'runs' / 'beta'}" \
        in stderr
    assert f"python -m bench submit --resume {out}" in stderr
    partial = configurations(results)
    assert 1 <= len(partial) < 12  # some of 3 scenarios x 2 batches x 2 setups
    assert stored_runs(store) == {}  # an incomplete run never enters the store
    run_id = json.loads((out / "runs" / "beta" / "sweep.json").read_text())["run_id"]

    resumed = submit(slurm, "--resume", str(out))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    new_id = manifest(out)["jobs"][0]["slurm_ids"]
    assert new_id[0] == job_id and len(new_id) == 2
    assert f"Submitted beta again as job {new_id[1]} (job {job_id} ended CANCELLED)" \
        in resumed.stdout
    # the same run, continued: what was measured before is kept, the rest added once
    runs = stored_runs(store)
    assert list(runs) == [run_id] and runs[run_id][1] == 12
    after = configurations(results)
    assert partial <= after and len(after) == 12
    # a complete submission resumed again submits nothing
    again = submit(slurm, "--resume", str(out))
    assert again.returncode == 0 and "Submitted" not in again.stdout
    assert len(manifest(out)["jobs"][0]["slurm_ids"]) == 2


def test_a_data_parallel_job_runs_torchrun_under_srun(slurm, tmp_path):
    store, out = tmp_path / "history.duckdb", tmp_path / "submission"
    proc = submit(slurm, "--partition", "alpha", "--distributed", "--procs-per-node", "2",
                  "--history", str(store), "--out-dir", str(out), *TINY,
                  "--optimizer-setups", "separate", "--batch-sizes", "4")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    env = json.loads((out / "runs" / "alpha" / "env.json").read_text())
    assert env["world_size"] == 2 and len(env["ranks"]) == 2
    assert env["slurm"]["partition"] == "alpha"
    (slurm_info, configs), = stored_runs(store).values()
    assert configs == 1


def test_an_unknown_partition_is_refused_before_anything_is_submitted(slurm, tmp_path):
    proc = submit(slurm, "--partition", "alpha,gamma", "--history",
                  str(tmp_path / "h.duckdb"), "--out-dir", str(tmp_path / "s"), *TINY)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("error: --partition: no partition 'gamma' on this cluster; "
                                   "it has: alpha, beta")
    assert not (tmp_path / "s").exists()
