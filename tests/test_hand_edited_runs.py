"""What no sweep writes is refused, by `run --resume` and `history add` alike, in one line
naming the cell, the value and what is valid: a cell edited by hand (a phase, a clock, a stop
reason, a worker, a status that differs within a configuration), a byte-order mark in front
of a file, and a run another process is still measuring. Only a torn tail (rows missing at
the end, as a crash leaves them) is measured again. On copies of real `bench run` folders,
through real subprocesses."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time

import pandas as pd
import pytest

from tests.conftest import FAILING_SCENARIOS, QUICK_RUN, ROOT, run_cli, slow_except
from tests.support.refusals import refused_in_one_line as refused

PHASES = "forward, backward, optimizer, target, step"


@pytest.fixture
def copy(real_run, tmp_path):
    """A copy of conftest's run: two configurations (separate, single), four rows each."""
    return shutil.copytree(real_run, tmp_path / "run")


def edit_line(path, line, old, new):
    """``old`` replaced by ``new`` once, on line ``line`` (1-based, the header is 1)."""
    lines = path.read_text().splitlines(keepends=True)
    assert old in lines[line - 1], lines[line - 1]
    lines[line - 1] = lines[line - 1].replace(old, new, 1)
    path.write_text("".join(lines))


def files(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.csv"))}


def history_add(folder, store):
    return run_cli("history", "add", str(folder), "--store", str(store))


def resume(folder):
    return run_cli("run", "--resume", str(folder), "--quiet")


# -- a cell edited by hand, on resume --------------------------------------------------------

@pytest.mark.parametrize("line", slow_except([6, 2], quick=[6]))
def test_a_phase_edited_by_hand_is_refused_on_resume_and_nothing_is_measured(copy, line):
    """Line 6 starts the last configuration: its four rows, measured, were dropped and
    measured again in silence, as if a crash had cut them. Line 2 starts the first, where
    the refusal said it had `4 of its 4 rows`."""
    edit_line(copy / "results.csv", line, ",forward,ok,", ",Forward,ok,")
    before = files(copy)
    refused(resume(copy), f"results.csv: line {line}: phase holds 'Forward', not one of "
                          f"{PHASES}")
    assert files(copy) == before


@pytest.mark.slow
def test_a_row_missing_inside_the_last_configuration_is_damage_not_a_torn_tail(copy):
    """A crash cuts the writer's one write of a configuration at its end: a row gone from
    the middle of the last configuration is no crash's doing."""
    lines = (copy / "results.csv").read_text().splitlines(keepends=True)
    assert ",backward,ok," in lines[6]
    (copy / "results.csv").write_text("".join(lines[:6] + lines[7:]))
    before = files(copy)
    refused(resume(copy), "results.csv: line 6: ", "has the rows forward, optimizer, step, "
            "not one per phase in the order the writer writes them", "the file is damaged")
    assert files(copy) == before


@pytest.mark.slow
def test_a_torn_tail_is_still_measured_again(copy):
    lines = (copy / "results.csv").read_text().splitlines(keepends=True)
    (copy / "results.csv").write_text("".join(lines[:-2]))  # the last two rows never came
    proc = resume(copy)
    assert proc.returncode == 0, proc.stderr
    results = pd.read_csv(copy / "results.csv")
    assert len(results) == 8 and results.groupby("config_id").size().eq(4).all()


# -- a cell edited by hand, on add -----------------------------------------------------------

EDITS = {  # line, what the sweep wrote, the edit, and the refusal
    "phase": (7, ",backward,ok,", ",Backward,ok,", f"phase holds 'Backward', not one of {PHASES}"),
    "clock": (3, ",perf_counter,", ",sundial,", "clock holds 'sundial', not one of "
              "perf_counter, cuda_event, mps_sync, pytest_benchmark"),
    "stop_reason": (4, ",max_rounds,", ",felt like it,", "stop_reason holds 'felt like it', "
                    "not one of max_samples, max_rounds, decided, converged, budget, signal"),
}


@pytest.mark.parametrize("column", slow_except(list(EDITS), quick=["clock"]))
def test_a_value_no_sweep_writes_is_refused_by_add(copy, tmp_path, column):
    line, old, new, words = EDITS[column]
    text = (copy / "results.csv").read_text()
    if old not in text.splitlines()[line - 1]:  # the run stopped for another reason
        old = "," + pd.read_csv(copy / "results.csv")[column].iloc[line - 2] + ","
    edit_line(copy / "results.csv", line, old, new)
    store = tmp_path / "h.duckdb"
    refused(history_add(copy, store), f"results.csv: line {line}: {words}")
    assert not store.exists()


@pytest.mark.parametrize("column, words", [
    ("bound", "bound holds 'lol', not one of compute, launch, neither"),
    ("energy_source", "energy_source holds 'lol', not one of counter, estimate")])
def test_a_word_no_sweep_writes_in_an_empty_cell_is_refused_by_add(copy, tmp_path, column,
                                                                  words):
    """Cells a CPU run leaves empty, filled by hand with a word outside their set."""
    results = pd.read_csv(copy / "results.csv", dtype=str, keep_default_na=False)
    assert set(results[column]) == {""}
    results.loc[0, column] = "lol"
    results.to_csv(copy / "results.csv", index=False)
    store = tmp_path / "h.duckdb"
    refused(history_add(copy, store), f"results.csv: line 2: {words}")
    assert not store.exists()


def test_a_worker_the_run_did_not_have_is_refused_by_add(copy, tmp_path):
    """A one-worker run: every pass is worker 1's."""
    results = pd.read_csv(copy / "results.csv", dtype=str, keep_default_na=False)
    assert set(results["worker"]) == {"1"}
    results.loc[4, "worker"] = "2"
    results.to_csv(copy / "results.csv", index=False)
    store = tmp_path / "h.duckdb"
    refused(history_add(copy, store), "results.csv: line 6: worker holds 2, not 1: the run "
            "had 1 worker(s)")
    assert not store.exists()


@pytest.mark.parametrize("repeat", ["0", "2"])
def test_a_pass_the_run_did_not_make_is_refused_by_add(copy, tmp_path, repeat):
    """A one-worker run of one repeat made pass 1 alone: 0 and 2 are named as outside it,
    not as another worker's."""
    results = pd.read_csv(copy / "results.csv", dtype=str, keep_default_na=False)
    assert set(results["repeat"]) == {"1"}
    results.loc[0, "repeat"] = repeat
    results.to_csv(copy / "results.csv", index=False)
    store = tmp_path / "h.duckdb"
    refused(history_add(copy, store), f"results.csv: line 2: repeat holds {repeat}: the "
            "run's passes are numbered 1 to 1 (1 worker(s), 1 pass(es) each, as sweep.json "
            "says)")
    assert not store.exists()


@pytest.mark.slow
def test_statuses_that_differ_within_a_configuration_are_refused(tmp_path):
    """Every configuration out of memory: one phase row edited to `error` is a row of a
    configuration whose outcome no sweep wrote."""
    folder = tmp_path / "oom"
    proc = run_cli("--load", str(FAILING_SCENARIOS), "run", *QUICK_RUN, "--scenarios",
                   "test_cpu_hungry", "--batch-sizes", "8", "--optimizer-setups", "single",
                   "--optimizer", "sgd", "--out-dir", str(folder))
    assert proc.returncode == 0, proc.stderr
    edit_line(folder / "results.csv", 3, ",backward,oom,", ",backward,error,")
    store = tmp_path / "h.duckdb"
    err = refused(history_add(folder, store), "results.csv: line 3: status holds 'error' on "
                  "the backward row of ", "whose other rows hold 'oom'")
    assert "test_cpu_hungry/seed/cpu/bs8/single/sgd/loop (repeat 1)" in err
    before = files(folder)
    refused(run_cli("--load", str(FAILING_SCENARIOS), "run", "--resume", str(folder),
                    "--quiet"), "results.csv: line 3: status holds 'error'")
    assert files(folder) == before


# -- a byte-order mark -----------------------------------------------------------------------

@pytest.mark.parametrize("name", slow_except(["results.csv", "samples.csv", "env.json"],
                                             quick=["results.csv"]))
def test_a_byte_order_mark_is_named_by_add_and_resume(copy, tmp_path, name):
    path = copy / name
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    store = tmp_path / "h.duckdb"
    words = f"{name} starts with a byte-order mark (EF BB BF), which the harness never writes"
    refused(history_add(copy, store), words)
    assert not store.exists()
    before = files(copy)
    refused(resume(copy), words)
    assert files(copy) == before


# -- a column named twice --------------------------------------------------------------------

TIMES = {"results.csv": "median_ms", "samples.csv": "device_ms"}


@pytest.mark.parametrize("name", slow_except(list(TIMES), quick=[]))
def test_a_column_named_twice_is_refused_not_read_as_another(copy, tmp_path, name):
    """pandas reads a second `median_ms` as `median_ms.1`: the run was stored with the
    first column's figures, the second's dropped without a word."""
    path, column = copy / name, TIMES[name]
    lines = path.read_text().splitlines()
    path.write_text("".join(f"{line},{column if i == 0 else '9'}\n"
                            for i, line in enumerate(lines)))
    store = tmp_path / "h.duckdb"
    refused(history_add(copy, store), f"{name}: its header names '{column}' twice, where the "
            "writer names each column once")
    assert not store.exists()
    before = files(copy)
    refused(resume(copy), f"{name}")
    assert files(copy) == before


@pytest.mark.parametrize("name", slow_except(["samples.csv", "env.json"], quick=[]))
def test_a_folder_in_a_run_file_s_place_is_named_a_folder(copy, tmp_path, name):
    """It was said to be missing, or to be no such file."""
    (copy / name).unlink()
    (copy / name).mkdir()
    refused(history_add(copy, tmp_path / "h.duckdb"), f"{copy / name} is a folder, not ")
    assert not (tmp_path / "h.duckdb").exists()


# -- a stored run, edited -------------------------------------------------------------------

def test_the_advice_for_an_edited_copy_of_a_stored_run_is_one_that_works(copy, tmp_path):
    """It said to give the folder a new run id, which the seals of env.json and sweep.json
    refuse; a stored run never changes, and a new run is measured anew."""
    store = tmp_path / "h.duckdb"
    assert history_add(copy, store).returncode == 0
    edited = shutil.copytree(copy, tmp_path / "edited")
    samples = pd.read_csv(edited / "samples.csv", dtype=str, keep_default_na=False)
    samples.loc[0, "host_ms"] = "0.5"
    samples.to_csv(edited / "samples.csv", index=False)
    err = refused(history_add(edited, store), "is already in the store with other contents",
                  "a stored run never changes", "`python -m bench run` measures a new run")
    assert "run id" not in err.split("other contents", 1)[1]
    # the advice it gave before cannot be followed
    run_id = pd.read_csv(copy / "results.csv")["run_id"].iloc[0]
    for path in (*edited.glob("*.csv"), *edited.glob("*.json")):
        path.write_text(path.read_text().replace(run_id, "renamed-run"))
    refused(history_add(edited, store), "env.json is not what the run wrote")


# -- a run still being measured --------------------------------------------------------------

IN_PROGRESS = "the run is still in progress (another process measures it now and holds"


def test_a_folder_whose_lock_another_process_holds_is_refused_as_in_progress(copy, tmp_path):
    """The lock a sweep holds, held by another real process (quicker to start than a sweep)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from pathlib import Path; "
         "from bench.sweep.folder_lock import hold_lock; lock = hold_lock(Path(sys.argv[1])); "
         "print('held', flush=True); sys.stdin.read()", str(copy)],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        store = tmp_path / "h.duckdb"
        refused(history_add(copy, store), f"{copy}: {IN_PROGRESS}", "once that run finishes")
        assert not store.exists()
    finally:
        holder.communicate(timeout=30)
    assert history_add(copy, tmp_path / "h.duckdb").returncode == 0  # let go: stored


@pytest.mark.slow
def test_a_run_being_measured_is_refused_as_in_progress(tmp_path):
    """A real sweep, part way: samples.csv grows under the add, which once named a line of
    it as holding samples results.csv does not record."""
    folder = tmp_path / "live"
    sweep = subprocess.Popen(
        [sys.executable, "-m", "bench", "run", *QUICK_RUN, "--scenarios", "sequential",
         "--batch-sizes", "1,2,3,4,5,6", "--budget-s", "1", "--out-dir", str(folder)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        results = folder / "results.csv"
        deadline = time.monotonic() + 120
        while not (results.exists() and results.read_text().count("\n") > 1):
            assert sweep.poll() is None and time.monotonic() < deadline, sweep.stderr.read()
            time.sleep(0.05)
        store = tmp_path / "h.duckdb"
        refused(history_add(folder, store), IN_PROGRESS)
        assert sweep.poll() is None, "the sweep ended before the add: give it more to measure"
        assert not store.exists()
    finally:
        sweep.kill()
        sweep.communicate(timeout=60)


@pytest.mark.slow
def test_an_env_record_resealed_with_another_torch_is_refused_before_measuring(copy):
    """Sealed anew after the edit, the record passes its seal: the resume must still see
    that it and sweep.json name two torches, before it measures anything."""
    import json

    from bench.seal import DIGEST_KEY, seal
    env = json.loads((copy / "env.json").read_text())
    env.pop(DIGEST_KEY, None)
    env["torch_version"] = "9.9.9"
    (copy / "env.json").write_text(json.dumps(seal(env), indent=2))
    (copy / "results.csv").write_text("".join(
        (copy / "results.csv").read_text().splitlines(keepends=True)[:5]))  # one to measure
    before = files(copy)
    refused(resume(copy), "env.json records torch '9.9.9', sweep.json torch ")
    assert files(copy) == before


@pytest.mark.slow
def test_a_sweep_record_stripped_of_its_seal_beside_a_sealed_env_is_refused(copy):
    """Without its digest and its plan, sweep.json reads as an older writer's, which sealed
    nothing: but the env.json beside it is sealed, so this writer wrote both. The batch
    sizes edited with them were measured, and only `history add` refused the run, after."""
    import json

    sweep = json.loads((copy / "sweep.json").read_text())
    del sweep["digest"], sweep["configurations"]
    sweep["sweep"]["batch_sizes"] = [2, 4]
    (copy / "sweep.json").write_text(json.dumps(sweep, indent=2))
    before = files(copy)
    refused(resume(copy), "sweep.json has no digest and no 'configurations', though the "
                          "env.json beside it is sealed")
    assert files(copy) == before
