import pytest
import torch

from multinet import PHASES, StepSpec, build_step


def test_phases_with_boundaries_compute_what_run_computes():
    spec = StepSpec("shared_input", 8, optimizer="adamw")
    by_phase, whole = build_step(spec), build_step(spec)
    assert [name for name, _ in by_phase.phases()] == list(PHASES)
    for _ in range(3):
        for _, fn in by_phase.phases():
            fn()
        whole.run()
    assert all(torch.equal(a, b) for a, b in zip(by_phase.parameters(), whole.parameters()))


def test_an_iteration_ends_with_gradients_cleared_and_the_loss_kept():
    step = build_step(StepSpec("sequential", 4))
    step.run()
    assert all(p.grad is None for p in step.parameters())
    assert step.last_loss is not None and not step.last_loss.requires_grad
    assert step.loss is None  # the graph is released after backward


def test_prepare_runs_the_phases_before_the_one_named():
    spec = StepSpec("separate_losses", 4)
    step = build_step(spec)
    step.prepare("forward")
    assert step.loss is None and all(p.grad is None for p in step.parameters())
    step.prepare("backward")
    assert step.loss is not None and all(p.grad is None for p in step.parameters())
    step.prepare("optimizer")
    assert step.loss is None and all(p.grad is not None for p in step.parameters())
    # prepare + the phase itself is one ordinary iteration
    reference = build_step(spec)
    step.stage("optimizer")()
    reference.run()
    assert all(torch.equal(a, b) for a, b in zip(step.parameters(), reference.parameters()))


@pytest.mark.parametrize("precision, dtype", [("fp32", torch.float32),
                                              ("bf16", torch.bfloat16)])
def test_every_update_computes_in_the_precision_asked_for(precision, dtype):
    """gan's generator update runs with the discriminator frozen: freezing alone must not
    switch autocast on (autocast with no dtype would pick the device's default, bf16 here)."""
    step = build_step(StepSpec("gan", 4, "cpu", "single", "adam", "loop", precision=precision))
    seen = []
    step.networks["discriminator"].register_forward_hook(
        lambda module, inputs, output: seen.append(output.dtype))
    step.run()
    assert len(seen) >= 2 and set(seen) == {dtype}  # in both updates
