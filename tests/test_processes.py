"""Sweeps in real ``python -m bench run`` processes: out of memory, SIGINT and SIGTERM, and
``--resume`` completing what a signal stopped."""

import json
import os
import shlex
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from bench.schema import FIELDS
from tests.conftest import FAILING_SCENARIOS, ROOT
from tests.support.disk_full import file_size_limited, uncovered_environment

pytestmark = pytest.mark.slow
# one process, one group at a time: a signal then finds one configuration in progress
QUICK = ["--warmup-iters", "1", "--warmup-s", "0", "--min-samples", "3", "--threads", "1",
         "--workers", "1", "--interleave", "1"]
KEY = ["repeat", "config_id"]


def start(args: list[str], log_dir, name: str, **popen) -> subprocess.Popen:
    env = {**popen.pop("env", os.environ), "PYTHONPATH": str(ROOT)}
    with open(log_dir / f"{name}.out", "w") as out, open(log_dir / f"{name}.err", "w") as err:
        return subprocess.Popen([sys.executable, "-m", "bench", *args], cwd=ROOT, env=env,
                                stdout=out, stderr=err, **popen)


def configs_on_disk(out_dir) -> int:
    path = out_dir / "results.csv"
    return (path.read_text().count("\n") - 1) // 4 if path.exists() else 0


