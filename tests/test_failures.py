"""A configuration that fails is recorded with its status, and the sweep goes on."""

import random

import pandas as pd
import pytest
import torch

from bench.commands.run import finish
from bench.sweep.config import load_sweep
from bench.sweep.failures import MAX_REASON, OomLimits, classify, one_line, spec_group
from bench.axes import OPTIMIZER_SETUP
from bench.sweep.failures import attempt_group
from bench.sweep.groups import form_groups, run_order
from bench.sweep.loop import run_sweep
from bench.schema import FIELDS
from bench.measure.timers import TimingOptions
from multinet import StepSpec

QUICK = {"warmup_iters": 1, "warmup_s": 0, "min_samples": 3, "budget_s": 0}
MEASURED = ["clock", "n_samples", "median_ms", "iqr_ms", "samples_per_s", "stop_reason",
            "param_bytes", "activation_bytes", "cpu_peak_rss_mib"]


def sweep(scenarios, batch_sizes, setups=("single",)):
    return load_sweep(overrides={
        "scenarios": list(scenarios), "sizes": ["seed"], "batch_sizes": list(batch_sizes),
        "devices": ["cpu"], "optimizer_setups": list(setups), "optimizers": ["adam"],
        "optimizer_impls": ["loop"], "threads": 1}, timing_overrides=QUICK)


def cpu_allocation_failure():
    try:
        torch.empty(2**50, dtype=torch.uint8)
    except RuntimeError as exc:
        return exc
    raise AssertionError("a petabyte was allocated")


