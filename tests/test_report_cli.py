"""`report` and `compare` in real subprocesses: outputs, exit codes, bad input, no torch."""

import importlib.util
import subprocess
import sys

import pytest

from bench.cli import main
from bench.schema import FIELDS
from tests.support.synthetic import result_row, sweep_run, write_run
from tests.conftest import ROOT, run_cli

pytestmark = pytest.mark.slow
SWEEP = dict(scenarios=("sequential",), batch_sizes=(1, 32), samples_per_phase=40)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return {"a": sweep_run(root / "a", run_id="a", seed=1, **SWEEP),
            "b": sweep_run(root / "b", run_id="b", seed=2, **SWEEP),
            "slow": sweep_run(root / "slow", run_id="slow", seed=3, slowdown=1.2, **SWEEP),
            "a3": sweep_run(root / "a3", run_id="a3", seed=4, repeats=3, **SWEEP),
            "slow3": sweep_run(root / "slow3", run_id="slow3", seed=5, slowdown=1.2, repeats=3,
                               **SWEEP)}


def test_report_and_compare_never_import_torch(runs, tmp_path):
    code = ("import sys; from bench.cli import main; "
            f"assert main(['report', {str(runs['a'])!r}, '--out', {str(tmp_path / 'r.html')!r}]) == 0; "
            f"assert main(['compare', {str(runs['a'])!r}, {str(runs['b'])!r}, '--out', "
            f"{str(tmp_path / 'c.html')!r}]) == 0; "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "r.html").stat().st_size > 0 and (tmp_path / "c.html").stat().st_size > 0


def test_report_writes_beside_the_run_and_says_where(runs, tmp_path):
    proc = run_cli("report", str(runs["a"]))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"Report: {runs['a'] / 'report.html'}"
    proc = run_cli("report", str(runs["a"]), str(runs["b"]))
    assert proc.stdout.strip() == f"Report: {runs['a'].parent / 'report.html'}"


def test_compare_exit_codes_gate_on_regressions(runs, tmp_path):
    out = tmp_path / "aa.html"
    proc = run_cli("compare", str(runs["a"]), str(runs["b"]), "--fail-on-regression",
                   "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 regression(s), 0 improvement(s)" in proc.stdout and out.exists()
    # one run a side: 20% slower everywhere is a shift that drift could explain, not a failure
    proc = run_cli("compare", str(runs["a"]), str(runs["slow"]), "--fail-on-regression",
                   "--out", str(out))
    assert proc.returncode == 0 and "0 regression(s)" in proc.stdout
    assert "slower throughout" in proc.stdout
    assert "cannot tell this from machine drift" in proc.stdout
    # three repeats a side agree within 1%: Welch flags every measurement
    proc = run_cli("compare", str(runs["a3"]), str(runs["slow3"]), "--out", str(out))
    assert proc.returncode == 0 and "24 regression(s)" in proc.stdout  # 6 configs x 4 phases
    proc = run_cli("compare", str(runs["a3"]), str(runs["slow3"]), "--fail-on-regression",
                   "--threshold", "25", "--out", str(out))
    assert proc.returncode == 0, "a 20% slowdown is under a 25% threshold"
    proc = run_cli("compare", str(runs["a3"]), str(runs["slow3"]), str(runs["a"]),
                   "--fail-on-regression")
    assert proc.returncode == 1
    assert proc.stdout.rstrip().endswith(f"Comparison page: {runs['slow3'] / 'comparison.html'}")


@pytest.mark.skipif(importlib.util.find_spec("kaleido") is not None,
                    reason="kaleido is installed here")
def test_png_without_kaleido_says_so_and_writes_the_html(runs, tmp_path):
    proc = run_cli("report", str(runs["a"]), "--out", str(tmp_path / "r.html"), "--png")
    assert proc.returncode == 0
    assert "--png needs the kaleido package" in proc.stderr
    assert (tmp_path / "r.html").exists()


def csv_text(rows):
    header = ",".join(FIELDS)
    return header + "\r\n" + "".join(",".join(str(r[f]) for f in FIELDS) + "\r\n" for r in rows)


def bad_folders(root):
    """name -> (folder, the message expected on stderr)."""
    good = csv_text([result_row()])
    cases = {
        "no results": ("", "holds no results.csv"),
        "empty": ("", "is empty"),
        "header only": (",".join(FIELDS) + "\r\n", "holds a header but no rows"),
        "truncated": (good[:-30], "is truncated: its last line is incomplete (it has no line break at its end"),
        "cut row": (good + "1,run-a,1,sequential/seed\r\n", "line 3 has empty cells"),
        "missing columns": ("run_id,phase\r\nx,step\r\n", "lacks the column(s) schema_version"),
        "other schema": (good.replace("\r\n1,", "\r\n2,"),
                         "has schema version 2; this harness reads version 1"),
        "not csv": ('a,"b\r\n', "not a readable CSV"),
    }
    out = {}
    for name, (text, message) in cases.items():
        folder = root / name.replace(" ", "-")
        folder.mkdir()
        if name != "no results":
            (folder / "results.csv").write_text(text, newline="")
        out[name] = (folder, message)
    return out


# A sample of the cases in real processes; all of them through the same entry point in
# this one (what the process prints and returns is main's, see bench/__main__.py).
IN_SUBPROCESS = ("no results", "truncated", "other schema")


def test_bad_input_is_one_line_and_exit_2(runs, tmp_path, capsys):
    for name, (folder, message) in bad_folders(tmp_path).items():
        assert main(["report", str(folder)]) == 2
        assert main(["compare", str(runs["a"]), str(folder)]) == 2
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 2 and all(message in line for line in err), (name, err)
        if name in IN_SUBPROCESS:
            proc = run_cli("report", str(folder))
            assert proc.returncode == 2, (name, proc.stderr)
            assert proc.stderr.strip() == err[0]  # one line, no traceback


def test_runs_with_nothing_in_common_and_missing_folders(runs, tmp_path):
    other = write_run(tmp_path / "other", [result_row(scenario="shared_input", run_id="o")])
    proc = run_cli("compare", str(runs["a"]), str(other))
    assert proc.returncode == 2 and "nothing in common" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    proc = run_cli("report", str(tmp_path / "nope"))
    assert proc.returncode == 2 and proc.stderr.strip().endswith("nope: no such run folder")
    proc = run_cli("compare", str(runs["a"]), str(runs["b"]), "--threshold", "x")
    assert proc.returncode == 2 and "'x' is not a number" in proc.stderr
