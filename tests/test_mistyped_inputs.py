"""Inputs a user gets wrong that once passed unnoticed: an empty --store, environment names
that one file system would fold into one folder, a run id no run writes. Real subprocesses
and real run folders."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from tests.conftest import ROOT, run_cli
from tests.support.refusals import refused_in_one_line


def test_an_empty_store_is_refused_not_taken_for_the_default(tmp_path):
    proc = run_cli("history", "changes", "--store", "", cwd=tmp_path)
    refused_in_one_line(proc, "--store is empty")
    assert not (tmp_path / "results").exists()  # the default store was not made


def test_an_empty_history_is_refused_before_measuring_not_taken_for_none(tmp_path):
    proc = run_cli("run", "--scenarios", "sequential", "--batch-sizes", "1", "--out-dir",
                   str(tmp_path / "run"), "--history", "")
    refused_in_one_line(proc, "--history is empty; give a DuckDB file or a postgresql:// URL")
    assert not (tmp_path / "run").exists()


def test_a_store_the_run_folder_would_take_is_refused_before_measuring(tmp_path):
    """The folder as the store, or a file in it: found only after the sweep otherwise."""
    run = tmp_path / "run"
    for store, where in ((run, "is the run folder"), (run / "h.duckdb", "is in the run folder")):
        proc = run_cli("run", "--scenarios", "sequential", "--batch-sizes", "1", "--out-dir",
                       str(run), "--history", str(store))
        refused_in_one_line(proc, f"--history {store} {where} {run}; give a store outside it")
        assert not run.exists()


@pytest.mark.slow
def test_an_add_keeps_its_store_out_of_the_run_folders(real_run, tmp_path):
    """An add made the store among the files of the run it stored, where a run refuses it;
    and a store given as another run's folder was answered with a file inside that run."""
    run = shutil.copytree(real_run, tmp_path / "run")
    before = sorted(p.name for p in run.iterdir())
    for store, where in ((run, "is the run folder"), (run / "h.duckdb", "is in the run folder")):
        refused_in_one_line(run_cli("history", "add", str(run), "--store", str(store)),
                            f"--store {store} {where} {run}; give a store outside it")
    assert sorted(p.name for p in run.iterdir()) == before
    other = shutil.copytree(real_run, tmp_path / "other")
    refused_in_one_line(run_cli("history", "add", str(run), "--store", str(other)),
                        f"history store {other} is a run folder; give a file outside it")
    assert sorted(p.name for p in other.iterdir()) == before
    # nor in another run's folder than those it adds
    refused_in_one_line(run_cli("history", "add", str(run), "--store", str(other / "h.duckdb")),
                        f"--store {other / 'h.duckdb'} is in the run folder {other}; give a "
                        "store outside it")
    assert sorted(p.name for p in other.iterdir()) == before
    plain = tmp_path / "plain"
    plain.mkdir()
    refused_in_one_line(run_cli("history", "add", str(run), "--store", str(plain)),
                        f"history store {plain} is a folder; give a file, e.g. "
                        f"{plain / 'history.duckdb'}")


def test_an_empty_schema_is_refused_not_taken_for_the_default(tmp_path):
    store = tmp_path / "h.duckdb"
    refused_in_one_line(run_cli("history", "changes", "--store", str(store), "--schema", ""),
                        "--schema is empty; give a schema's name, e.g. multinet_bench")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BENCH_HISTORY_SCHEMA": ""}
    proc = subprocess.run([sys.executable, "-m", "bench", "history", "changes", "--store",
                           str(store)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    refused_in_one_line(proc, "BENCH_HISTORY_SCHEMA is empty")
    assert not store.exists()


def test_an_unclosed_quote_in_run_args_shows_no_part_of_a_password(tmp_path):
    proc = run_cli("paired-rounds", "--env", f"a={sys.executable}", "--env",
                   f"b={sys.executable}", "--out-dir", str(tmp_path / "out"), "--run-args",
                   '--history "postgresql://bench@h/db?password=Leak3d Secret')
    said = refused_in_one_line(proc, "--run-args: No closing quotation")
    assert "Leak3d" not in said and "Secret" not in said


def test_environment_names_that_differ_only_in_case_are_refused(tmp_path):
    proc = run_cli("paired-rounds", "--env", f"A={sys.executable}", "--env",
                   f"a={sys.executable}", "--out-dir", str(tmp_path / "out"))
    refused_in_one_line(proc, "--env 'a' is given twice")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_run_id_with_a_control_character_a_blank_end_or_too_long_is_refused(real_run, tmp_path):
    run_id = pd.read_csv(real_run / "results.csv")["run_id"].iloc[0]
    # a space at either end prints as the real run's id, and would be stored beside it
    for forged in (run_id + "\nadded: all fine", "r" * 201, run_id + " ", " " + run_id):
        folder = tmp_path / "forged"
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(real_run, folder)
        for name in ("results.csv", "samples.csv"):
            table = pd.read_csv(folder / name, dtype=str, keep_default_na=False)
            table["run_id"] = forged
            table.to_csv(folder / name, index=False)
        proc = run_cli("history", "add", str(folder), "--store", str(tmp_path / "h.duckdb"))
        refused_in_one_line(proc, "is not one a run writes")
        assert "added: all fine" not in proc.stdout + proc.stderr
        assert not (tmp_path / "h.duckdb").exists()
