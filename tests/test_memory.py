"""The analytic memory breakdown against byte counts worked out by hand."""

import numpy as np
import pytest

from bench.measure.memory import RssPeak, analytic_breakdown
from multinet import StepSpec, build_step


@pytest.mark.parametrize("optimizer, state_bytes", [
    # Adam: exp_avg and exp_avg_sq per parameter (2 x 92 bytes) + a float32 `step` per tensor
    ("adam", 2 * 92 + 4 * 4),
    # SGD with momentum: one buffer per parameter, no step counter
    ("sgd", 92),
])
def test_breakdown_by_hand(small_scenario, optimizer, state_bytes):
    step = build_step(StepSpec(small_scenario, 5, optimizer=optimizer))
    b = analytic_breakdown(step)
    # parameters: 4*3 + 3 + 3*2 + 2 = 23 floats
    assert b.param_bytes == 23 * 4
    assert b.grad_bytes == 23 * 4
    assert b.optimizer_state_bytes == state_bytes
    # saved for backward: the input x (5x4) by the first Linear, the ReLU's output (5x3,
    # saved by the ReLU and again by the second Linear: one storage), the second Linear's
    # output (5x2) by pow. Weights are parameters and are not counted.
    assert b.activation_bytes == (5 * 4 + 5 * 3 + 5 * 2) * 4


def test_rss_peak_sees_an_allocation_inside_its_span():
    peak = RssPeak()
    if peak.scope != "span":
        pytest.skip("cannot reset the high-water mark here")
    before = peak.read_mib()
    block = np.ones(64 * 1024 * 1024 // 8)  # 64 MiB, touched
    during = RssPeak.read_mib(peak)
    del block
    assert during - before >= 60
    assert RssPeak().read_mib() < during  # a new span starts from the current size
