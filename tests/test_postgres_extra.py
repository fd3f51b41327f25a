"""PostgreSQL is an extra (``pip install 'multinet-bench[postgres]'``): an interpreter without
psycopg runs everything else, and a postgresql:// store there ends in one line that names the
extra and how to add it, exit code 2, before anything is measured."""

import subprocess
import sys
import tomllib
from pathlib import Path

from tests.support.synthetic import sweep_run

ROOT = Path(__file__).resolve().parent.parent
STORE = "postgresql://nobody@127.0.0.1:9/none"
EXTRA_LINE = "pip install 'multinet-bench[postgres]'"


def without_psycopg(*argv: str) -> subprocess.CompletedProcess:
    """``python -m bench ARGV`` in an interpreter whose import of psycopg fails, as it does
    where the extra is not installed (None in sys.modules makes the import raise)."""
    program = ("import sys; sys.modules['psycopg'] = None; from bench.cli import main; "
               f"sys.exit(main({list(argv)!r}))")
    return subprocess.run([sys.executable, "-c", program], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def test_a_postgres_store_without_the_extra_is_one_line_naming_it(tmp_path):
    proc = without_psycopg("history", "add", "--store", STORE, str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "postgres extra" in proc.stderr and EXTRA_LINE in proc.stderr


def test_a_run_bound_for_postgres_stops_before_measuring(tmp_path):
    out = tmp_path / "run"
    proc = without_psycopg("run", "--scenarios", "sequential", "--batch-sizes", "1",
                           "--out-dir", str(out), "--history", STORE)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and EXTRA_LINE in proc.stderr
    assert not out.exists()


def test_the_default_store_needs_no_psycopg(tmp_path):
    run = sweep_run(tmp_path / "run", scenarios=["sequential"], batch_sizes=[1],
                    samples_per_phase=20)
    store = tmp_path / "history.duckdb"
    proc = without_psycopg("history", "add", "--store", str(store), str(run))
    assert proc.returncode == 0, proc.stderr
    assert " added (" in proc.stdout and store.is_file()


def test_psycopg_is_an_extra_that_the_tests_install():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert not any(need.startswith("psycopg") for need in project["dependencies"])
    assert extras["postgres"] == ["psycopg[binary]>=3.1"]
    assert any("postgres" in need for need in extras["test"] if need.startswith("multinet"))
