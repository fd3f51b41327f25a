"""The sweep axes beyond the article's (precision, compile, CUDA graphs, optimizer
implementation, N networks) on the CPU, through the real command line."""

import pandas as pd
import pytest

from bench.sweep.config import expand_all, load_sweep
from bench.errors import UsageError
from bench.axes import config_id
from bench.analyze.reader import load_run
from bench.present.labels import tidy
from multinet import StepSpec

QUICK = ["--devices", "cpu", "--warmup-iters", "1", "--warmup-s", "0", "--min-samples", "3",
         "--budget-s", "0", "--quiet"]


@pytest.mark.slow
def test_axes_become_columns_and_cuda_only_combinations_are_listed_once(cli, tmp_path):
    out = tmp_path / "run"
    proc = cli("run", "--scenarios", "sequential,n_chain", "--batch-sizes", "4",
               "--optimizer-setups", "single", "--optimizer-impl", "loop,foreach,fused",
               "--precision", "fp32,bf16", "--cuda-graph", "off,on", "--n-networks", "2,3",
               "--out-dir", str(out), *QUICK)
    assert proc.returncode == 0, proc.stderr
    df = pd.read_csv(out / "results.csv")
    steps = df[df.phase == "step"]
    # sequential: 3 impls x 2 precisions; n_chain: the same for N = 2 and 3
    assert len(steps) == 3 * 2 + 3 * 2 * 2
    assert set(steps.precision) == {"fp32", "bf16"} and set(steps.optimizer_impl) == {
        "loop", "foreach", "fused"}
    assert set(steps[steps.scenario == "sequential"].n_networks) == {2}
    assert set(steps[steps.scenario == "n_chain"].n_networks) == {2, 3}
    assert not steps.cuda_graph.any() and set(steps.compile) == {"none"}
    assert "n_chain/seed/cpu/bs4/single/adam/fused/bf16/n3" in set(steps.config_id)
    notes = [line for line in proc.stderr.splitlines() if "not attempted" in line]
    assert notes == ["note: 18 configuration(s) not attempted: CUDA graphs need a CUDA device"]
    # FLOPs per phase, their sum on the step row, and the rate derived from them
    row = steps[steps.config_id == "sequential/seed/cpu/bs4/single/adam/loop"].iloc[0]
    phases = df[(df.config_id == row.config_id) & (df.phase != "step")]
    assert row.flops == phases.flops.sum() > 0 and row.ops == phases.ops.sum()
    assert row.tflops_per_s == pytest.approx(row.flops / (row.median_ms * 1e-3) / 1e12, rel=1e-6)
    assert pd.isna(row.kernels) and pd.isna(row.compile_s)
    # the report facets by what varies
    panels = set(tidy(load_run(out).results).panel)
    assert any("bf16" in p for p in panels) and any("fused" in p for p in panels)


@pytest.mark.parametrize("args, message", [
    (["--precision", "fp16"], "no configuration of this sweep can run here: precision fp16 "
                              "(autocast with a GradScaler) needs CUDA; cpu supports fp32, bf16"),
    (["--cuda-graph", "on"], "no configuration of this sweep can run here: CUDA graphs need a "
                             "CUDA device"),
    (["--n-networks", "1"], "n networks must be integers >= 2"),
    (["--precision", "fp8"], "unknown precision 'fp8'; valid: bf16, fp16, fp32"),
    (["--compile", "max"], "unknown compile mode 'max'; valid: modules, none, step"),
    (["--cuda-graph", "maybe"], "--cuda-graph: 'maybe' is not on or off"),
])
def test_bad_axis_values_are_refused_before_measuring(capsys, monkeypatch, tmp_path, args,
                                                      message):
    # in this process, which is what `python -m bench` runs (a real one: test_commands.py)
    from bench.cli import main
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--scenarios", "n_chain", "--batch-sizes", "2", *args, *QUICK]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "results").exists()


