"""The pytest-benchmark suite: saved runs, comparisons that gate, and the import into the
project's schema. Real pytest subprocesses on a one-configuration sweep."""

import json

import pandas as pd
import pytest

from bench.schema import FIELDS
from tests.conftest import run_cli
from tests.suite_runs import suite

pytestmark = pytest.mark.slow


@pytest.fixture
def saved(saved_suite):
    return saved_suite


def test_a_saved_run_has_a_benchmark_per_configuration_and_phase(saved):
    _, saved_file = saved
    data = json.loads(saved_file.read_text())
    keys = {(b["extra_info"]["config_id"], b["extra_info"]["phase"]) for b in data["benchmarks"]}
    assert keys == {(f"sequential/seed/cpu/bs2/{setup}/adam/loop", phase)
                    for setup in ("separate", "single")
                    for phase in ("step", "forward", "backward", "optimizer")}
    assert all(b["stats"]["rounds"] == 8 and len(b["stats"]["data"]) == 8
               for b in data["benchmarks"])
    assert {b["group"] for b in data["benchmarks"]} == {"sequential"}
    assert data["machine_info"]["torch_version"]


def test_compare_passes_against_itself_and_fails_on_a_slowed_scenario(saved):
    tmp_path, saved_file = saved
    # A shared machine varies a lot from process to process, and a fixed threshold knows
    # nothing of that: the passing comparison looks at whole steps only and allows 400%
    # (with a burner on each core, a step's minimum came out twice its saved one). The
    # minimum, not the median: other work on the machine only ever adds time, so the
    # minimum moves least. The slowed one adds ten times the saved minimum (50 ms at least,
    # to a step of about a millisecond): a saved run made while the machine was busy had a
    # minimum of over 10 ms, and 50 ms more was not 400% more.
    saved_min_ms = max(b["stats"]["min"] for b in json.loads(saved_file.read_text())
                       ["benchmarks"] if b["extra_info"]["phase"] == "step") * 1e3
    compare = ["-k", "loop-step", "--benchmark-compare", "--benchmark-compare-fail=min:400%"]
    same = suite(tmp_path, *compare)
    assert same.returncode == 0, same.stdout + same.stderr
    slowed = suite(tmp_path, *compare,
                   f"--suite-slow-scenario=sequential:{max(50.0, 10 * saved_min_ms):.1f}")
    assert slowed.returncode != 0
    assert "Performance has regressed" in slowed.stdout + slowed.stderr


def test_import_gives_a_run_folder_in_the_project_schema(saved, tmp_path):
    _, saved_file = saved
    proc = run_cli("import-pytest-benchmark", str(saved_file), "--out-dir", str(tmp_path / "run"))
    assert proc.returncode == 0, proc.stderr
    df = pd.read_csv(tmp_path / "run" / "results.csv")
    assert tuple(df.columns) == FIELDS and len(df) == 2 * 4
    assert set(df.clock) == {"pytest_benchmark"} and (df.n_samples == 8).all()
    data = json.loads(saved_file.read_text())
    bench = next(b for b in data["benchmarks"] if b["extra_info"]["phase"] == "step"
                 and b["extra_info"]["optimizer_setup"] == "single")
    row = df[(df.phase == "step") & (df.optimizer_setup == "single")].iloc[0]
    assert row.median_ms == pytest.approx(bench["stats"]["median"] * 1e3)
    assert row.min_ms == pytest.approx(bench["stats"]["min"] * 1e3)
    samples = pd.read_csv(tmp_path / "run" / "samples.csv")
    assert len(samples) == 8 * 8
    env = json.loads((tmp_path / "run" / "env.json").read_text())
    assert env["torch_version"] == row.torch_version


@pytest.mark.parametrize("content, message", [
    ("not json", "is not JSON"),
    ('{"a": 1}', "is not pytest-benchmark output"),
    ('{"machine_info": {}, "benchmarks": [{"name": "t", "extra_info": {}, "stats": {}}]}',
     "benchmark 1 ('t') is not from the multinet-bench suite"),
])
def test_import_refuses_what_is_not_suite_output(tmp_path, content, message):
    path = tmp_path / "x.json"
    path.write_text(content)
    proc = run_cli("import-pytest-benchmark", str(path), "--out-dir", str(tmp_path / "run"))
    assert proc.returncode == 2 and message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
