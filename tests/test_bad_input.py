"""Bad input to ``python -m bench run``, through the command line's own entry point: one line
on stderr, exit code 2, no traceback, and nothing created or measured. (test_cli.py runs the
same entry point in subprocesses for the runner's original cases.)"""

import pandas as pd
import pytest

from bench.cli import main
from bench.axes import BATCH_SIZE

MAX_BATCH_SIZE = BATCH_SIZE.maximum

QUICK = ["--warmup-iters", "1", "--warmup-s", "0", "--min-samples", "3", "--budget-s", "0",
         "--threads", "1", "--quiet"]
SMALL = ["--scenarios", "sequential", "--optimizer-setups", "single", "--devices", "cpu"]


def one_line_error(capsys, args):
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    return err.strip()


@pytest.mark.parametrize("batch_sizes, message", [
    ("0", "batch sizes must be positive integers, got 0"),
    ("-4", "batch sizes must be positive integers, got -4"),
    ("2.5", "--batch-sizes: '2.5' is not an integer"),
    ("1e3", "--batch-sizes: '1e3' is not an integer"),
    (str(MAX_BATCH_SIZE + 1), f"batch size {MAX_BATCH_SIZE + 1} exceeds the limit of "
                              f"{MAX_BATCH_SIZE}"),
    (",", "'batch_sizes' is empty; give at least one value"),
])
def test_bad_batch_sizes(capsys, tmp_path, monkeypatch, batch_sizes, message):
    monkeypatch.chdir(tmp_path)
    assert message in one_line_error(capsys, ["run", "--batch-sizes", batch_sizes])
    assert list(tmp_path.iterdir()) == []


def test_an_empty_list_of_names(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert "'scenarios' is empty" in one_line_error(capsys, ["run", "--scenarios", ""])


def test_an_unknown_key_in_a_sweep_file(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sweep = tmp_path / "sweep.toml"
    sweep.write_text('scenarios = ["sequential"]\nbatch_size = [4]\n')
    assert "sweep file sweep.toml: unknown key 'batch_size'; valid: scenarios, sizes, devices, " \
        "batch_sizes" in one_line_error(capsys, ["run", "--sweep", str(sweep)])
    assert list(tmp_path.iterdir()) == [sweep]


def test_an_out_dir_that_is_a_file(capsys, tmp_path):
    target = tmp_path / "file"
    target.write_text("")
    assert one_line_error(capsys, ["run", *SMALL, "--out-dir", str(target)]) == \
        f"error: --out-dir {target} is a file, not a folder"


def test_an_unwritable_out_dir_is_reported_before_measuring(capsys, tmp_path):
    # permissions do not stop root, so: a folder that would have to live inside a file
    (tmp_path / "file").write_text("")
    target = tmp_path / "file" / "run"
    assert one_line_error(capsys, ["run", *SMALL, "--out-dir", str(target)]) == \
        f"error: --out-dir {target} is not writable: Not a directory"


@pytest.mark.slow
def test_an_out_dir_that_holds_a_run(capsys, tmp_path):
    out = tmp_path / "run"
    assert main(["run", *SMALL, "--batch-sizes", "2", *QUICK, "--out-dir", str(out)]) == 0
    capsys.readouterr()
    before = (out / "results.csv").read_text()
    assert one_line_error(capsys, ["run", *SMALL, "--out-dir", str(out)]) == (
        f"error: --out-dir {out} already holds a run; continue it with --resume {out}, or "
        f"choose another folder")
    assert (out / "results.csv").read_text() == before


@pytest.mark.parametrize("extra, flag", [(["--batch-sizes", "2"], "--batch-sizes"),
                                         (["--target-ci", "0.1"], "--target-ci"),
                                         (["--out-dir", "x"], "--out-dir")])
def test_resume_takes_no_sweep_options(capsys, tmp_path, extra, flag):
    assert one_line_error(capsys, ["run", "--resume", str(tmp_path), *extra]) == (
        f"error: --resume continues the sweep recorded in {tmp_path}; it takes no {flag}")


@pytest.mark.slow
def test_duplicates_are_dropped_with_a_notice(capsys, tmp_path):
    out = tmp_path / "run"
    assert main(["run", *SMALL, "--batch-sizes", "2,2", *QUICK, "--out-dir", str(out)]) == 0
    assert "note: command line: duplicate values in 'batch_sizes' dropped" in \
        capsys.readouterr().err
    assert len(pd.read_csv(out / "results.csv")) == 4  # one configuration, four phases


def test_a_folder_a_resume_cannot_write_is_named_by_its_own_option(tmp_path):
    """A resume is given its folder with --resume: a refusal naming --out-dir sent the user
    looking for an option they never gave."""
    from bench.errors import UsageError
    from bench.sweep.folder import prepare_out_dir
    (tmp_path / "file").write_text("")
    target = tmp_path / "file" / "run"
    with pytest.raises(UsageError, match=f"^--resume {target} is not writable: Not a directory$"):
        prepare_out_dir(target, new=False)
