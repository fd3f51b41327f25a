"""`make bench-versions`: a version pip cannot install is named and skipped."""

import subprocess
import sys

import pytest

from bench.releases import version_key
from tests.conftest import ROOT


def test_versions_sort_numerically():
    assert sorted(["2.14.1", "2.9.1", "2.13.0"], key=version_key) == ["2.9.1", "2.13.0", "2.14.1"]


@pytest.mark.slow
def test_uninstallable_versions_are_named_and_skipped(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "versions", "0.0.1", "0.0.2",
         "--venvs", str(tmp_path / "v"),
         "--out-dir", str(tmp_path / "out")], cwd=ROOT, capture_output=True, text=True,
        timeout=600)
    assert proc.returncode == 2
    assert "[torch 0.0.1] cannot install" in proc.stderr
    assert "[torch 0.0.2] cannot install" in proc.stderr  # the first failure did not stop it
    assert "fewer than two torch versions ran" in proc.stderr


def test_a_release_candidate_sorts_before_its_release():
    versions = ["2.13.0", "2.13.0rc1", "2.9.1", "2.13.0.dev20260101", "2.13.0+cpu"]
    assert sorted(versions, key=version_key) == [
        "2.9.1", "2.13.0.dev20260101", "2.13.0rc1", "2.13.0", "2.13.0+cpu"]


def test_a_version_that_is_no_version_is_refused_before_anything_is_made(tmp_path):
    """Each version names a folder (.venvs/torch-VERSION): a path in it would leave it."""
    for version in ("../../escaped", "2.13/../x", "latest"):
        proc = subprocess.run(
            [sys.executable, "-m", "bench", "versions", "2.13.0", version, "--venvs",
             str(tmp_path / "v"), "--out-dir", str(tmp_path / "out")], cwd=ROOT,
            capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
        assert f"{version!r} is not a torch version such as 2.13.0 or 2.13.0rc1" in proc.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_a_release_and_its_candidate_give_one_line_not_a_traceback(tmp_path):
    """`versions 2.13.0 2.13.0rc1`: 2.13.0's environment is there already (this one); the
    candidate cannot be installed here, so fewer than two versions ran, said in a line."""
    venvs = tmp_path / "v"
    ready = venvs / "torch-2.13.0"
    (ready / "bin").mkdir(parents=True)
    (ready / "bin" / "python").symlink_to(sys.executable)
    (ready / ".installed").touch()
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "versions", "2.13.0", "2.13.0rc1", "--venvs",
         str(venvs), "--out-dir", str(tmp_path / "out"), "--pip-args",
         f"--no-index --find-links {tmp_path / 'nothing'}"], cwd=ROOT, capture_output=True,
        text=True, timeout=600)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[0].startswith("[torch 2.13.0rc1] cannot install")
    assert proc.stderr.splitlines()[-1] == ("error: fewer than two torch versions ran; nothing "
                                            "to compare")


@pytest.mark.parametrize("args, said", [
    (["2.13.0", "2.14.1", "--pip-args", "'x"], "--pip-args \"'x\": No closing quotation"),
    pytest.param(["2.13.0", "2.13.0"], "give two torch versions or more to compare",
                 marks=pytest.mark.slow),
])
def test_what_cannot_run_is_refused_before_anything_is_installed(tmp_path, args, said):
    from tests.support.refusals import refused_in_one_line
    proc = subprocess.run([sys.executable, "-m", "bench", "versions", *args, "--venvs",
                           str(tmp_path / "v"), "--out-dir", str(tmp_path / "out")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    refused_in_one_line(proc, said)
    assert not (tmp_path / "v").exists() and not (tmp_path / "out").exists()
