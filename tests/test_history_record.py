"""Real runs into the history store, DuckDB and a real PostgreSQL alike: a run made by
`bench run` goes in whole, typed as the schema says; a run is stored complete or not at
all; what one folder holds never changes another run's rows; a stored run is known by its
contents. The runs are made once for the module: a complete one, one stopped by SIGTERM
part way, and one whose every configuration ran out of memory."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from bench.commands.run_finish import add_to_history
from bench.history.store import open_store
from bench.history.store_error import StoreError
from bench.seal import seal
from tests.conftest import FAILING_SCENARIOS, QUICK_RUN, ROOT, run_cli

pytestmark = pytest.mark.slow

SAMPLE_KEY = ["repeat", "config_id", "phase", "iteration"]


def bench_run(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bench", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, real_run):
    """Three real run folders: `complete` (conftest's), `stopped` (SIGTERM after its first
    comparison group was written: its groups timed one at a time, so that the first is
    written while the others wait) and `oom` (every configuration out of memory, or skipped
    for it)."""
    root = tmp_path_factory.mktemp("runs")
    shutil.copytree(real_run, root / "complete")
    oom = bench_run("--load", str(FAILING_SCENARIOS), "run", *QUICK_RUN, "--scenarios",
                    "test_cpu_hungry", "--batch-sizes", "8,16", "--optimizer", "sgd",
                    "--out-dir", str(root / "oom"))
    stopped = bench_run("run", *QUICK_RUN, "--scenarios", "sequential", "--batch-sizes",
                        "1,2,3,4,5,6", "--budget-s", "0.3", "--interleave", "1",
                        "--out-dir", str(root / "stopped"))
    results = root / "stopped" / "results.csv"
    deadline = time.monotonic() + 120
    while not (results.exists() and results.read_text().count("\n") > 1):
        assert stopped.poll() is None and time.monotonic() < deadline, stopped.stderr.read()
        time.sleep(0.05)
    stopped.send_signal(signal.SIGTERM)
    for proc, codes in ((oom, (0,)), (stopped, (143,))):
        _, err = proc.communicate(timeout=300)
        assert proc.returncode in codes, err
    return root


def copy_of(runs, name, tmp_path):
    return shutil.copytree(runs / name, tmp_path / name)


def counts(url):
    """Rows in each table; none where nothing made the store (a refused add makes none)."""
    try:
        store = open_store(url)
    except StoreError as exc:
        assert "does not exist" in str(exc) or "holds no runs yet" in str(exc), exc
        return {"runs": 0, "results": 0, "samples": 0}
    with store:
        return {t: store.execute(f"SELECT count(*) FROM {t}")[0][0]
                for t in ("runs", "results", "samples")}


def add(url, *folders):
    return run_cli("history", "add", *map(str, folders), "--store", url)


def refused_in_one_line(proc):
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.stderr


def test_a_real_run_goes_in_whole_and_reads_back_as_written(runs, tmp_path, store_url):
    """pandas writes an integer column with a float in it as `0.0`: the run's samples.csv
    rewritten so (the `block` of every sample) still goes in, as integers."""
    run = copy_of(runs, "complete", tmp_path)
    written = pd.read_csv(run / "samples.csv")
    floats = written.assign(block=written["block"].astype(float))
    floats.to_csv(run / "samples.csv", index=False)
    assert "0.0," in (run / "samples.csv").read_text()
    proc = add(store_url, run)
    assert proc.returncode == 0, proc.stderr
    results = pd.read_csv(run / "results.csv")
    assert counts(store_url) == {"runs": 1, "results": len(results), "samples": len(written)}
    # 1 batch size x 2 setups x 4 phases; every measured phase has its samples
    assert len(results) == 8 and set(results["status"]) == {"ok"}
    with open_store(store_url) as store:
        stored = store.frame("SELECT * FROM samples").sort_values(SAMPLE_KEY)
    expected = written.sort_values(SAMPLE_KEY)
    assert stored["block"].tolist() == expected["block"].tolist()
    assert all(type(b) is int for b in stored["block"].tolist())
    assert stored["device_ms"].tolist() == pytest.approx(expected["device_ms"].tolist())


def test_an_interrupted_run_waits_for_the_resume_that_completes_it(runs, tmp_path, store_url):
    run = copy_of(runs, "stopped", tmp_path)
    measured = pd.read_csv(run / "results.csv")["config_id"].nunique()
    assert 0 < measured < 12  # 6 batch sizes x 2 setups planned
    err = refused_in_one_line(add(store_url, run))
    assert f"is not complete ({12 - measured} of 12 configurations not measured yet)" in err
    assert f"python -m bench run --resume {run}" in err
    assert counts(store_url) == {"runs": 0, "results": 0, "samples": 0}

    resumed = run_cli("run", "--resume", str(run), "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    proc = add(store_url, run)
    assert proc.returncode == 0 and " added (48 rows, " in proc.stdout, proc.stderr
    assert counts(store_url)["results"] == 48
    # added again after a resume that had nothing left to measure: the same run
    again = run_cli("run", "--resume", str(run), "--quiet")
    assert again.returncode == 0 and len(json.loads((run / "env.json").read_text())["resumes"]) == 2
    proc = add(store_url, run)
    assert proc.returncode == 0 and "already in the store" in proc.stdout, proc.stderr


def test_a_run_whose_every_configuration_ran_out_of_memory_is_stored(runs, store_url):
    proc = add(store_url, runs / "oom")
    assert proc.returncode == 0, proc.stderr
    with open_store(store_url) as store:
        statuses = store.execute("SELECT batch_size, status, count(*) FROM results "
                                 "GROUP BY 1, 2 ORDER BY 1")
    # batch 8 ran out of memory and batch 16 was skipped for it: 2 setups x 4 phases each
    assert statuses == [(8, "oom", 8), (16, "skipped", 8)]
    assert counts(store_url)["samples"] == 0


def test_one_folder_never_changes_another_runs_rows(runs, tmp_path, store_url):
    """Run C's folder, consistent but for samples.csv, which holds run B's samples."""
    b = copy_of(runs, "complete", tmp_path)
    assert add(store_url, b).returncode == 0
    before = counts(store_url)
    c = shutil.copytree(b, tmp_path / "c")
    results = pd.read_csv(c / "results.csv")
    b_id = results["run_id"].iloc[0]
    results.assign(run_id="run-c").to_csv(c / "results.csv", index=False)
    for name in ("env.json", "sweep.json"):
        record = json.loads((c / name).read_text())
        (c / name).write_text(json.dumps(seal({**record, "run_id": "run-c"})))
    err = refused_in_one_line(add(store_url, c))
    assert f"samples.csv: line 2 holds a sample of run '{b_id}', not of run-c" in err
    # the records of another run, however sealed
    pd.read_csv(c / "samples.csv").assign(run_id="run-c").to_csv(c / "samples.csv", index=False)
    (c / "env.json").write_text((b / "env.json").read_text())
    err = refused_in_one_line(add(store_url, c))
    assert f"env.json is of run '{b_id}', not of run-c" in err
    assert counts(store_url) == before


def test_a_status_outside_the_known_set_is_refused(runs, tmp_path, store_url):
    run = copy_of(runs, "complete", tmp_path)
    results = pd.read_csv(run / "results.csv")
    results.loc[3, "status"] = "maybe"
    results.to_csv(run / "results.csv", index=False)
    err = refused_in_one_line(add(store_url, run))
    assert "results.csv: line 5: status holds 'maybe', not one of ok, oom, skipped, " \
           "nonfinite, error" in err
    assert counts(store_url) == {"runs": 0, "results": 0, "samples": 0}


def test_edited_records_are_refused(runs, tmp_path, store_url):
    """A sweep.json that no longer plans what the run did not measure, and an env.json
    that names another torch: neither is what the run wrote."""
    run = copy_of(runs, "stopped", tmp_path)
    sweep = json.loads((run / "sweep.json").read_text())
    measured = pd.read_csv(run / "results.csv")["config_id"].unique().tolist()
    (run / "sweep.json").write_text(json.dumps({**sweep, "configurations": measured}))
    err = refused_in_one_line(add(store_url, run))
    assert "sweep.json is not what the run wrote: it was edited since" in err
    complete = copy_of(runs, "complete", tmp_path)
    env = json.loads((complete / "env.json").read_text())
    (complete / "env.json").write_text(json.dumps({**env, "torch_version": "9.9.9"}))
    err = refused_in_one_line(add(store_url, complete))
    assert "env.json is not what the run wrote" in err
    assert counts(store_url) == {"runs": 0, "results": 0, "samples": 0}


def test_an_env_record_whose_digest_was_removed_is_refused(runs, tmp_path, store_url):
    """A run whose sweep.json is sealed sealed its env.json too: one without a digest was
    edited, and is refused as one whose digest no longer matches would be."""
    run = copy_of(runs, "complete", tmp_path)
    env = json.loads((run / "env.json").read_text())
    del env["digest"]
    (run / "env.json").write_text(json.dumps({**env, "hostname": "forged",
                                              "torch_version": "9.9.9"}))
    err = refused_in_one_line(add(store_url, run))
    assert f"error: {run / 'env.json'} has lost its 'digest': it is not what the run " \
           "wrote" in err
    assert counts(store_url) == {"runs": 0, "results": 0, "samples": 0}


def test_a_stored_run_is_known_by_its_contents(runs, tmp_path, store_url, capsys):
    """The same values written again (pandas' spelling of the CSV) are the same run; one
    value changed is another, refused, and the stored one stays as it was."""
    run = copy_of(runs, "complete", tmp_path)
    assert " added (8 rows, " in add(store_url, run).stdout
    results = pd.read_csv(run / "results.csv")
    results.to_csv(run / "results.csv", index=False)  # other bytes, the same values
    proc = add(store_url, run)
    assert proc.returncode == 0 and "already in the store" in proc.stdout, proc.stderr
    results.loc[results["phase"] == "step", "median_ms"] *= 2
    results.to_csv(run / "results.csv", index=False)
    err = refused_in_one_line(add(store_url, run))
    assert "is already in the store with other contents" in err
    # what a run's own add (`run --history`, or its resume's) says then: no later add can
    # succeed, so it is not offered
    assert add_to_history(run, store_url) is False
    said = capsys.readouterr().err
    assert "is already in the store with other contents" in said and "adds it later" not in said
    with open_store(store_url) as store:
        (stored,) = store.execute("SELECT max(median_ms) FROM results WHERE phase = 'step'")[0]
    assert stored == pytest.approx(results.loc[results["phase"] == "step", "median_ms"].max() / 2)


def test_a_configuration_missing_one_phase_row_is_refused(runs, tmp_path, store_url):
    """Every configuration planned is there, but one lacks its backward row: the run is
    damaged, not complete, and nothing of it is stored."""
    run = copy_of(runs, "complete", tmp_path)
    results = pd.read_csv(run / "results.csv")
    lost = results.index[results["phase"].eq("backward")][1]
    config = results.loc[lost, "config_id"]
    kept = results.drop(index=lost)
    kept.to_csv(run / "results.csv", index=False)
    samples = pd.read_csv(run / "samples.csv")
    gone = samples["config_id"].eq(config) & samples["phase"].eq("backward")
    samples[~gone].to_csv(run / "samples.csv", index=False)
    err = refused_in_one_line(add(store_url, run))
    assert f"{config} (repeat 1) has 3 phase rows (forward, optimizer, step), not one per " \
           "phase (forward, backward, optimizer, step): the file is damaged" in err
    assert counts(store_url) == {"runs": 0, "results": 0, "samples": 0}


@pytest.mark.parametrize("file, column, value", [
    ("results.csv", "batch_size", "9223372036854775808"),  # 2**63: one past BIGINT
    ("results.csv", "batch_size", "-9223372036854775809"),
    ("samples.csv", "iteration", "1e30"),
    ("samples.csv", "iteration", "18446744073709551616"),  # 2**64: past pandas' int64
])
def test_an_integer_no_store_can_hold_is_refused(runs, tmp_path, store_url, file, column,
                                                 value):
    """A store keeps integers in 64 bits: one past them would be stored wrapped round to
    another number (2**63 as -2**63), so it is refused, by line and column."""
    run = copy_of(runs, "complete", tmp_path)
    table = pd.read_csv(run / file, dtype=str, keep_default_na=False)
    table.loc[2, column] = value
    table.to_csv(run / file, index=False)
    err = refused_in_one_line(add(store_url, run))
    assert f"{file}: line 4: {column} holds '{value}', out of range (a 64-bit integer)" in err
    assert counts(store_url) == {"runs": 0, "results": 0, "samples": 0}


def test_the_largest_64_bit_integer_goes_in_as_itself(runs, tmp_path):
    """2**63 - 1, the last a store holds, is stored and read back exactly."""
    run = copy_of(runs, "complete", tmp_path)
    samples = pd.read_csv(run / "samples.csv", dtype=str, keep_default_na=False)
    samples.loc[0, "iteration"] = str(2 ** 63 - 1)
    samples.to_csv(run / "samples.csv", index=False)
    url = str(tmp_path / "h.duckdb")
    proc = add(url, run)
    assert proc.returncode == 0, proc.stderr
    with open_store(url) as store:
        assert store.execute("SELECT max(iteration) FROM samples")[0][0] == 2 ** 63 - 1


def edit_cells(run, file, changes):
    """``changes``: {(row, column): text}, written as the file's text cells."""
    table = pd.read_csv(run / file, dtype=str, keep_default_na=False)
    for (row, column), value in changes.items():
        table.loc[row, column] = value
    table.to_csv(run / file, index=False)


def test_integers_past_2_53_go_in_exactly_whatever_else_the_column_spells(runs, tmp_path):
    """pandas reads `1.0` or `0.0` beside them as floats, which round 2**63 - 1 to 2**63 (a
    store then wraps it round) and 2**53 + 1 to 2**53: each goes in as written."""
    run = copy_of(runs, "complete", tmp_path)
    edit_cells(run, "results.csv", {(0, "seed"): str(2 ** 63 - 1), (1, "seed"): "1.0",
                                    (2, "seed"): str(2 ** 53 + 1), (3, "seed"): "0.0"})
    edit_cells(run, "samples.csv", {(0, "block"): str(2 ** 53 + 1), (1, "block"): "0.0"})
    url = str(tmp_path / "h.duckdb")
    proc = add(url, run)
    assert proc.returncode == 0, proc.stderr
    with open_store(url) as store:
        seeds = sorted(v for (v,) in store.execute("SELECT seed FROM results"))
        blocks = {v for (v,) in store.execute("SELECT block FROM samples")}
    assert seeds[-2:] == [2 ** 53 + 1, 2 ** 63 - 1] and seeds[:2] == [0, 0]
    assert 2 ** 53 + 1 in blocks


@pytest.mark.parametrize("file, changes, expected", [
    # an integer column that may be empty is read as floats: past 2**53 it would round
    ("results.csv", {(0, "flops"): str(2 ** 63 - 1), (1, "flops"): ""},
     f"line 2: flops holds '{2 ** 63 - 1}', past 2**53 in a column with empty cells"),
    ("results.csv", {(0, "threads"): ""}, "line 2: threads holds '', where every row has a "
     "number"),
    ("samples.csv", {(4, "device_ms"): "nan"}, "line 6: device_ms holds 'nan', where every "
     "row has a number"),
    ("results.csv", {(1, "hostname"): "vm\x00forged"}, "line 3: hostname holds a NUL "
     "character, which no store keeps"),
])
def test_cells_the_schema_does_not_allow_are_refused_by_line(runs, tmp_path, store_url, file,
                                                             changes, expected):
    run = copy_of(runs, "complete", tmp_path)
    edit_cells(run, file, changes)
    err = refused_in_one_line(add(store_url, run))
    assert f"{file}: {expected}" in err
    assert counts(store_url) == {"runs": 0, "results": 0, "samples": 0}


def test_a_row_not_measured_says_why_and_has_no_figures(runs, tmp_path):
    url = str(tmp_path / "h.duckdb")
    run = copy_of(runs, "oom", tmp_path)
    edit_cells(run, "results.csv", {(0, "median_ms"): "1.5"})
    err = refused_in_one_line(add(url, run))
    assert "results.csv: line 2: median_ms holds '1.5' on a row whose status is oom: a " \
           "configuration not measured has no figures" in err
    run = shutil.copytree(runs / "oom", tmp_path / "silent")
    edit_cells(run, "results.csv", {(0, "error"): ""})
    err = refused_in_one_line(add(url, run))
    assert "results.csv: line 2: status is oom but error is empty" in err


def test_a_run_without_its_plan_is_not_stored_in_part(runs, tmp_path, store_url):
    """An interrupted run whose sweep.json is deleted, or stripped of its plan and digest:
    its sealed env.json says a sweep wrote it, so the plan is asked for."""
    run = copy_of(runs, "stopped", tmp_path)
    sweep = json.loads((run / "sweep.json").read_text())
    (run / "sweep.json").unlink()
    err = refused_in_one_line(add(store_url, run))
    assert "sweep.json is missing: the run's sweep wrote it" in err
    stripped = {k: v for k, v in sweep.items() if k not in ("configurations", "digest")}
    (run / "sweep.json").write_text(json.dumps(stripped))
    err = refused_in_one_line(add(store_url, run))
    assert "sweep.json has lost its 'configurations'" in err
    assert counts(store_url) == {"runs": 0, "results": 0, "samples": 0}


def test_a_refused_add_makes_no_store(runs, tmp_path, store_url):
    from tests.test_history_shared import tables_of
    proc = add(store_url, tmp_path / "nothing")
    assert "no such run folder" in refused_in_one_line(proc)
    err = refused_in_one_line(add(store_url, runs / "stopped"))
    assert "is not complete" in err
    if store_url.startswith("postgresql://"):
        assert tables_of(store_url) == set()
    else:
        assert not Path(store_url).exists()


@pytest.mark.parametrize("changes, expected", [
    ({(0, "n_samples"): ""}, "line 2: n_samples is empty on a measured row"),
    ({(1, "mean_ms"): "nan"}, "line 3: mean_ms is empty on a measured row"),
    ({(2, "noisy"): ""}, "line 4: noisy is empty on a measured row"),
])
def test_a_measured_row_has_every_figure(runs, tmp_path, changes, expected):
    run = copy_of(runs, "complete", tmp_path)
    edit_cells(run, "results.csv", changes)
    err = refused_in_one_line(add(str(tmp_path / "h.duckdb"), run))
    assert f"results.csv: {expected}: a measured configuration has every figure" in err


def test_a_row_not_measured_is_stored_without_a_noise_flag(runs, store_url):
    """`noisy` is empty on a row not measured, and a reader takes an empty flag for False:
    the store keeps it empty (NULL) there, and True or False on the measured rows."""
    assert add(store_url, runs / "oom").returncode == 0
    with open_store(store_url) as store:
        assert store.execute("SELECT status, count(*) FROM results WHERE noisy IS NULL "
                             "GROUP BY status ORDER BY status") == [("oom", 8), ("skipped", 8)]


def test_a_never_empty_integer_written_as_a_float_past_2_53_goes_in_exactly(runs, tmp_path):
    run = copy_of(runs, "complete", tmp_path)
    edit_cells(run, "samples.csv", {(0, "iteration"): "9007199254740995.0",
                                    (1, "iteration"): "9.007199254740993e15"})
    url = str(tmp_path / "h.duckdb")
    proc = add(url, run)
    assert proc.returncode == 0, proc.stderr
    with open_store(url) as store:
        got = {v for (v,) in store.execute("SELECT iteration FROM samples")}
    assert {9007199254740995, 9007199254740993} <= got


@pytest.mark.parametrize("file, changes, expected", [
    # a float rounds each to a whole number: the text says otherwise
    ("results.csv", {(0, "flops"): "9007199254740990.7"},
     "line 2: flops holds '9007199254740990.7', not an integer"),
    ("results.csv", {(0, "ops"): "1.00000000000000001"},
     "line 2: ops holds '1.00000000000000001', not an integer"),
    # an ok row says nothing in error; an empty cell in samples of a measured row
    ("results.csv", {(0, "error"): "boom"}, "line 2: error holds 'boom' on a measured row"),
])
def test_what_a_float_or_a_status_would_hide_is_refused(runs, tmp_path, file, changes,
                                                        expected):
    run = copy_of(runs, "complete", tmp_path)
    edit_cells(run, file, changes)
    err = refused_in_one_line(add(str(tmp_path / "h.duckdb"), run))
    assert f"{file}: {expected}" in err


def test_a_measured_row_whose_samples_are_gone_is_refused(runs, tmp_path):
    """Stored so, its resume would measure the row again and make another run of it, which
    the store would then refuse for good."""
    run = copy_of(runs, "complete", tmp_path)
    samples = pd.read_csv(run / "samples.csv")
    config = samples["config_id"].iloc[0]
    gone = samples["config_id"].eq(config) & samples["phase"].eq("optimizer")
    samples[~gone].to_csv(run / "samples.csv", index=False)
    err = refused_in_one_line(add(str(tmp_path / "h.duckdb"), run))
    assert f"records {config} optimizer (repeat 1) as measured, but samples.csv holds none " \
           "of its samples" in err


def test_two_folders_of_one_run_with_other_contents_write_nothing(runs, tmp_path):
    first = copy_of(runs, "complete", tmp_path)
    second = shutil.copytree(first, tmp_path / "second")
    edit_cells(second, "results.csv", {(0, "seed"): "7"})
    url = str(tmp_path / "h.duckdb")
    err = refused_in_one_line(add(url, first, second))
    assert f"{first} and {second} are both run " in err
    assert not Path(url).exists()


def test_rows_that_name_their_worker_ask_for_the_plan(runs, tmp_path):
    """env.json and sweep.json both deleted: the rows still say a sweep's worker wrote
    them, and a sweep plans its run in sweep.json."""
    run = copy_of(runs, "stopped", tmp_path)
    (run / "sweep.json").unlink()
    (run / "env.json").unlink()
    err = refused_in_one_line(add(str(tmp_path / "h.duckdb"), run))
    assert "sweep.json is missing: the run's sweep wrote it" in err
