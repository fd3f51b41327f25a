"""The script behind the suite's under-load figures: burners on every core while a tier
runs, each run's exit and pytest's last line kept. A real make, a real pytest, real
burner processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bench.selfcheck.tests_under_load import main
from tests.conftest import ROOT


@pytest.mark.slow
def test_a_tier_runs_beside_burners_and_its_outcome_is_kept(tmp_path):
    out = tmp_path / "load.json"
    code = main(["--tiers", "test", "--times", "2", "--burners", "1", "--out", str(out),
                 "--logs", str(tmp_path / "logs"), "--make-args", f"PYTHON={sys.executable} ARGS=tests/test_change_text.py"])
    record = json.loads(out.read_text())
    assert code == 0 and record["burners"] == 1 and len(record["runs"]) == 2
    for n, run in enumerate(record["runs"], start=1):
        assert run["tier"] == "test" and run["returncode"] == 0 and run["failed"] == []
        assert " passed" in run["pytest"] and "failed" not in run["pytest"]
        # the whole output is kept, the line the record took from it among it
        assert run["pytest"] in (tmp_path / "logs" / f"test-{n}.log").read_text()
    # the burners are gone with the command
    left = subprocess.run(["pgrep", "-f", "-P", str(os.getpid()),
                           "while True: pass"], capture_output=True, text=True)
    assert left.stdout.strip() == ""


def test_an_unknown_tier_is_one_line():
    proc = subprocess.run([sys.executable, "-m", "bench.selfcheck.tests_under_load", "--tiers",
                           "test,bench"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "--tiers 'test,bench': give one or more of test, test-all" in proc.stderr