@pytest.mark.parametrize("exc, status", [
    (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), "oom"),
    (cpu_allocation_failure(), "oom"),
    (MemoryError(), "oom"),
    (RuntimeError("CUDA error: out of memory"), "oom"),
    (RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate`"), "oom"),
    (RuntimeError("MPS backend out of memory (MPS allocated: 17.00 GB, other allocations: "
                  "1.20 MB, max allowed: 18.13 GB)"), "oom"),
    (RuntimeError("cuDNN error: CUDNN_STATUS_ALLOC_FAILED"), "oom"),
    (RuntimeError("std::bad_alloc"), "oom"),
    (RuntimeError("mat1 and mat2 shapes cannot be multiplied (4x3 and 4x2)"), "error"),
    (ValueError("out of range"), "error"),
])
def test_out_of_memory_is_told_from_other_errors(exc, status):
    assert classify(exc)[0] == status


def test_the_reason_is_one_line():
    assert one_line(ValueError("first\nsecond")) == "ValueError: first"
    assert one_line(KeyError()) == "KeyError"
    long = one_line(RuntimeError("x" * 1000))
    assert len(long) == MAX_REASON and long.endswith("...")


def test_only_larger_batches_of_the_same_group_are_skipped():
    limits = OomLimits()
    limits.record(StepSpec("sequential", 64))
    assert limits.skip_reason(StepSpec("sequential", 128)) == \
        "batch size 64 of the same configuration ran out of memory"
    assert limits.skip_reason(StepSpec("sequential", 64)) is None  # tried again each repeat
    assert limits.skip_reason(StepSpec("sequential", 32)) is None
    assert limits.skip_reason(StepSpec("sequential", 128, optimizer_setup="single")) is None
    limits.record(StepSpec("sequential", 16))
    assert limits.skip_reason(StepSpec("sequential", 32)) is not None


def test_groups_run_in_random_order_but_batches_ascend():
    specs = [StepSpec(s, b, optimizer_setup=setup, optimizer=opt)
             for s in ("sequential", "shared_input") for opt in ("adam", "sgd")
             for setup in ("single", "separate") for b in (64, 1, 16, 4)]
    groups = form_groups(specs, OPTIMIZER_SETUP)
    # a group holds the setups of one configuration, the reference (`separate`) first
    assert len(groups) == 16 and all(len(g) == 2 for g in groups)
    assert {tuple(s.optimizer_setup for s in g) for g in groups} == {("separate", "single")}
    patterns = set()
    for seed in range(20):
        order = run_order(groups, random.Random(seed))
        assert sorted(order, key=repr) == sorted(groups, key=repr)
        for family in {spec_group(s) for s in specs if s.optimizer_setup == "separate"}:
            assert [g[0].batch_size for g in order if spec_group(g[0]) == family] == \
                [1, 4, 16, 64]
        patterns.add(tuple(spec_group(g[0]) for g in order))
    assert len(patterns) > 10  # the families still interleave at random


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["test_cpu_hungry", "test_cuda_hungry",
                                      "test_vector_hungry"])
def test_out_of_memory_is_recorded_and_larger_batches_skipped(failing_scenarios, tmp_path,
                                                               capsys, scenario):
    outcome = run_sweep(sweep([scenario, "sequential"], [2, 8, 16, 32]), tmp_path / "run",
                        progress=False)
    assert outcome.complete and outcome.signum is None
    df = pd.read_csv(tmp_path / "run" / "results.csv")
    assert tuple(df.columns) == FIELDS and len(df) == 2 * 4 * 4
    mine = df[df.scenario == scenario]
    assert mine.groupby("batch_size").status.unique().map(list).to_dict() == {
        2: ["ok"], 8: ["oom"], 16: ["skipped"], 32: ["skipped"]}
    assert (df[df.scenario == "sequential"].status == "ok").all()  # the sweep went on
    failed = mine[mine.status != "ok"]
    assert failed[MEASURED].isna().all().all() and failed.error.notna().all()
    assert (failed[failed.status == "skipped"].error ==
            "batch size 8 of the same configuration ran out of memory").all()
    oom_reason = failed[failed.status == "oom"].error.iloc[0]
    expected = {"test_cuda_hungry": "OutOfMemoryError: CUDA out of memory",
                "test_cpu_hungry": "RuntimeError: [enforce fail at alloc_cpu",
                "test_vector_hungry": "RuntimeError: std::bad_alloc"}[scenario]
    assert oom_reason.startswith(expected), oom_reason
    samples = pd.read_csv(tmp_path / "run" / "samples.csv")
    assert set(samples.config_id) == set(df[df.status == "ok"].config_id)

    assert finish(outcome, []) == 0  # out of memory is an expected outcome of a sweep
    out = capsys.readouterr().out
    assert "Configurations: 5 ok, 1 oom, 2 skipped." in out


@pytest.mark.parametrize("scenario, batch, status", [("test_cuda_hungry", 8, "oom"),
                                                     ("test_raises", 2, "error")])
def test_a_failed_configuration_lets_its_memory_go(failing_scenarios, scenario, batch, status):
    batches = failing_scenarios["Tiny"].batches
    batches.clear()
    limits = OomLimits()
    (result,) = attempt_group([StepSpec(scenario, batch)], TimingOptions(**QUICK), oom=limits)
    assert result.status == status and result.timing is None
    # nothing holds the step any more: neither the exception's traceback nor the result
    assert len(batches) == 1 and batches[0]() is None
    assert (limits.skip_reason(StepSpec(scenario, batch + 1)) is not None) == (status == "oom")


def test_a_nan_loss_is_nonfinite(failing_scenarios, tmp_path, capsys):
    outcome = run_sweep(sweep(["test_nan_loss"], [2]), tmp_path / "run", progress=False)
    df = pd.read_csv(tmp_path / "run" / "results.csv")
    assert list(df.status) == ["nonfinite"] * 4
    assert set(df.error) == {"loss is nan at the last timed iteration"}
    assert df[MEASURED].isna().all().all()
    assert len(pd.read_csv(tmp_path / "run" / "samples.csv")) == 0
    assert finish(outcome, []) == 1


@pytest.mark.slow
def test_an_error_is_recorded_and_the_sweep_goes_on(failing_scenarios, tmp_path, capsys):
    outcome = run_sweep(sweep(["test_raises", "sequential"], [2, 4]), tmp_path / "run",
                        progress=False)
    assert outcome.complete
    df = pd.read_csv(tmp_path / "run" / "results.csv")
    by_scenario = df.groupby("scenario").status.unique().map(list).to_dict()
    assert by_scenario == {"test_raises": ["error"], "sequential": ["ok"]}
    assert set(df[df.status == "error"].error) == {"ValueError: shapes do not line up"}
    assert finish(outcome, []) == 1
    assert "error     test_raises/seed/cpu/bs2/single/adam/loop (repeat 1): ValueError: " \
        "shapes do not line up" in capsys.readouterr().out


def test_fail_fast_stops_at_the_first_error(failing_scenarios, tmp_path, capsys):
    outcome = run_sweep(sweep(["test_raises", "sequential"], [2, 4, 8]), tmp_path / "run",
                        progress=False, fail_fast=True)
    df = pd.read_csv(tmp_path / "run" / "results.csv")
    configs = df.drop_duplicates("config_id")
    assert list(configs.status).count("error") == 1 and configs.status.iloc[-1] == "error"
    assert outcome.failed_fast.status == "error"
    assert outcome.pending == 6 - len(configs) > 0
    assert finish(outcome, []) == 1
    err = capsys.readouterr().err
    assert "Stopped at the first failure (--fail-fast): error: ValueError" in err
    assert err.rstrip().endswith(f"-m bench run --resume {tmp_path / 'run'}")
