"""The execution axis through the real command line: its column and config_id, comparison
groups by execution, the report's findings per scenario, the refusals, verify's section,
and gpu-check's executions check run on the CPU with stacking standing in for streams."""

import re

import pandas as pd
import pytest

from bench.axes import config_id
from bench.present.findings import scenario_sentences
from bench.tools import gpu_executions
from multinet import InvalidChoice, StepSpec
from multinet.step import unsupported

QUICK = ["--devices", "cpu", "--warmup-iters", "1", "--warmup-s", "0", "--min-samples", "3",
         "--budget-s", "0.05", "--min-rounds", "3", "--quiet"]


def test_the_default_keeps_every_config_id_and_the_others_name_themselves():
    assert config_id(StepSpec("n_ensemble", 8, n_networks=8)) == \
        "n_ensemble/seed/cpu/bs8/separate/adam/auto/n8"
    assert config_id(StepSpec("n_ensemble", 8, n_networks=8, execution="stacked")) == \
        "n_ensemble/seed/cpu/bs8/separate/adam/auto/n8/stacked"
    with pytest.raises(InvalidChoice, match="unknown execution 'vmap'; valid: sequential, "
                                            "stacked, streams"):
        StepSpec("n_ensemble", 8, execution="vmap")


def test_stacking_networks_that_differ_is_refused_in_one_line(cli, tmp_path):
    proc = cli("run", "--scenarios", "gan", "--batch-sizes", "2", "--execution", "stacked",
               *QUICK, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.strip() == (
        "error: no configuration of this sweep can run here: execution stacked runs networks "
        "of one architecture on the same inputs as one; those of 'gan' differ")
    assert unsupported(StepSpec("n_ensemble", 2, execution="stacked", compile="modules")) == (
        "execution stacked is not combined with torch.compile: it is built for the eager "
        "step of one process")


@pytest.mark.slow
def test_a_run_compared_by_execution_pairs_stacked_with_sequential(cli, tmp_path):
    out = tmp_path / "run"
    proc = cli("run", "--scenarios", "n_ensemble,shared_input", "--batch-sizes", "2",
               "--n-networks", "3", "--optimizer-setups", "separate",
               "--execution", "sequential,stacked", "--compare-by", "execution",
               "--out-dir", str(out), *QUICK)
    assert proc.returncode == 0, proc.stderr
    assert [line for line in proc.stderr.splitlines() if "not attempted" in line] == [
        "note: 1 configuration(s) not attempted: execution stacked runs networks of one "
        "architecture on the same inputs as one; those of 'shared_input' differ"]
    steps = pd.read_csv(out / "results.csv").query("phase == 'step'")
    assert sorted(steps.execution) == ["sequential", "sequential", "stacked"]
    stacked = steps[steps.execution == "stacked"].iloc[0]
    assert stacked.config_id == "n_ensemble/seed/cpu/bs2/separate/adam/loop/n3/stacked"
    assert stacked.group == "n_ensemble/seed/cpu/bs2/separate/adam/loop/n3"
    ratios = pd.read_csv(out / "ratios.csv").query("phase == 'step'")
    assert ratios[["compared", "reference", "value"]].values.tolist() == [
        ["execution", "sequential", "stacked"]]
    # the summary's table has a column per execution
    assert "sequential" in proc.stdout and "stacked" in proc.stdout
    report = cli("report", str(out), "--out", str(tmp_path / "r.html"))
    assert report.returncode == 0, report.stderr
    page = (tmp_path / "r.html").read_text()
    assert "n_ensemble: `stacked` against `sequential` (execution) over 1 configuration: " \
        in page.replace("&#x60;", "`")
    assert "What each varied axis changes" in page


def test_a_sentence_per_scenario_counts_its_verdicts_with_their_ranges():
    steps = pd.DataFrame({
        "scenario": ["n_ensemble"] * 4 + ["sac"],
        "compared": ["execution"] * 5, "reference": ["sequential"] * 5,
        "value": ["stacked"] * 5,
        "verdict": ["faster", "faster", "slower", "inconclusive", "same"],
        "ratio": [0.25, 0.5, 1.5, 1.01, 0.99]})
    assert scenario_sentences(steps) == [
        "n_ensemble: `stacked` against `sequential` (execution) over 4 configurations: "
        "2 faster (0.25 to 0.5), 1 slower (1.5), 1 inconclusive.",
        "sac: `stacked` against `sequential` (execution) over 1 configuration: 1 same."]


def test_gpu_check_s_executions_check_on_the_cpu(monkeypatch, tmp_path):
    """The GPU's sweep and checks, with stacking on the CPU standing in for streams."""
    sweep = tmp_path / "executions.toml"
    sweep.write_text('scenarios = ["n_ensemble"]\nsizes = ["seed"]\nbatch_sizes = [2]\n'
                     'devices = ["cpu"]\noptimizer_setups = ["separate"]\n'
                     'optimizers = ["adam"]\noptimizer_impls = ["auto"]\n'
                     'executions = ["sequential", "stacked"]\ncompare_by = "execution"\n'
                     '[timing]\nwarmup_s = 0\nbudget_s = 0.05\nmin_rounds = 3\n')
    monkeypatch.setattr(gpu_executions, "EXECUTIONS_SWEEP", sweep)
    monkeypatch.setattr(gpu_executions, "TIMED", ("stacked", ("n_ensemble",)))
    monkeypatch.setattr(gpu_executions, "EXECUTION_ENDS",
                        (("n_ensemble", "seed", 3, "stacked"),))
    checks = gpu_executions.execution_checks("cpu", tmp_path)
    assert [(name, ok) for name, ok, _ in checks] == [
        ("executions measured", True), ("stacked against sequential", True),
        ("executions end where sequential ends", True)]
    assert checks[1][2].startswith("n_ensemble seed stacked: ")
    # bit for bit on some CPUs; on others the stacked matmuls round apart, well within
    # the tolerance the check states
    said = re.fullmatch(r"n_ensemble stacked: (identical|rel diff (\S+)) \(norm rtol=0\.0001, "
                        r"atol=1e-07 where not identical\)", checks[2][2])
    assert said is not None, checks[2][2]
    assert said.group(2) is None or float(said.group(2)) < 1e-4


@pytest.mark.slow
def test_verify_runs_each_execution_where_it_applies(cli):
    proc = cli("verify", "--scenarios", "n_ensemble,gan", "--steps", "2", timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "streams is not checked for n_ensemble: execution streams needs CUDA streams; " \
           "cpu has none." in out
    assert "No stackable networks declared by gan: stacked does not apply." in out
    rows = [line for line in out.splitlines() if line.split()[:2] == ["n_ensemble", "stacked"]]
    # 3 optimizers x 3 implementations, against sequential and against the reference loop
    assert len(rows) == 18 and not any("FAILED" in r for r in rows)
