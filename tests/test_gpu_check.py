"""Checks of ``make gpu-check`` on the CPU: the out-of-memory check's arithmetic and its
whole path with a scenario that runs out of memory where the GPU would; the verify checks."""

import pandas as pd
import pytest
import torch

from bench.tools import gpu_check
from bench.tools.gpu_check import (check_out_of_memory, check_verify, clear_run_files,
                                   oom_batch_sizes, oom_outcome)
from bench.sweep.folder import prepare_out_dir
from multinet import StepSpec


def test_a_batch_past_the_gpu_memory():
    # 4 MiB of activations per sample (the large preset's ConvNet) on an 80 GiB GPU: twice
    # its memory is 40960 samples, well under the batch-size limit
    assert oom_batch_sizes(4 * 2**20, 80 * 2**30) == (8, 40960, 81920)


def rows(statuses):
    return pd.DataFrame([{"batch_size": b, "status": s} for b, s in statuses for _ in range(4)])


@pytest.mark.parametrize("statuses, ok", [
    ([(8, "ok"), (100, "oom"), (200, "skipped")], True),
    ([(8, "ok"), (100, "ok"), (200, "ok")], False),  # it all fitted: nothing was checked
    ([(8, "ok"), (100, "oom"), (200, "oom")], False),  # the larger one was attempted
    ([(8, "oom"), (100, "skipped"), (200, "skipped")], False),
])
def test_what_the_check_accepts(statuses, ok):
    assert oom_outcome(rows(statuses), (8, 100, 200))[0] is ok


@pytest.mark.slow
def test_the_check_on_the_cpu(failing_scenarios, monkeypatch, tmp_path):
    monkeypatch.setattr(gpu_check, "OOM_SPEC",
                        StepSpec("test_cpu_hungry", 2, "cpu", "separate", "adam", "loop"))
    monkeypatch.setattr(gpu_check, "OOM_TIMING", {"warmup_iters": 1, "warmup_s": 0,
                                                  "min_samples": 3, "budget_s": 0})
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (0, 2**20))
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device: 0)
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device: 0)
    checks = []
    check_out_of_memory("cpu", tmp_path / "oom-check", checks)
    assert [c["check"] for c in checks] == ["out of memory recorded",
                                            "memory given back after out of memory"]
    assert all(c["ok"] for c in checks), checks
    assert "batch 2: ok" in checks[0]["detail"] and ": oom" in checks[0]["detail"]
    # a rerun replaces the last run's files, where a new run would refuse the folder
    clear_run_files(tmp_path / "oom-check")
    prepare_out_dir(tmp_path / "oom-check").close()


@pytest.mark.slow
def test_the_verify_checks_on_the_cpu():
    # an article scenario, a workload compared bitwise only (clip) and one whose bf16
    # reference is left out (dcgan): every kind of cell the counts below are made of; each
    # scenario is held against its reference in tests/test_reference_loops.py and
    # tests/test_workload_references.py
    checks = []
    check_verify("cpu", checks, scenarios=("sequential", "clip", "dcgan"))
    assert [c["check"] for c in checks] == [
        "gradient flow on CUDA, fp32", "setup equivalence on CUDA, fp32",
        "against the reference loops on CUDA, fp32",
        "gradient flow on CUDA, bf16", "setup equivalence on CUDA, bf16",
        "against the reference loops on CUDA, bf16"]
    assert all(c["ok"] for c in checks), checks
    # 3 scenarios x 3 optimizers x 3 implementations x 3 setups, all identical on the CPU
    assert checks[1]["detail"] == "81/81 bitwise identical, largest difference 0.00e+00 " \
                                  "(bitwise)"
    # fused kernels round differently; clip is compared bitwise only (bench/correctness:
    # rounding noise that Adam turns into full steps): its 3 optimizers x 3 setups fused are
    # left out of 81
    assert checks[2]["detail"].startswith("72/72 agree, largest ")
    assert checks[2]["detail"].endswith("not compared: clip fused")
    assert "of a tensor's norm" in checks[2]["detail"]
    assert "(loop bitwise; foreach bitwise; fused norm rtol=0.0001, atol=1e-07)" in \
        checks[2]["detail"]
    # under bf16, Adam alone: 3 scenarios x 3 implementations x 3 setups
    assert checks[4]["detail"].startswith("27/27 bitwise identical")
    # dcgan is left out (its reference's two backward passes add in fp32 what one backward of
    # the sum adds in bf16), 9, and clip fused, 3
    assert checks[5]["detail"].startswith("15/15 agree, largest ")
    assert checks[5]["detail"].endswith("not compared: clip fused, dcgan foreach, "
                                        "dcgan fused, dcgan loop")
