"""The command line in real subprocesses: what users type and what they get back."""

import json
import os
import subprocess
import sys

import pandas as pd
import pytest
import torch

from bench.schema import FIELDS
from tests.conftest import ROOT

pytestmark = pytest.mark.slow
QUICK = ["--warmup-iters", "1", "--warmup-s", "0", "--min-samples", "5", "--budget-s", "0.05"]


def test_run_writes_a_complete_run_folder(cli, tmp_path):
    out = tmp_path / "run"
    proc = cli("run", "--scenarios", "sequential,separate_losses", "--batch-sizes", "2",
               "--optimizer-setups", "separate,grouped", "--devices", "cpu", "--threads", "1",
               "--out-dir", str(out), *QUICK)
    assert proc.returncode == 0, proc.stderr
    df = pd.read_csv(out / "results.csv")
    assert tuple(df.columns) == FIELDS
    assert len(df) == 2 * 2 * 4  # scenarios x setups x (3 phases + step)
    assert set(df.status) == {"ok"} and set(df.threads) == {1}
    assert (df.n_samples >= 5).all() and (df.median_ms > 0).all()
    assert df.run_id.nunique() == 1 and (df.torch_version == torch.__version__).all()
    samples = pd.read_csv(out / "samples.csv")
    counts = samples.groupby(["config_id", "phase"]).size()
    assert (counts == df.set_index(["config_id", "phase"]).n_samples.reindex(counts.index)).all()
    env = json.loads((out / "env.json").read_text())
    assert env["run_id"] == df.run_id[0] and env["threads"] == 1
    # the progress goes to stderr, one line per configuration off a terminal; the summary
    # to stdout
    assert proc.stderr.count("| sequential/") + proc.stderr.count("| separate_losses/") == 4
    assert "against `separate`" in proc.stdout and "separate_losses" in proc.stdout
    assert str(out / "results.csv") in proc.stdout
    # the run ends with its report, and says where it is
    assert proc.stdout.rstrip().endswith(f"Report: {out / 'report.html'}")
    assert "Step time and throughput" in (out / "report.html").read_text()


