"""``run --resume DIR`` in this process: what it refuses, and how it repairs what a crash
can leave. The resume of a run stopped by a signal, in real processes, is in
test_signals.py."""

import json

import pandas as pd
import pytest
import torch

from bench.cli import main
from bench.seal import seal
from bench.sweep.config import load_sweep
from bench.sweep.folder import prepare_out_dir
from bench.sweep.loop import resume_sweep, run_sweep

QUICK = {"warmup_iters": 1, "warmup_s": 0, "min_samples": 3, "budget_s": 0}


def tiny_sweep(batch_sizes=(2,)):
    return load_sweep(overrides={
        "scenarios": ["separate_losses"], "sizes": ["seed"], "batch_sizes": list(batch_sizes),
        "devices": ["cpu"], "optimizer_setups": ["single"], "optimizers": ["sgd"],
        "optimizer_impls": ["loop"], "threads": 1, "workers": 1}, timing_overrides=QUICK)


@pytest.fixture
def run_dir(tmp_path):
    out = tmp_path / "run"
    run_sweep(tiny_sweep(), out, progress=False)
    return out


def edit_record(run_dir, change):
    """sweep.json as a run elsewhere would have written it (sealed anew): the resume's
    checks of torch, devices and scenarios, past the seal."""
    path = run_dir / "sweep.json"
    record = json.loads(path.read_text())
    change(record)
    path.write_text(json.dumps(seal(record)))


