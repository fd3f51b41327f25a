"""The attribution part of ``make gpu-check`` on the CPU, where its sweep and trace checks
can run as they are (the planted GPU work is ``gpu``-marked in
tests/test_network_attribution.py)."""

import pytest
import torch

from bench.sweep.config import load_sweep
from bench.sweep.loop import run_sweep
from bench.tools.gpu_attribution_check import check_attributed_sweep, check_trace
from multinet import StepSpec

TINY = {"warmup_iters": 1, "warmup_s": 0, "min_samples": 2, "budget_s": 0.05, "min_rounds": 2}


def record(name, ok, detail, checks):
    checks.append({"check": name, "ok": ok, "detail": detail})


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_an_attributed_sweep_passes_and_a_run_without_it_fails(one_thread, tmp_path):
    config = load_sweep(overrides={"scenarios": ["sac"], "sizes": ["tiny"], "batch_sizes": [4],
                                   "devices": ["cpu"], "optimizer_setups": ["separate"],
                                   "threads": 1}, timing_overrides=TINY)
    run_sweep(config, tmp_path / "run", progress=False)
    checks = []
    check_attributed_sweep(tmp_path / "run", checks, record)
    assert checks[0]["check"] == "workloads attributed" and checks[0]["ok"], checks
    assert "1 configurations, 0 failed" in checks[0]["detail"]
    (tmp_path / "run" / "networks.csv").unlink()
    checks = []
    check_attributed_sweep(tmp_path / "run", checks, record)
    assert [c["ok"] for c in checks] == [False]


def test_the_trace_check_on_a_tiny_workload(one_thread, tmp_path):
    checks = []
    check_trace(StepSpec("dcgan", 2, size="tiny", optimizer_impl="loop"), tmp_path, checks,
                record)
    assert checks[0]["ok"], checks
    assert "5/5 ranges" in checks[0]["detail"]  # 2 networks, 3 phases
