"""What a hostile user found, class by class: every file read is checked, every option is
bounded, a unit counts once, and a write that fails leaves nothing behind. Real files, real
processes with real resource limits; the seeded damage of every file kind is in
test_fuzz_inputs.py."""

from __future__ import annotations

import json
import os
import shutil

import pandas as pd
import pytest

from bench.cli import main
from bench.schema import ENV_FILE, RESULTS_FILE, SAMPLES_FILE, SWEEP_FILE
from bench.seal import seal
from bench.sweep.config import load_sweep
from bench.sweep.loop import run_sweep
from tests.conftest import run_cli
from tests.support.disk_full import file_size_limited, uncovered_environment

TINY = {"scenarios": ["sequential"], "sizes": ["seed"], "batch_sizes": [2, 4],
        "devices": ["cpu"], "optimizer_setups": ["separate", "single"], "optimizers": ["sgd"],
        "optimizer_impls": ["loop"], "threads": 1}
QUICK = {"warmup_iters": 1, "warmup_s": 0, "min_samples": 3, "max_samples": 6, "budget_s": 0,
         "min_rounds": 2}
QUICK_ARGS = ["--warmup-iters", "1", "--warmup-s", "0", "--min-samples", "3", "--budget-s", "0",
              "--min-rounds", "2", "--threads", "1", "--quiet"]
SMALL_ARGS = ["--scenarios", "sequential", "--batch-sizes", "2", "--optimizer-setups", "single",
              "--devices", "cpu", "--optimizer", "sgd", "--optimizer-impl", "loop"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("untrusted")
    for name in ("base", "other"):
        assert run_sweep(load_sweep(overrides=TINY, timing_overrides=QUICK), root / name,
                         progress=False).complete
    return root


@pytest.fixture
def copy(runs, tmp_path):
    """A copy of the base run to damage."""
    def make(name="case"):
        return shutil.copytree(runs / "base", tmp_path / name)
    return make


def refused(capsys, *argv) -> str:
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


# -- wrong results ----------------------------------------------------------------------

def duplicate_line(path, line):
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines + [lines[line - 1]]))
    return len(lines) + 1


@pytest.mark.slow
def test_a_duplicated_results_row_is_refused_by_every_reader(copy, runs, capsys):
    case = copy()
    before = (case / RESULTS_FILE).read_bytes()
    dup = duplicate_line(case / RESULTS_FILE, 3)
    damaged = (case / RESULTS_FILE).read_bytes()
    assert before != damaged
    for argv in (["report", case, "--out", case.parent / "r.html"],
                 ["compare", case, runs / "other", "--out", case.parent / "c.html"],
                 ["compare", runs / "other", case, "--fail-on-regression"]):
        line = refused(capsys, *argv)
        assert f"{case / RESULTS_FILE}: line {dup} repeats an earlier row" in line, line
    # the resume's own check names the first line of the configuration seen twice
    line = refused(capsys, "run", "--resume", case, "--quiet")
    assert "the file is damaged" in line and str(case / RESULTS_FILE) in line
    assert (case / RESULTS_FILE).read_bytes() == damaged


@pytest.mark.slow
def test_a_duplicated_sample_is_refused(copy, runs, capsys):
    case = copy()
    dup = duplicate_line(case / SAMPLES_FILE, 5)
    line = refused(capsys, "compare", case, runs / "other", "--out", case.parent / "c.html")
    assert f"{case / SAMPLES_FILE}: line {dup} repeats an earlier row" in line


def test_a_status_outside_the_known_set_is_refused_by_every_reader(copy, runs, capsys):
    """A row whose status is none of the five would count as not measured by some readers
    and be stored as it is by others."""
    case = copy()
    lines = (case / RESULTS_FILE).read_text().splitlines(keepends=True)
    lines[2] = lines[2].replace(",ok,", ",maybe,", 1)
    (case / RESULTS_FILE).write_text("".join(lines))
    expected = (f"{case / RESULTS_FILE}: line 3: status holds 'maybe', not one of ok, oom, "
                "skipped, nonfinite, error")
    for argv in (["report", case, "--out", case.parent / "r.html"],
                 ["compare", runs / "other", case, "--out", case.parent / "c.html"],
                 ["run", "--resume", case, "--quiet"]):
        assert refused(capsys, *argv) == f"error: {expected}"


def test_a_run_pooled_with_itself_is_refused_even_when_gating(runs):
    base, other = runs / "base", runs / "other"
    proc = run_cli("compare", f"{base},{base}", f"{other},{other}", "--fail-on-regression")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == (f"error: {base} is given twice on one side: pooled with "
                                   "itself, each of its measurements would count twice")


