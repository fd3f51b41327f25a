"""`make bench-versions`: a version pip cannot install is named and skipped."""

import subprocess
import sys

import pytest

from bench.tools.versions import version_key
from tests.conftest import ROOT


def test_versions_sort_numerically():
    assert sorted(["2.14.1", "2.9.1", "2.13.0"], key=version_key) == ["2.9.1", "2.13.0", "2.14.1"]


@pytest.mark.slow
def test_uninstallable_versions_are_named_and_skipped(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "bench.tools.versions", "0.0.1", "0.0.2", "--venvs", str(tmp_path / "v"),
         "--out-dir", str(tmp_path / "out")], cwd=ROOT, capture_output=True, text=True,
        timeout=600)
    assert proc.returncode == 2
    assert "[torch 0.0.1] cannot install" in proc.stderr
    assert "[torch 0.0.2] cannot install" in proc.stderr  # the first failure did not stop it
    assert "fewer than two torch versions ran" in proc.stderr