def wait_until(condition, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def resume_command(stderr: str) -> list[str]:
    line = next(line for line in stderr.splitlines() if "to continue: " in line)
    command = shlex.split(line.split("to continue: ", 1)[1])
    assert command[0] in ("python", sys.executable) and command[1:3] == ["-m", "bench"]
    return command[3:]


def complete_configurations(out_dir) -> pd.DataFrame:
    """results.csv as pandas reads it, checked to hold whole configurations only."""
    df = pd.read_csv(out_dir / "results.csv")
    assert tuple(df.columns) == FIELDS
    assert df.groupby(KEY).size().eq(4).all() and df.notna().config_id.all()
    return df


def test_out_of_memory_in_a_real_process_completes_the_sweep(tmp_path):
    out = tmp_path / "run"
    proc = start(["--load", str(FAILING_SCENARIOS), "run", "--scenarios",
                  "test_cpu_hungry,sequential", "--batch-sizes", "2,8,16", "--devices", "cpu",
                  "--optimizer-setups", "single", "--budget-s", "0", *QUICK,
                  "--out-dir", str(out)], tmp_path, "oom")
    assert proc.wait(timeout=120) == 0, (tmp_path / "oom.err").read_text()
    df = complete_configurations(out)
    statuses = df.drop_duplicates(KEY).set_index(["scenario", "batch_size"]).status.to_dict()
    assert statuses == {("test_cpu_hungry", 2): "ok", ("test_cpu_hungry", 8): "oom",
                        ("test_cpu_hungry", 16): "skipped", ("sequential", 2): "ok",
                        ("sequential", 8): "ok", ("sequential", 16): "ok"}
    assert "Configurations: 4 ok, 1 oom, 1 skipped." in (tmp_path / "oom.out").read_text()


def test_sigterm_then_sigint_then_resume_measure_everything_once(tmp_path):
    out = tmp_path / "run"
    sweep = ["run", "--scenarios", "sequential,separate_losses", "--batch-sizes", "2,4,8,16",
             "--optimizer-setups", "separate,single", "--devices", "cpu", "--optimizer", "sgd",
             "--budget-s", "0", *QUICK, "--out-dir", str(out)]
    total = 2 * 4 * 2  # scenarios x batch sizes x optimizer setups

    proc = start(sweep, tmp_path, "first")
    wait_until(lambda: configs_on_disk(out) >= 1)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 143
    first = complete_configurations(out)
    assert 1 <= first.config_id.nunique() < total
    err = (tmp_path / "first.err").read_text()
    assert "SIGTERM: stopping after the configuration in progress" in err
    command = resume_command(err)
    assert command == ["run", "--resume", str(out)]

    proc = start(command, tmp_path, "second")
    wait_until(lambda: configs_on_disk(out) > first.config_id.nunique())
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    second = complete_configurations(out)
    assert first.config_id.nunique() < second.config_id.nunique() < total

    proc = start(resume_command((tmp_path / "second.err").read_text()), tmp_path, "third")
    assert proc.wait(timeout=120) == 0, (tmp_path / "third.err").read_text()
    final = complete_configurations(out)
    assert final.config_id.nunique() == total and len(final) == 4 * total  # each once
    assert set(final.status) == {"ok"} and final.run_id.nunique() == 1
    samples = pd.read_csv(out / "samples.csv")
    assert not samples.duplicated([*KEY, "phase", "iteration"]).any()
    counts = samples.groupby([*KEY, "phase"]).size()
    assert counts.to_dict() == final.set_index([*KEY, "phase"]).n_samples.to_dict()
    env = json.loads((out / "env.json").read_text())
    assert env["run_id"] == final.run_id[0] and len(env["resumes"]) == 2


def test_a_second_sigint_stops_at_once(tmp_path):
    out = tmp_path / "run"
    # configurations that would each sample for 5 s if left alone
    proc = start(["run", "--scenarios", "sequential", "--batch-sizes", "2", "--devices", "cpu",
                  "--optimizer-setups", "separate,single", "--budget-s", "5", "--target-ci", "0",
                  "--max-samples", "1000000", *QUICK, "--out-dir", str(out)], tmp_path, "run")
    # env.json is written last before the sweep's own handlers go in (a signal before
    # them takes the folder back: tests/test_interrupted_finish.py)
    wait_until(lambda: (out / "env.json").exists())
    time.sleep(0.5)  # into the first configuration's sampling
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    assert time.monotonic() - sent < 3  # the configuration had more than 4 s to go
    assert len(complete_configurations(out)) == 0  # abandoned, not half written
    assert len(pd.read_csv(out / "samples.csv")) == 0
    err = (tmp_path / "run.err").read_text()
    assert "2 configuration(s) not measured yet; to continue: " in err
    assert err.rstrip().endswith(f"-m bench run --resume {out}")
    assert "Traceback" not in err


def test_a_full_disk_stops_the_sweep_with_whole_configurations_kept(tmp_path):
    """A real write failure: with RLIMIT_FSIZE, a write past the limit fails with EFBIG
    (Python ignores SIGXFSZ), as one to a full disk fails with ENOSPC. A configuration's
    samples take about 8 kB here, so samples.csv reaches the limit after a few of them."""
    out = tmp_path / "run"
    limit = 30_000

    total = 2 * 2 * 2
    proc = start(["run", "--scenarios", "sequential,separate_losses", "--batch-sizes", "2,4",
                  "--optimizer-setups", "separate,single", "--devices", "cpu", "--optimizer",
                  "sgd", "--budget-s", "0", "--max-samples", "20", *QUICK[:4], "--workers", "1",
                  "--min-samples", "20", "--threads", "1", "--out-dir", str(out)],
                 tmp_path, "full", preexec_fn=file_size_limited(limit),
                 env=uncovered_environment())
    assert proc.wait(timeout=120) == 1
    err = (tmp_path / "full.err").read_text()
    assert "Traceback" not in err
    assert f"error: cannot write {out / 'samples.csv'}: File too large" in err
    first = complete_configurations(out)
    assert 1 <= first.config_id.nunique() < total
    samples = pd.read_csv(out / "samples.csv")  # no half row, no samples without results
    assert (out / "samples.csv").stat().st_size <= limit
    assert samples.groupby([*KEY, "phase"]).size().to_dict() == \
        first.set_index([*KEY, "phase"]).n_samples.to_dict()
    assert not (out / "report.html").exists()

    proc = start(resume_command(err), tmp_path, "resume")
    assert proc.wait(timeout=120) == 0, (tmp_path / "resume.err").read_text()
    final = complete_configurations(out)
    assert final.config_id.nunique() == total and len(final) == 4 * total
    kept = first.set_index([*KEY, "phase"]).median_ms
    assert final.set_index([*KEY, "phase"]).median_ms.loc[kept.index].equals(kept)


def test_a_resumed_run_prints_the_summary_of_all_its_rows(tmp_path):
    """The summary after a resume covers the rows of every process that wrote to the run,
    typed as if measured in one go: checked against pandas' own reading of the file."""
    out = tmp_path / "run"
    sweep = ["run", "--scenarios", "sequential,n_chain", "--n-networks", "3",
             "--batch-sizes", "2,4,8", "--optimizer-setups", "separate,single", "--devices", "cpu",
             "--optimizer", "sgd", "--budget-s", "0", *QUICK, "--out-dir", str(out)]
    proc = start(sweep, tmp_path, "first")
    wait_until(lambda: configs_on_disk(out) >= 1)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    assert configs_on_disk(out) < 12
    proc = start(resume_command((tmp_path / "first.err").read_text()), tmp_path, "second")
    assert proc.wait(timeout=120) == 0, (tmp_path / "second.err").read_text()
    printed = (tmp_path / "second.out").read_text()

    df = complete_configurations(out)
    assert df.config_id.nunique() == 12
    ratios = pd.read_csv(out / "ratios.csv")
    ratios = ratios[ratios.phase == "step"].set_index(["scenario", "batch_size"]).ratio
    separate = df[(df.phase == "step") & (df.optimizer_setup == "separate")]
    separate = separate.set_index(["scenario", "batch_size"]).median_ms
    # a row per group, whichever process measured it: the reference's median, then single's
    # ratio to it; n_chain's rows name its variant
    rows = [line.split() for line in printed.splitlines()
            if line.startswith(("sequential ", "n_chain "))]
    assert len(rows) == len(ratios) == 6
    for row in rows:
        i = row.index("ms")
        key = (row[0], int(row[i - 2]))
        assert float(row[i - 1]) == pytest.approx(separate[key], abs=5e-4)
        assert float(row[i + 1]) == pytest.approx(ratios[key], abs=5e-4)
        assert (row[3] == "n3") == (row[0] == "n_chain")
    noisy = int(((df.noisy == True) & (df.phase == "step")).sum())  # noqa: E712
    assert (f"{noisy} step measurement(s) flagged noisy" in printed) == (noisy > 0)