# -- options: bounded, before anything is made -------------------------------------------

@pytest.mark.parametrize("option, value, message", [
    ("--threads", "100000", "'threads' must be from 0 to"),
    ("--warmup-s", "inf", "warmup_s must be a number from 0 to 3600, got inf"),
    ("--warmup-s", "nan", "warmup_s must be a number from 0 to 3600, got nan"),
    ("--target-ci", "nan", "target_rel_ci must be a number from 0 to 10, got nan"),
    ("--budget-s", "-1", "budget_s must be a number from 0 to 3600, got -1"),
    ("--seed", str(2**64), f"'seed' must be from 0 to {2**63 - 1}, got {2**64}"),
    ("--repeats", "1000000", "'repeats' must be from 1 to 1000, got 1000000"),
    ("--max-samples", str(10**12), "max_samples must be an integer from 1 to 10000000"),
])
def test_an_option_out_of_range_is_refused_before_anything_is_made(capsys, tmp_path, option,
                                                                     value, message):
    out = tmp_path / "run"
    line = refused(capsys, "run", *SMALL_ARGS, *QUICK_ARGS, option, value, "--out-dir", out)
    assert message in line, line
    assert not out.exists()


@pytest.mark.parametrize("argv, message", [
    (["verify", "--steps", "0"], "--steps must be from 1 to 1000, got 0"),
    (["verify", "--n-networks", "100000"], "--n-networks must be from 2 to 1024, got 100000"),
    (["run", "--distributed", "--dist-timeout-s", "inf"],
     "--dist-timeout-s must be from 0 (excluded) to 86400 s, got inf"),
    (["run", "--distributed", "--dist-timeout-s", "nan"],
     "--dist-timeout-s must be from 0 (excluded) to 86400 s, got nan"),
])
def test_the_other_commands_numbers_are_bounded_too(capsys, argv, message):
    assert refused(capsys, *argv) == f"error: {message}"


@pytest.mark.slow
def test_a_thread_count_past_the_machine_ends_in_one_line_not_a_crash(tmp_path):
    """In a real process: it used to end in SIGSEGV, leaving a folder that crashed again."""
    out = tmp_path / "run"
    proc = run_cli("run", *SMALL_ARGS, *QUICK_ARGS, "--threads", "100000", "--out-dir", str(out))
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"error: command line: 'threads' must be from 0 to "
                                   f"{os.cpu_count()}, got 100000")
    assert not out.exists()


@pytest.mark.parametrize("value", ["inf", "nan", "-inf", "1e400"])
def test_a_sweep_file_s_infinite_time_is_refused(capsys, tmp_path, value):  # TOML has inf, nan
    sweep = tmp_path / "sweep.toml"
    keys = "".join(f"{key} = {json.dumps(given)}\n" for key, given in TINY.items())
    sweep.write_text(f"{keys}\n[timing]\nwarmup_s = {value}\n")
    assert "warmup_s must be a number from 0 to 3600" in refused(capsys, "run", "--sweep",
                                                                 sweep, "--out-dir",
                                                                 tmp_path / "run")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep.toml"]


# -- data state --------------------------------------------------------------------------

def test_a_resume_measures_again_what_lost_its_samples(copy, runs, capsys):
    case = copy()
    measured = pd.read_csv(case / RESULTS_FILE)
    (case / SAMPLES_FILE).unlink()
    assert main(["run", "--resume", str(case), "--quiet"]) == 0
    capsys.readouterr()
    results, samples = pd.read_csv(case / RESULTS_FILE), pd.read_csv(case / SAMPLES_FILE)
    assert sorted(results.config_id.unique()) == sorted(measured.config_id.unique())
    assert set(samples.config_id) == set(results.config_id)
    per_phase = samples.groupby(["config_id", "phase"]).size()
    assert per_phase.to_dict() == results.set_index(["config_id", "phase"]).n_samples.to_dict()
    assert main(["compare", str(runs / "other"), str(case), "--out",
                 str(case.parent / "c.html")]) == 0


def test_a_report_that_cannot_be_written_leaves_no_temporary_file(runs, tmp_path):
    out = tmp_path / "pages"
    out.mkdir()
    proc = run_cli("report", str(runs / "base"), "--out", str(out / "report.html"),
                   preexec_fn=file_size_limited(100_000),
                   env=uncovered_environment())
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: cannot write {out / 'report.html'}: File too large"
    assert list(out.iterdir()) == []