def test_no_report_leaves_the_page_to_the_report_command(cli, tmp_path):
    out = tmp_path / "run"
    proc = cli("run", "--scenarios", "sequential", "--batch-sizes", "2", "--optimizer-setups",
               "single", "--devices", "cpu", "--out-dir", str(out), "--no-report", *QUICK)
    assert proc.returncode == 0, proc.stderr
    assert "Report:" not in proc.stdout and not (out / "report.html").exists()
    assert (out / "results.csv").exists() and (out / "ratios.csv").exists()
    proc = cli("report", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "Step time and throughput" in (out / "report.html").read_text()


def reference_rows(stdout: str, impl: str) -> list[str]:
    """The rows of verify's reference table for one implementation."""
    table = stdout.split("Against the reference loops", 1)[1]
    return [line for line in table.splitlines() if line[29:38].strip() == impl]


def test_verify_passes_and_prints_its_three_tables(cli):
    # two of the article's scenarios (one with three networks) and one workload with a
    # target update and untrained networks: the command end to end (every scenario is
    # checked in tests/test_verify.py, tests/test_reference_loops.py and
    # tests/test_workload_references.py; all of them here take minutes on a loaded machine)
    scenarios = ["separate_losses", "n_chain", "sac"]
    proc = cli("verify", "--steps", "2", "--scenarios", ",".join(scenarios))
    assert proc.returncode == 0, proc.stderr
    assert "Checked at size seed: separate_losses, n_chain; tiny: sac" in proc.stdout
    assert ("separate_losses   loss_linear         linear                 linear                 ok"
            in proc.stdout)
    assert "n_chain           loss                net0, net1, net2       net0, net1, net2       ok" in proc.stdout
    equivalence, reference = proc.stdout.split("Against the reference loops")
    # 2 setups x scenarios x optimizers x impls
    assert equivalence.count("identical") == 2 * len(scenarios) * 3 * 3
    # against the reference: loop and foreach bitwise in all three setups
    for impl in ("loop", "foreach"):
        rows = reference_rows(proc.stdout, impl)
        assert len(rows) == len(scenarios) * 3
        assert all(row.split()[3:] == ["identical"] * 3 for row in rows), rows
    assert "All checks hold." in proc.stdout


def test_verify_under_bf16_says_so_and_the_tolerance(cli):
    proc = cli("verify", "--steps", "2", "--precision", "bf16", "--scenarios", "gan,n_chain")
    assert proc.returncode == 0, proc.stderr
    assert "Gradient flow on cpu, bf16:" in proc.stdout
    assert "Setup equivalence on cpu, bf16, after 2 steps" in proc.stdout
    assert "tolerance: bitwise" in proc.stdout
    equivalence = proc.stdout.split("Against the reference loops")[0]
    assert equivalence.count("identical") == 2 * 2 * 3 * 3
    assert "Against the reference loops on cpu, bf16, over 2 steps" in proc.stdout
    assert all(row.split()[3:] == ["identical"] * 3 for row in reference_rows(proc.stdout,
                                                                              "loop"))


@pytest.mark.parametrize("args, message", [
    (["run", "--scenarios", "nope"], "unknown scenario 'nope'; valid: clip, cyclegan, dcgan, detached, distill, gan, n_chain, "
         "n_ensemble, sac, separate_losses, sequential, shared_input, shared_trunk"),
    (["run", "--batch-sizes", "0"], "batch sizes must be positive integers, got 0"),
    (["run", "--batch-sizes", "x"], "--batch-sizes: 'x' is not an integer"),
    (["run", "--optimizer", "lamb"], "unknown optimizer 'lamb'"),
    (["run", "--optimizer-setups", "pairs"], "unknown optimizer setup 'pairs'"),
    (["run", "--optimizer-impl", "fast"], "unknown optimizer impl 'fast'"),
    (["run", "--devices", "tpu"], "unknown device 'tpu'"),
    (["run", "--min-samples", "0"], "min_samples"),
    (["run", "--sweep", "/nonexistent.toml"], "sweep file not found"),
    (["run", "--bogus"], "unrecognized arguments: --bogus"),
    (["verify", "--scenarios", "nope"], "unknown scenario 'nope'"),
    (["verify", "--precision", "fp8"], "unknown precision 'fp8'; valid: bf16, fp16, fp32"),
    (["verify", "--precision", "fp16"], "precision fp16 (autocast with a GradScaler) needs "
     "CUDA; cpu supports fp32, bf16"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_bad_input_is_one_line_and_exit_2(cli, tmp_path, args, message):
    proc = cli(*args, cwd=tmp_path)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: ")  # the parser's refusals as every other
    assert not (tmp_path / "results").exists()  # nothing created before validation


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_on_a_machine_without_it(cli, tmp_path):
    proc = cli("run", "--devices", "cuda", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"error: device 'cuda' is not available here (torch "
                                   f"{torch.__version__} sees no CUDA device); available: auto, cpu")


def test_out_dir_that_is_a_file(cli, tmp_path):
    target = tmp_path / "file"
    target.write_text("")
    proc = cli("run", "--devices", "cpu", "--out-dir", str(target))
    assert proc.returncode == 2 and "is a file, not a folder" in proc.stderr


def test_schema_command_prints_the_documented_table(cli):
    proc = cli("schema")
    assert proc.returncode == 0 and "| `median_ms` | ms |" in proc.stdout


def test_a_reader_that_has_gone_is_not_a_traceback(tmp_path):
    """`python -m bench schema | head -0`: the pipe's read end is closed before any write."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run([sys.executable, "-m", "bench", "schema"], cwd=ROOT,
                              stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=60,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    finally:
        os.close(write_end)
    assert proc.returncode == 141 and proc.stderr == ""


def test_sigint_before_the_sweep_starts_is_one_line_and_130(cli, tmp_path):
    """A real SIGINT while the command is still starting (here from a --load file, which
    runs before the command), when the sweep's own handlers are not installed yet."""
    interrupt = tmp_path / "interrupt.py"
    # Python's own handler first: a process started in the background by a shell without
    # job control (nohup cmd &) inherits SIGINT ignored, as an interactive user's does not
    interrupt.write_text("import os, signal, time\n"
                         "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
                         "os.kill(os.getpid(), signal.SIGINT)\n"
                         "time.sleep(30)\n")
    proc = cli("--load", str(interrupt), "run", "--devices", "cpu",
               "--out-dir", str(tmp_path / "run"))
    assert proc.returncode == 130
    assert proc.stderr.strip() == "interrupted"
    assert not (tmp_path / "run").exists()


def test_an_interpreter_without_the_packages_a_command_needs_is_told_in_one_line(
        tmp_path, bare_python):
    """`python -m bench run` from an environment with nothing installed, as the paired
    rounds would start it in a user's other environment."""
    proc = subprocess.run([bare_python, "-m", "bench", "run", "--devices", "cpu", "--out-dir",
                           str(tmp_path / "run")], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("error: `python -m bench run` needs ")
    assert f"which {bare_python} cannot import: run it with an environment's interpreter " \
           "that has it" in proc.stderr
    assert not (tmp_path / "run").exists()