def refused(capsys, folder):
    def results():
        path = folder / "results.csv"
        return path.read_text() if path.exists() else None

    before = results()
    code = main(["run", "--quiet", "--resume", str(folder)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert results() == before  # nothing measured
    return err.strip()


def test_another_torch_version_is_refused(run_dir, capsys):
    edit_record(run_dir, lambda r: r.update(torch_version="1.13.1+cu117"))
    assert refused(capsys, run_dir) == (
        f"error: cannot resume {run_dir}: it was measured with torch 1.13.1+cu117, this is "
        f"torch {torch.__version__}; start a new run")


def test_another_device_is_refused(run_dir, capsys):
    edit_record(run_dir, lambda r: r["device_names"].update(cpu="Some Other CPU"))
    assert refused(capsys, run_dir).startswith(
        f"error: cannot resume {run_dir}: cpu was 'Some Other CPU', here it is ")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_a_device_that_is_not_here_is_refused(run_dir, capsys):
    edit_record(run_dir, lambda r: r["sweep"].update(devices=["cuda:0"]))
    assert "device 'cuda:0' is not available here" in refused(capsys, run_dir)


def test_a_folder_that_holds_no_run_is_refused(tmp_path, capsys):
    assert refused(capsys, tmp_path) == (f"error: --resume {tmp_path}: no sweep.json, so this "
                                         f"is not a run folder that can be resumed")
    assert list(tmp_path.iterdir()) == []  # not even a lock file left behind


def test_a_folder_in_use_is_refused(run_dir, capsys):
    lock = prepare_out_dir(run_dir, new=False)
    try:
        assert refused(capsys, run_dir) == f"error: {run_dir} is in use by another running sweep"
    finally:
        lock.close()


def test_a_scenario_that_needs_load_is_named(run_dir, capsys):
    edit_record(run_dir, lambda r: r["sweep"].update(scenarios=["my_gan"]))
    assert "scenario 'my_gan' is not registered; pass the file that registers it with --load" \
        in refused(capsys, run_dir)


def test_resume_with_nothing_left_measures_nothing(run_dir, capsys):
    before = (run_dir / "results.csv").read_text()
    assert main(["run", "--quiet", "--resume", str(run_dir)]) == 0
    assert (run_dir / "results.csv").read_text() == before
    env = json.loads((run_dir / "env.json").read_text())
    assert len(env["resumes"]) == 1
    assert env["run_id"] == pd.read_csv(run_dir / "results.csv").run_id[0]


def test_a_crash_mid_write_is_repaired(tmp_path):
    """A process killed outright (SIGKILL, power loss) can leave a half line, or samples whose
    results never made it. Resume drops both, and measures that configuration once more."""
    out = tmp_path / "run"
    run_sweep(tiny_sweep([2, 4]), out, progress=False)
    results = pd.read_csv(out / "results.csv")
    samples_before = pd.read_csv(out / "samples.csv")
    lost = results.config_id.iloc[-1]  # the last configuration written
    lines = (out / "results.csv").read_text().splitlines(keepends=True)
    kept = [line for line in lines if lost not in line]
    (out / "results.csv").write_text("".join(kept) + lines[-1][:40])  # its results: half a line

    outcome = resume_sweep(out, progress=False)
    assert [r.spec.batch_size for r in outcome.results] == [int(lost.split("/bs")[1].split("/")[0])]
    final = pd.read_csv(out / "results.csv")
    assert sorted(final.config_id.unique()) == sorted(results.config_id.unique())
    assert final.groupby(["repeat", "config_id"]).size().eq(4).all()
    samples = pd.read_csv(out / "samples.csv")
    key = ["repeat", "config_id", "phase", "iteration"]
    assert not samples.duplicated(key).any()
    assert samples[samples.config_id != lost].equals(
        samples_before[samples_before.config_id != lost].reset_index(drop=True))
    # the samples of the configuration measured again are the new ones
    counts = samples[samples.config_id == lost].groupby("phase").size()
    recorded = final[final.config_id == lost].set_index("phase").n_samples
    assert counts.to_dict() == recorded.to_dict()


def test_a_resume_still_skips_what_ran_out_of_memory(failing_scenarios, tmp_path):
    out = tmp_path / "run"
    config = load_sweep(overrides={
        "scenarios": ["test_cuda_hungry"], "sizes": ["seed"], "batch_sizes": [2, 8, 16],
        "devices": ["cpu"], "optimizer_setups": ["single"], "optimizers": ["sgd"],
        "optimizer_impls": ["loop"], "threads": 1, "workers": 1}, timing_overrides=QUICK)
    run_sweep(config, out, progress=False)
    lines = (out / "results.csv").read_text().splitlines(keepends=True)
    (out / "results.csv").write_text("".join(line for line in lines if "/bs16/" not in line))

    outcome = resume_sweep(out, progress=False)
    [result] = outcome.results
    assert (result.spec.batch_size, result.status) == (16, "skipped")
    assert result.error == "batch size 8 of the same configuration ran out of memory"


def test_an_edited_sweep_record_is_refused(run_dir, capsys):
    """Batch sizes added to sweep.json by hand would be measured under the run's id, as if
    the run had planned them: the README says such a record is refused."""
    path = run_dir / "sweep.json"
    record = json.loads(path.read_text())
    record["sweep"]["batch_sizes"] = [2, 4]
    path.write_text(json.dumps(record, indent=2))
    assert refused(capsys, run_dir) == (
        f"error: --resume {run_dir}: {path} is not what the run wrote: it was edited since "
        "(its digest no longer matches); start a new run")


def test_an_edited_environment_record_is_refused(run_dir, capsys):
    path = run_dir / "env.json"
    env = json.loads(path.read_text())
    env["hostname"] = "elsewhere"
    path.write_text(json.dumps(env, indent=2))
    before = path.read_text()
    assert refused(capsys, run_dir) == (
        f"error: {path} is not what the run wrote: it was edited since (its digest no longer "
        "matches) (delete it to resume, recording this machine's environment instead)")
    assert path.read_text() == before


def test_an_environment_record_whose_digest_was_removed_is_refused(run_dir, capsys):
    """sweep.json is sealed, so env.json was too: without its digest it was edited, and a
    resume would seal the edit anew."""
    path = run_dir / "env.json"
    env = json.loads(path.read_text())
    del env["digest"]
    env["hostname"] = "forged"
    path.write_text(json.dumps(env, indent=2))
    before = path.read_text()
    assert refused(capsys, run_dir) == (
        f"error: {path} has lost its 'digest': it is not what the run wrote (delete it to "
        "resume, recording this machine's environment instead)")
    assert path.read_text() == before


@pytest.mark.parametrize("name", ["sweep.json", "env.json"])
def test_another_run_s_record_is_named_as_the_foreign_file(run_dir, tmp_path, capsys, name):
    """One record copied from another run folder: the one whose run is not results.csv's
    is named, whichever it is."""
    other = tmp_path / "other"
    run_sweep(tiny_sweep(), other, progress=False)
    ours, theirs = (json.loads((d / "sweep.json").read_text())["run_id"]
                    for d in (run_dir, other))
    (run_dir / name).write_text((other / name).read_text())
    err = refused(capsys, run_dir)
    assert err.startswith(f"error: {run_dir / name} is of run {theirs!r}, not of {ours}")
    assert "belongs to another run folder" in err
    kept = "sweep.json" if name == "env.json" else "env.json"
    assert f"error: {run_dir / kept}" not in err


def test_a_sweep_that_plans_other_configurations_is_refused(run_dir, capsys):
    """A sweep.json sealed anew, as a run would write it, whose sweep no longer expands to
    the configurations it planned."""
    edit_record(run_dir, lambda r: r["sweep"].update(batch_sizes=[2, 4]))
    assert refused(capsys, run_dir) == (
        f"error: cannot resume {run_dir}: its sweep expands here to other configurations "
        "than the 1 the run set out to measure; start a new run")


def test_a_lock_that_is_a_folder_is_refused_in_one_line(run_dir, capsys):
    lock = run_dir / ".lock"
    lock.unlink()
    lock.mkdir()
    assert refused(capsys, run_dir) == (
        f"error: {lock} is not a lock file this harness can use (Is a directory); remove it "
        f"to use {run_dir}")


def test_a_lock_that_is_a_link_is_refused_and_nothing_is_made_where_it_points(run_dir, capsys,
                                                                              tmp_path):
    lock, elsewhere = run_dir / ".lock", tmp_path / "elsewhere.lock"
    lock.unlink()
    lock.symlink_to(elsewhere)
    assert refused(capsys, run_dir).startswith(f"error: {lock} is not a lock file this "
                                               "harness can use (")
    assert not elsewhere.exists()


def test_samples_of_another_run_are_refused(run_dir, capsys):
    run_id = json.loads((run_dir / "sweep.json").read_text())["run_id"]
    path = run_dir / "samples.csv"
    path.write_text(path.read_text().replace(run_id, "another-run"))
    assert refused(capsys, run_dir) == (
        f"error: {path}: line 2 holds a sample of run 'another-run', not of {run_id}")


def test_results_of_a_configuration_the_sweep_does_not_measure_are_refused(run_dir, capsys):
    """Rows of batch 3 added to a run of batch 2 alone: a resume would keep them as
    measured, under the run's id."""
    path = run_dir / "results.csv"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines + [line.replace("/bs2/", "/bs3/") for line in lines[1:]]))
    config = pd.read_csv(path)["config_id"].iloc[-1]
    assert refused(capsys, run_dir) == (
        f"error: {path}: line 6: {config} (repeat 1) is not one of the configurations the "
        "run's sweep measures: the file is damaged")


def test_samples_whose_results_were_deleted_are_kept_and_the_resume_refused(run_dir, capsys):
    """results.csv is made before any sample is written: samples without it are no crash's
    doing, and measuring the run again would write over them."""
    samples = (run_dir / "samples.csv").read_text()
    (run_dir / "results.csv").unlink()
    assert refused(capsys, run_dir) == (
        f"error: {run_dir / 'results.csv'} is missing, but samples.csv holds samples: the "
        "folder is damaged; restore it, or move samples.csv aside to measure the run again")
    assert (run_dir / "samples.csv").read_text() == samples