def test_sweep_files_may_leave_the_later_axes_out_or_set_them(tmp_path):
    base = ('scenarios = ["n_ensemble", "gan"]\nsizes = ["seed"]\nbatch_sizes = [2]\n'
            'devices = ["cpu"]\noptimizer_setups = ["single"]\noptimizers = ["adam"]\n'
            'optimizer_impls = ["loop"]\n')
    path = tmp_path / "s.toml"
    path.write_text(base)
    runnable, skipped = expand_all(load_sweep(path))
    assert [(s.scenario, s.precision, s.n_networks) for s in runnable] == [
        ("n_ensemble", "fp32", 2), ("gan", "fp32", 2)]
    path.write_text(base + 'n_networks = [2, 8]\ncuda_graphs = [true]\nprecisions = ["bf16"]\n')
    runnable, skipped = expand_all(load_sweep(path))
    assert runnable == [] and len(skipped) == 3  # n_ensemble x 2 and gan, all needing CUDA
    path.write_text(base + 'cuda_graphs = ["yes"]\n')
    with pytest.raises(UsageError, match="cuda_graphs must hold true/false"):
        load_sweep(path)


def test_config_ids_name_only_axes_away_from_their_defaults():
    assert config_id(StepSpec("gan", 8)) == "gan/seed/cpu/bs8/separate/adam/auto"
    assert config_id(StepSpec("n_chain", 8, "cuda:0", "single", "adam", "fused", "wide",
                              precision="fp16", compile="step", n_networks=4, cuda_graph=True)) \
        == "n_chain/wide/cuda:0/bs8/single/adam/fused/fp16/compile-step/cuda-graph/n4"


@pytest.mark.slow
def test_a_compiled_configuration_records_its_compile_time_apart(cli, tmp_path):
    out = tmp_path / "run"
    proc = cli("run", "--scenarios", "shared_input", "--batch-sizes", "4",
               "--optimizer-setups", "single", "--compile", "none,modules", "--out-dir",
               str(out), *QUICK)
    assert proc.returncode == 0, proc.stderr
    steps = pd.read_csv(out / "results.csv").query("phase == 'step'").set_index("compile")
    assert pd.isna(steps.loc["none", "compile_s"])
    # compiling takes seconds; a compiled iteration afterwards takes milliseconds
    assert steps.loc["modules", "compile_s"] > 1
    assert steps.loc["modules", "median_ms"] < 1000 * steps.loc["modules", "compile_s"] / 10
    assert steps.loc["modules", "flops"] == steps.loc["none", "flops"]


def test_a_cuda_graph_run_reads_back_with_only_its_step_timed(tmp_path):
    """The phases of a replayed graph have no timing: readers must not take them for a
    damaged file, and a comparison has nothing to compare in them."""
    from bench.analyze.run_comparison import compare_runs, load_side
    from bench.measure.result import ConfigResult
    from bench.sweep.writer import ResultsWriter
    from bench.measure.timers import Timing

    for name in ("a", "b"):
        timing = Timing(clock="cuda_event")
        timing.device_ms["step"] = timing.host_ms["step"] = [0.3, 0.31, 0.29, 0.3]
        (tmp_path / name).mkdir()
        writer = ResultsWriter(tmp_path / name, f"run-{name}", "2.11.0", "gpu-host")
        (tmp_path / name / "env.json").write_text("{}")
        writer.write(ConfigResult(StepSpec("sequential", 64, "cuda:0", "single", "adam",
                                           "fused", cuda_graph=True), "NVIDIA H100", 1,
                                  "2026-01-01T00:00:00+00:00", timing=timing, threads=1))
        writer.close()
    run = load_run(tmp_path / "a")
    assert run.results.cuda_graph.all() and run.results.median_ms.notna().sum() == 1
    assert "CUDA graph" in tidy(run.results).hover.iloc[0]
    (table,) = compare_runs(load_side(str(tmp_path / "a")), [load_side(str(tmp_path / "b"))]).tables
    assert list(table.phase) == ["step"] and list(table.outcome) == ["compared"]
