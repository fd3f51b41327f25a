"""Where paired rounds go and what they run in: a relative --out-dir is taken where the
command was typed, a folder that holds a run or one environment's rounds is not taken for
the rounds' own, and an "interpreter" that runs nothing is refused before any round.
Real subprocesses."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.support.refusals import refused_in_one_line

SWEEP = ("--scenarios sequential --batch-sizes 2 --optimizer-setups separate --devices cpu "
         "--min-samples 3 --budget-s 0 --warmup-s 0 --threads 1")


def paired_rounds(*args: str, cwd=ROOT, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", "paired-rounds", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


def test_a_program_that_runs_nothing_is_no_interpreter(tmp_path):
    true = shutil.which("true")
    proc = paired_rounds("--env", f"a={true}", "--env", f"b={sys.executable}",
                         "--out-dir", str(tmp_path / "out"))
    refused_in_one_line(proc, f"--env a={true} cannot run a sweep")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_folder_holding_a_run_or_one_environment_s_rounds_is_refused(real_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(real_run, run)
    env_folder = tmp_path / "earlier" / "a"
    shutil.copytree(real_run, env_folder / "round-01")
    for out, said in ((run, "holds a run"), (env_folder, "holds one environment's rounds")):
        before = sorted(p.name for p in out.iterdir())
        proc = paired_rounds("--env", f"a={sys.executable}", "--env", f"b={sys.executable}",
                             "--out-dir", str(out))
        refused_in_one_line(proc, f"--out-dir {out} {said}")
        assert sorted(p.name for p in out.iterdir()) == before  # nothing added to it


@pytest.mark.slow
def test_a_relative_out_dir_is_where_the_command_was_typed(tmp_path):
    proc = paired_rounds("--env", f"a={sys.executable}", "--env", f"b={sys.executable}",
                         "--rounds", "2", "--out-dir", "rel/rounds", "--run-args", SWEEP,
                         cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "rel" / "rounds"
    for side in ("a", "b"):
        assert (out / side / "round-02" / "results.csv").exists()
    assert (out / "paired.html").exists() and (out / "rounds.json").exists()
    assert not (ROOT / "rel").exists()
    assert f"{out}/paired.html" in proc.stdout
