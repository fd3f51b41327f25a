"""A run the store keeps is what its sweep wrote, whole: every column, every never-empty
cell, each measured phase with as many samples as its row counted, counts never negative;
and what `history add` suggests for a run that is not (`run --resume`) makes it so.
On copies of a real `bench run` folder, added to a real DuckDB store."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

import duckdb
import pandas as pd
import pytest

from tests.conftest import ROOT, TINY_RUN, run_cli
from tests.support.refusals import refused_in_one_line as refused


def history_add(folder, store):
    return run_cli("history", "add", str(folder), "--store", str(store))


@pytest.fixture
def copy(real_run, tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(real_run, folder)
    return folder


def results_text(folder) -> pd.DataFrame:
    return pd.read_csv(folder / "results.csv", dtype=str, keep_default_na=False)


def write_results(folder, table: pd.DataFrame) -> None:
    table.to_csv(folder / "results.csv", index=False)


def stored_samples(store) -> int:
    with duckdb.connect(str(store), read_only=True) as con:
        return con.execute("SELECT count(*) FROM multinet_bench.samples").fetchall()[0][0]


@pytest.mark.slow
def test_a_phase_that_lost_samples_is_refused_and_resume_measures_it_again(copy, tmp_path):
    lines = (copy / "samples.csv").read_text().splitlines(keepends=True)
    samples = pd.read_csv(copy / "samples.csv")
    last = samples.iloc[-1]
    # the last phase short of some samples, not all (a loaded machine's run may take as few
    # as --min-samples of them; one with none left is refused in other words)
    taken = (samples["config_id"].eq(last["config_id"]) & samples["phase"].eq(last["phase"]))
    cut = min(5, int(taken.sum()) - 1)
    assert cut >= 1
    (copy / "samples.csv").write_text("".join(lines[:-cut]))
    store = tmp_path / "h.duckdb"
    err = refused(history_add(copy, store), "samples were lost or added", "--resume")
    counted = results_text(copy).set_index(["config_id", "phase"]).loc[
        (last["config_id"], last["phase"]), "n_samples"]
    held = sum(1 for line in lines[1:-cut] if f",{last['config_id']},{last['phase']}," in line)
    assert f"holds {held} samples" in err and f"counted {int(float(counted))}" in err
    assert held == int(float(counted)) - cut
    assert not store.exists()
    # the advice works: the resume measures that configuration again, and the add lands
    proc = run_cli("run", "--resume", str(copy), "--quiet")
    assert proc.returncode == 0, proc.stderr
    samples = pd.read_csv(copy / "samples.csv")
    results = pd.read_csv(copy / "results.csv")
    per_phase = samples.groupby(["config_id", "phase"]).size()
    assert (per_phase == results.set_index(["config_id", "phase"])["n_samples"]
            .loc[per_phase.index]).all()
    assert not samples.duplicated(["repeat", "config_id", "phase", "iteration"]).any()
    assert history_add(copy, store).returncode == 0
    assert stored_samples(store) == len(samples) == results["n_samples"].sum()


def test_a_phase_without_any_samples_is_measured_again_on_resume(copy, tmp_path):
    samples = pd.read_csv(copy / "samples.csv", dtype=str, keep_default_na=False)
    config = samples["config_id"].iloc[0]
    gone = (samples["config_id"] == config) & (samples["phase"] == "step")
    samples[~gone].to_csv(copy / "samples.csv", index=False)
    store = tmp_path / "h.duckdb"
    refused(history_add(copy, store), "holds none of its samples", "--resume")
    proc = run_cli("run", "--resume", str(copy), "--quiet")
    assert proc.returncode == 0, proc.stderr
    after = pd.read_csv(copy / "samples.csv")
    assert ((after["config_id"] == config) & (after["phase"] == "step")).sum() > 0
    assert history_add(copy, store).returncode == 0


@pytest.mark.slow
@pytest.mark.parametrize("column, value", [("n_samples", "-5"), ("blocks", "-1"),
                                           ("batch_size", "-2")])
def test_a_negative_count_is_refused(copy, tmp_path, column, value):
    table = results_text(copy)
    table.loc[0, column] = value
    write_results(copy, table)
    refused(history_add(copy, tmp_path / "h.duckdb"), f"line 2: {column} holds {value}",
            "never negative")


def test_a_negative_sample_index_is_refused(copy, tmp_path):
    samples = pd.read_csv(copy / "samples.csv", dtype=str, keep_default_na=False)
    samples.loc[3, "iteration"] = "-1"
    samples.to_csv(copy / "samples.csv", index=False)
    refused(history_add(copy, tmp_path / "h.duckdb"), "line 5: iteration holds -1")


def test_a_column_dropped_from_results_is_refused_by_name(copy, tmp_path):
    write_results(copy, results_text(copy).drop(columns=["ci_low_ms", "seed", "hostname"]))
    refused(history_add(copy, tmp_path / "h.duckdb"), "lacks the column(s)", "seed",
            "ci_low_ms", "hostname")


@pytest.mark.parametrize("column", ["error", pytest.param("status", marks=pytest.mark.slow)])
def test_results_without_the_columns_a_status_needs_are_refused_by_name(copy, tmp_path,
                                                                          column):
    write_results(copy, results_text(copy).drop(columns=[column]))
    refused(history_add(copy, tmp_path / "h.duckdb"), "lacks the column(s)", column)


@pytest.mark.parametrize("column", ["host_ms", *(pytest.param(c, marks=pytest.mark.slow)
                                                 for c in ("block", "iteration"))])
def test_a_column_dropped_from_samples_is_refused_by_name(copy, tmp_path, column):
    samples = pd.read_csv(copy / "samples.csv", dtype=str, keep_default_na=False)
    samples.drop(columns=[column]).to_csv(copy / "samples.csv", index=False)
    refused(history_add(copy, tmp_path / "h.duckdb"), "samples.csv lacks the column(s)",
            column)
    assert not (tmp_path / "h.duckdb").exists()


def test_a_column_no_sweep_writes_is_refused_not_dropped(copy, tmp_path):
    table = results_text(copy)
    table["my_note"] = "x"
    write_results(copy, table)
    refused(history_add(copy, tmp_path / "h.duckdb"), "results.csv has the column(s)",
            "my_note", "which no sweep writes")


@pytest.mark.slow
@pytest.mark.parametrize("column", ["hostname", "torch_version", "started_at", "world_size"])
def test_a_never_empty_cell_left_empty_is_refused(copy, tmp_path, column):
    table = results_text(copy)
    table.loc[2, column] = ""
    write_results(copy, table)
    refused(history_add(copy, tmp_path / "h.duckdb"), f"line 4: {column}")


def test_a_start_time_that_is_no_time_is_refused(copy, tmp_path):
    table = results_text(copy)
    table["started_at"] = "notadate"
    write_results(copy, table)
    refused(history_add(copy, tmp_path / "h.duckdb"), "started_at holds 'notadate'",
            "ISO 8601")


def test_axes_that_contradict_the_configuration_id_are_refused(copy, tmp_path):
    table = results_text(copy)
    assert "/bs2/" in table.loc[0, "config_id"]
    table.loc[0, "batch_size"] = "3"
    write_results(copy, table)
    refused(history_add(copy, tmp_path / "h.duckdb"), "line 2: config_id",
            "/bs3/")  # what the axes name, beside the id the row gives


@pytest.mark.slow
def test_a_run_stopped_before_its_first_configuration_is_not_complete(tmp_path):
    folder = tmp_path / "run"
    sweep = subprocess.Popen([sys.executable, "-m", "bench", "run", *TINY_RUN,
                              "--batch-sizes", "2,4,8", "--out-dir", str(folder)], cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not (folder / "sweep.json").exists() or not (folder / "results.csv").exists():
            assert sweep.poll() is None
            time.sleep(0.01)
        if len((folder / "results.csv").read_text().splitlines()) > 1:
            pytest.skip("the first configuration was written before the kill")
    finally:
        sweep.kill()
        sweep.wait()
    if len((folder / "results.csv").read_text().splitlines()) > 1:
        pytest.skip("the first configuration was written before the kill")
    err = refused(history_add(folder, tmp_path / "h.duckdb"), "is not complete",
                  "0 of 6 configurations", f"python -m bench run --resume {folder}")
    assert "header but no rows" not in err


def test_an_empty_count_on_a_measured_row_is_one_line_with_or_without_a_plan(copy, tmp_path):
    table = results_text(copy)
    table.loc[0, "n_samples"] = ""
    write_results(copy, table)
    refused(history_add(copy, tmp_path / "a.duckdb"), "n_samples is empty")
    for name in ("sweep.json", "env.json"):  # a run imported without its sweep
        (copy / name).unlink()
    table["worker"] = ""
    write_results(copy, table)
    refused(history_add(copy, tmp_path / "b.duckdb"), "n_samples is empty")


def test_a_worker_emptied_on_some_rows_is_refused(copy, tmp_path):
    table = results_text(copy)
    assert table["worker"].ne("").all()
    table.loc[3, "worker"] = ""
    write_results(copy, table)
    refused(history_add(copy, tmp_path / "h.duckdb"), "line 5: worker is empty on some rows")


def test_a_group_that_differs_within_a_configuration_is_refused(copy, tmp_path):
    table = results_text(copy)
    config = table.loc[0, "config_id"]
    assert table.loc[table["config_id"] == config, "group"].nunique() == 1
    table.loc[1, "group"] = ""
    write_results(copy, table)
    refused(history_add(copy, tmp_path / "h.duckdb"), f"{config} (repeat 1) names more than "
            "one group")


def test_a_throughput_emptied_where_its_flops_and_time_are_is_refused(copy, tmp_path):
    table = results_text(copy)
    line = next(i for i, f in enumerate(table["flops"]) if float(f or 0) > 0)
    table.loc[line, "tflops_per_s"] = ""
    write_results(copy, table)
    refused(history_add(copy, tmp_path / "h.duckdb"), f"line {line + 2}: tflops_per_s is "
            "empty")


@pytest.mark.slow
@pytest.mark.parametrize("special", ["device", "fifo"])
def test_a_samples_file_that_is_no_plain_file_is_refused_not_read_forever(copy, tmp_path,
                                                                         special):
    import os
    (copy / "samples.csv").unlink()
    if special == "device":
        (copy / "samples.csv").symlink_to("/dev/zero")
    else:
        os.mkfifo(copy / "samples.csv")
    refused(history_add(copy, tmp_path / "h.duckdb"), "is not a plain file")
    refused(run_cli("run", "--resume", str(copy), "--quiet", timeout=60), "is not a plain file")


def test_a_missing_env_json_is_called_missing(copy, tmp_path):
    (copy / "env.json").unlink()
    err = refused(history_add(copy, tmp_path / "h.duckdb"), "env.json is missing")
    assert "digest" not in err


@pytest.mark.parametrize("column, value, record", [
    ("torch_version", "9.9.9", "env.json records"),
    ("device_name", "NVIDIA H100 80GB HBM3", "sweep.json (for 'cpu') records")])
def test_a_row_naming_another_torch_or_device_than_the_records_is_refused(
        copy, tmp_path, column, value, record):
    """It would be stored as that version's or that GPU's run."""
    table = results_text(copy)
    table.loc[3, column] = value
    write_results(copy, table)
    env, sweep = (json.loads((copy / name).read_text()) for name in ("env.json", "sweep.json"))
    wanted = {"torch_version": env["torch_version"],
              "device_name": sweep["device_names"]["cpu"]}[column]
    refused(history_add(copy, tmp_path / "h.duckdb"), f"line 5: {column} is {value!r}, but "
            f"{record} {wanted!r}")
