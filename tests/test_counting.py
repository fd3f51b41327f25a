"""FLOPs, operators and peaks, against counts worked out by hand."""

import pytest

from bench.measure.counting import count_phases
from bench.measure.peaks import peak_tflops
from multinet import StepSpec, build_step


def test_flops_of_small_scenario_layers_by_hand(small_scenario):
    flops, ops = count_phases(build_step(StepSpec(small_scenario, 5, optimizer="sgd")))
    # forward: 2 * batch * in * out per layer = 2*5*4*3 + 2*5*3*2
    assert flops["forward"] == 120 + 60
    # backward: the second layer's weight gradient and input gradient (60 each); the first
    # layer's weight gradient only (120), since the input needs no gradient
    assert flops["backward"] == 60 + 60 + 120
    assert flops["optimizer"] == 0  # elementwise updates are not counted as FLOPs
    assert ops["forward"] > 0 and ops["optimizer"] > 0


def test_flops_of_the_sequential_scenario_by_hand():
    flops, _ = count_phases(build_step(StepSpec("sequential", 8)))
    fc1, fc2 = 2 * 8 * 10 * 20, 2 * 8 * 20 * 1024
    conv1 = conv2 = 2 * 8 * 16 * 9 * 32 * 32  # 16 channels x 3x3 taps per output pixel
    fc = 2 * 8 * 1024 * 10
    assert flops["forward"] == fc1 + fc2 + conv1 + conv2 + fc
    assert flops["backward"] == 2 * flops["forward"] - fc1  # no gradient for the input


def test_foreach_dispatches_fewer_optimizer_operators_than_the_loop():
    def optimizer_ops(impl):
        return count_phases(build_step(StepSpec("n_ensemble", 4, optimizer_setup="single",
                                                optimizer_impl=impl, n_networks=4)))[1]["optimizer"]
    assert optimizer_ops("foreach") < optimizer_ops("loop")


@pytest.mark.parametrize("name, precision, peak", [
    ("NVIDIA H100 80GB HBM3", "bf16", 989.5), ("NVIDIA H100 80GB HBM3", "fp32", 67.0),
    ("NVIDIA H100 PCIe", "bf16", 756.5), ("NVIDIA A100-SXM4-80GB", "fp16", 312.0),
    ("NVIDIA H200", "bf16", 989.5), ("Quadro K600", "fp32", None)])
def test_peak_table(name, precision, peak):
    assert peak_tflops(name, precision) == peak
