"""Every ``python -m bench`` command once, end to end, in real processes: the quick tier's
proof that each still runs from its command line to its output. One tiny sweep is measured
once for the session (two optimizer setups timed together, a batch size, a few rounds) and
shared; the long tier (test_cli.py and others) runs each command over more of its options.
"""

import json
import shutil

import pandas as pd
import pytest

from bench.history.store import open_store
from bench.schema import FIELDS
from tests.support.refusals import refused_in_one_line
from tests.conftest import run_cli
from tests.test_paired_command import write_rounds

SWEEP = ["--scenarios", "sequential", "--batch-sizes", "2", "--devices", "cpu",
         "--optimizer-setups", "separate,single", "--optimizer-impl", "loop",
         "--warmup-iters", "1", "--warmup-s", "0", "--min-samples", "3", "--min-rounds", "6",
         "--budget-s", "0.02"]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """`run` once: the folder, the history store it was added to, and the process."""
    root = tmp_path_factory.mktemp("commands")
    store = root / "history.duckdb"
    proc = run_cli("run", *SWEEP, "--out-dir", str(root / "run"), "--history", str(store))
    return root / "run", store, proc


def test_run_measures_writes_summarises_and_stores(tiny_run):
    folder, store, proc = tiny_run
    assert proc.returncode == 0, proc.stderr
    results = pd.read_csv(folder / "results.csv")
    assert list(results.columns) == list(FIELDS)
    # two setups of one configuration, four rows each (three phases and the step), measured
    assert len(results) == 8 and set(results["status"]) == {"ok"}
    assert set(results["optimizer_setup"]) == {"separate", "single"}
    steps = results[results["phase"] == "step"]
    assert (steps["blocks"] >= 6).all()  # timed together for at least six rounds
    assert "single" in proc.stdout and str(folder / "report.html") in proc.stdout
    samples = pd.read_csv(folder / "samples.csv")
    assert samples.groupby(["config_id", "phase"]).size().to_dict() == \
        results.set_index(["config_id", "phase"])["n_samples"].to_dict()
    with open_store(str(store)) as s:
        assert s.execute("SELECT count(*) FROM results")[0][0] == 8
    assert json.loads((folder / "env.json").read_text())["run_id"] == results["run_id"][0]


def test_verify_holds_on_one_scenario():
    proc = run_cli("verify", "--scenarios", "sequential", "--steps", "1")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.rstrip().endswith("All checks hold.")


def test_report_writes_one_page(tiny_run, tmp_path):
    folder, _, _ = tiny_run
    out = tmp_path / "page.html"
    proc = run_cli("report", str(folder), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert folder.name in out.read_text()


def test_compare_matches_a_run_with_its_copy(tiny_run, tmp_path):
    folder, _, _ = tiny_run
    copy = tmp_path / "again"
    shutil.copytree(folder, copy)
    run_id = json.loads((folder / "env.json").read_text())["run_id"]
    for name in ("results.csv", "samples.csv", "env.json"):  # another run of the same
        path = copy / name
        path.write_text(path.read_text().replace(run_id, "again"))
    proc = run_cli("compare", str(folder), str(copy), "--out", str(tmp_path / "c.html"))
    assert proc.returncode == 0, proc.stderr
    # the same numbers on both sides: every measurement compared, none a change
    assert "Candidate again: 8 measurements compared" in proc.stdout
    assert ": 0 regression(s), 0 improvement(s)." in proc.stdout


def test_compare_refuses_a_run_against_itself_or_its_copy(tiny_run, tmp_path):
    folder, _, _ = tiny_run
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    run_id = json.loads((folder / "env.json").read_text())["run_id"]
    for candidate in (folder, copy):
        refused_in_one_line(run_cli("compare", str(folder), str(candidate), "--out",
                                    str(tmp_path / "c.html")),
                            f"holds run {run_id!r}, which the baseline holds too")
    assert not (tmp_path / "c.html").exists()


def test_paired_judges_rounds(tmp_path):
    a = write_rounds(tmp_path / "a", "a", 6)
    b = write_rounds(tmp_path / "b", "b", 6, factor=1.3, seed=1)
    proc = run_cli("paired", str(a), str(b), "--out", str(tmp_path / "p.html"))
    assert proc.returncode == 0, proc.stderr
    assert "16 measurements over 6 paired rounds" in proc.stdout


def test_schema_prints_every_column():
    proc = run_cli("schema")
    assert proc.returncode == 0
    documented = [line.split("`")[1] for line in proc.stdout.splitlines()
                  if line.startswith("| `")]
    assert set(FIELDS) <= set(documented)


def test_history_reports_and_finds_no_change_in_one_run(tiny_run, tmp_path):
    _, store, _ = tiny_run
    out = tmp_path / "history.html"
    proc = run_cli("history", "report", "--store", str(store), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert out.is_file()
    proc = run_cli("history", "changes", "--store", str(store))
    assert proc.returncode == 0, proc.stderr


def test_import_pytest_benchmark_turns_a_suite_run_into_a_run_folder(saved_suite_run,
                                                                     tmp_path):
    proc = run_cli("import-pytest-benchmark", str(saved_suite_run), "--out-dir",
                   str(tmp_path / "suite"))
    assert proc.returncode == 0, proc.stderr
    results = pd.read_csv(tmp_path / "suite" / "results.csv")
    assert set(results["status"]) == {"ok"} and len(results) > 0


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    proc = run_cli("run", "--batch-sizes", "0", "--out-dir", str(tmp_path / "nothing"))
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not (tmp_path / "nothing").exists()
