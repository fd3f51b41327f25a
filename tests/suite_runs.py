"""The pytest-benchmark suite run in a real pytest subprocess, on a one-configuration sweep."""

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

SWEEP = '''scenarios = ["sequential"]
sizes = ["seed"]
batch_sizes = [2]
devices = ["cpu"]
optimizer_setups = ["separate", "single"]
optimizers = ["adam"]
optimizer_impls = ["auto"]
'''


def suite(tmp_path, *args):
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(SWEEP)
    cmd = [sys.executable, "-m", "pytest", "bench/suite", "-p", "no:cacheprovider", "-q",
           "--benchmark-enable", "--benchmark-only", f"--suite-sweep={sweep}",
           "--suite-rounds=8", "--suite-warmup-rounds=2",
           f"--benchmark-storage=file://{tmp_path / 'storage'}", *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300,
                          # one thread: on two shared cores, two threads wait on each other
                          # whenever another process holds a core, and a step's minimum over
                          # eight rounds moved by more than 2x between processes under load
                          # and not as a worker of a parallel run of these tests, where
                          # pytest-benchmark would disable itself
                          env={**{k: v for k, v in os.environ.items()
                                  if not k.startswith("PYTEST_XDIST")},
                               "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})


def save_run(tmp_path: Path) -> Path:
    """A suite run saved with its per-round data, as `make bench-pytest` saves one."""
    proc = suite(tmp_path, "--benchmark-autosave", "--benchmark-save-data")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (saved_file,) = (tmp_path / "storage").rglob("*.json")
    return saved_file