@pytest.mark.slow
def test_a_run_whose_first_write_fails_leaves_no_folder(tmp_path):
    out = tmp_path / "run"
    proc = run_cli("run", *SMALL_ARGS, *QUICK_ARGS, "--out-dir", str(out),
                   preexec_fn=file_size_limited(200),
                   env=uncovered_environment())
    assert proc.returncode == 1
    assert proc.stderr.strip() == (f"error: cannot write {out / SWEEP_FILE}: File too large; "
                                   "nothing was measured")
    assert not out.exists()
    # so the same command works once there is room
    proc = run_cli("run", *SMALL_ARGS, *QUICK_ARGS, "--out-dir", str(out))
    assert proc.returncode == 0, proc.stderr


@pytest.mark.slow
def test_a_resume_on_a_full_disk_loses_nothing(copy):
    case = copy()
    path = case / RESULTS_FILE
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines) + lines[-1][:40])  # a crash mid-write: half a line
    damaged = path.read_bytes()
    proc = run_cli("run", "--resume", str(case), "--quiet", preexec_fn=file_size_limited(1000),
                   env=uncovered_environment())
    assert proc.returncode == 1
    assert proc.stderr.strip() == (f"error: cannot write {path}: File too large; nothing was "
                                   "measured")
    assert path.read_bytes() == damaged
    assert not [p.name for p in case.iterdir() if p.name.endswith(".tmp")]
    proc = run_cli("run", "--resume", str(case), "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert path.read_text() == "".join(lines)  # the half line taken back, nothing measured


@pytest.mark.slow
def test_a_failed_import_leaves_nothing_so_the_retry_works(saved_suite_run, tmp_path):
    out = tmp_path / "imported"
    proc = run_cli("import-pytest-benchmark", str(saved_suite_run), "--out-dir", str(out),
                   preexec_fn=file_size_limited(3000),
                   env=uncovered_environment())
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith(f"error: cannot write {out}")
    assert not out.exists()
    proc = run_cli("import-pytest-benchmark", str(saved_suite_run), "--out-dir", str(out))
    assert proc.returncode == 0, proc.stderr
    assert len(pd.read_csv(out / RESULTS_FILE)) == 8


# -- damaged input: one line, exit 2, the file as it was -------------------------------------

def test_non_utf8_bytes_in_a_sweep_file(capsys, tmp_path):
    sweep = tmp_path / "sweep.toml"
    sweep.write_bytes(b'scenarios = ["seq\xff"]\n')
    line = refused(capsys, "run", "--sweep", sweep, "--out-dir", tmp_path / "run")
    assert line.startswith(f"error: sweep file {sweep} is not valid TOML: 'utf-8' codec")


def test_a_sweep_file_that_is_a_folder(capsys, tmp_path):
    assert refused(capsys, "run", "--sweep", tmp_path) == \
        f"error: sweep file {tmp_path} is a folder, not a file"


def test_non_utf8_bytes_in_a_results_file(copy, runs, capsys):
    case = copy()
    path = case / RESULTS_FILE
    path.write_bytes(path.read_bytes().replace(b"sequential", b"sequ\xe9ntial", 1))
    damaged = path.read_bytes()
    line = refused(capsys, "report", case, "--out", case.parent / "r.html")
    assert line.startswith(f"error: {path} is not a readable CSV: 'utf-8' codec")
    refused(capsys, "compare", case, runs / "other")
    line = refused(capsys, "run", "--resume", case, "--quiet")
    assert line.startswith(f"error: {path} is damaged: 'utf-8' codec")
    assert path.read_bytes() == damaged


@pytest.mark.parametrize("column, value, wanted", [
    ("n_samples", "7.5", "an integer"), ("threads", "1e999", "an integer"),
    ("median_ms", "fast", "a time"), ("median_ms", "-1", "a time"),
    ("median_ms", "inf", "a time")])
def test_a_cell_of_the_wrong_type_is_named(copy, runs, capsys, column, value, wanted):
    case = copy()
    path = case / RESULTS_FILE
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df.loc[2, column] = value  # line 4 of the file
    df.to_csv(path, index=False)
    damaged = path.read_bytes()
    expected = f"error: {path}: line 4: {column} holds {value!r}, not {wanted}"
    assert refused(capsys, "report", case, "--out", case.parent / "r.html") == expected
    assert refused(capsys, "compare", runs / "other", case) == expected
    assert refused(capsys, "run", "--resume", case, "--quiet") == expected
    assert path.read_bytes() == damaged


@pytest.mark.parametrize("change, message", [
    (lambda r: r.update(device_names=["cpu"]), "'device_names' is not a table"),
    (lambda r: r.update(torch_version=2), "'torch_version' is not text"),
    (lambda r: r["sweep"].update(scenarios=None), "'scenarios' must be a list"),
    (lambda r: r["sweep"].update(timing={"warmup_s": float("inf")}),
     "warmup_s must be a number from 0 to 3600"),
])
def test_a_sweep_record_of_the_wrong_types(copy, capsys, change, message):
    """Sealed anew, as a writer of another version could have written it: the checks of
    the record's types, behind its seal."""
    case = copy()
    record = json.loads((case / SWEEP_FILE).read_text())
    change(record)
    (case / SWEEP_FILE).write_text(json.dumps(seal(record)))
    damaged = (case / SWEEP_FILE).read_bytes()
    assert message in refused(capsys, "run", "--resume", case, "--quiet")
    assert (case / SWEEP_FILE).read_bytes() == damaged


def test_an_environment_record_of_the_wrong_types(copy, runs, capsys):
    """The report shows what it can of it; a resume, which would add to it, refuses."""
    case = copy()
    env = json.loads((case / ENV_FILE).read_text())
    env.update(cpu_model=5, devices="none", resumes="yesterday", torch={"version": [1]},
               python=None)
    (case / ENV_FILE).write_text(json.dumps(seal(env)))  # sealed: the checks behind it
    damaged = (case / ENV_FILE).read_bytes()
    assert main(["report", str(case), "--out", str(case.parent / "r.html")]) == 0
    assert main(["compare", str(runs / "other"), str(case), "--out",
                 str(case.parent / "c.html")]) == 0
    capsys.readouterr()
    line = refused(capsys, "run", "--resume", case, "--quiet")
    assert line == (f"error: {case / ENV_FILE}: 'resumes' is not a list: the file is damaged "
                    "(delete it to resume, recording this machine's environment instead)")
    assert (case / ENV_FILE).read_bytes() == damaged


def suite_json(saved_suite_run, tmp_path, change):
    data = json.loads(saved_suite_run.read_text())
    change(data)
    path = tmp_path / "saved.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("change, message", [
    (lambda d: d["benchmarks"].insert(1, "forward"), "benchmark 2 is not an object"),
    (lambda d: d["benchmarks"][0]["extra_info"].pop("phase"),
     "benchmark 1: phase None is not one of"),
    (lambda d: d["benchmarks"][0]["stats"].update(iterations=0),
     "benchmark 1: iterations must be a positive integer, got 0"),
    (lambda d: d["benchmarks"][2]["stats"]["data"].__setitem__(3, "fast"),
     "benchmark 3: round 4 of its data is 'fast', not a positive number of seconds"),
    (lambda d: d["benchmarks"].append(d["benchmarks"][0]),
     "benchmark 9 repeats benchmark 1"),
    (lambda d: d["benchmarks"][0]["extra_info"].update(batch_size=10**30),
     "exceeds the limit"),
])
def test_suite_json_of_unexpected_shapes(saved_suite_run, tmp_path, capsys, change, message):
    path = suite_json(saved_suite_run, tmp_path, change)
    out = tmp_path / "imported"
    line = refused(capsys, "import-pytest-benchmark", path, "--out-dir", out)
    assert message in line, line
    assert not out.exists()


def test_a_folder_given_as_the_suite_json(capsys, tmp_path):
    out = tmp_path / "imported"
    assert refused(capsys, "import-pytest-benchmark", tmp_path, "--out-dir", out) == \
        f"error: {tmp_path} is a folder; give the JSON file of a saved run"
    assert not out.exists()


DEEP = 100_000  # brackets: nested past the recursion limit of any parser written in Python


def test_nesting_past_the_parser_s_limit_is_one_line(copy, capsys, tmp_path):
    sweep = tmp_path / "deep.toml"
    sweep.write_text("a = " + "[" * DEEP + "]" * DEEP + "\n")
    assert "is not valid TOML: maximum recursion depth exceeded" in refused(
        capsys, "run", "--sweep", sweep)
    saved = tmp_path / "deep.json"
    saved.write_text("[" * DEEP + "]" * DEEP)
    assert "is not JSON: maximum recursion depth exceeded" in refused(
        capsys, "import-pytest-benchmark", saved, "--out-dir", tmp_path / "out")
    case = copy()
    (case / SWEEP_FILE).write_text("[" * DEEP + "]" * DEEP)
    assert "is not valid JSON: maximum recursion depth exceeded" in refused(
        capsys, "run", "--resume", case, "--quiet")
