"""The joint-training patterns beyond the article: what each update trains, and the axes of
the step (precision, compilation) on the CPU."""

import pytest
import torch

from multinet import MultinetError, StepSpec, build_step, get_scenario, gradient_flow
from multinet import setup_equivalence
from tests.conftest import slow_except


def flows(name, **kwargs):
    return {(r.term, r.network): r.observed for r in gradient_flow(name, **kwargs)}


def snapshot(step, network):
    return [p.detach().clone() for p in step.networks[network].parameters()]


def changed(before, step, network):
    return any(not torch.equal(a, b) for a, b in zip(before, step.networks[network].parameters()))


def test_detached_teacher_never_learns():
    assert flows("detached") == {("loss", "linear"): False, ("loss", "conv"): True}
    step = build_step(StepSpec("detached", 4))
    teacher, student = snapshot(step, "linear"), snapshot(step, "conv")
    step.run()
    assert not changed(teacher, step, "linear") and changed(student, step, "conv")


def test_gan_updates_alternate_and_each_trains_only_its_network():
    assert flows("gan") == {
        ("loss_discriminator", "generator"): False, ("loss_discriminator", "discriminator"): True,
        ("loss_generator", "generator"): True, ("loss_generator", "discriminator"): False}
    step = build_step(StepSpec("gan", 4, optimizer_setup="single"))
    assert [name for name, _ in step.phases()] == ["forward", "backward", "optimizer"] * 2
    stages = [fn for _, fn in step.phases()]
    g, d = snapshot(step, "generator"), snapshot(step, "discriminator")
    for fn in stages[:3]:  # the discriminator's update
        fn()
    assert changed(d, step, "discriminator") and not changed(g, step, "generator")
    d = snapshot(step, "discriminator")
    for fn in stages[3:]:  # the generator's, through the frozen, just-updated discriminator
        fn()
    assert changed(g, step, "generator") and not changed(d, step, "discriminator")
    assert all(p.requires_grad for p in step.parameters())  # unfrozen again


def test_gan_separate_optimizers_step_only_their_network():
    step = build_step(StepSpec("gan", 4, optimizer_setup="separate"))
    step.run()
    state = [sum(len(s) for s in opt.state.values()) for opt in step.optimizers]
    assert all(n > 0 for n in state)


def test_shared_trunk_matrix():
    assert flows("shared_trunk") == {
        ("loss_a", "trunk"): True, ("loss_a", "head_a"): True, ("loss_a", "head_b"): False,
        ("loss_b", "trunk"): True, ("loss_b", "head_a"): False, ("loss_b", "head_b"): True}


@pytest.mark.parametrize("name", ["n_chain", "n_ensemble"])
def test_n_networks_builds_n_networks_all_reached(name):
    assert flows(name, n_networks=5) == {("loss", f"net{i}"): True for i in range(5)}
    step = build_step(StepSpec(name, 3, optimizer_setup="separate", n_networks=4))
    assert len(step.networks) == len(step.optimizers) == 4


@pytest.mark.parametrize("name", ["n_chain", "n_ensemble"])
def test_n_below_two_is_refused(name):
    with pytest.raises(MultinetError, match=f"scenario '{name}' needs n_networks >= 2, got 1"):
        get_scenario(name, n_networks=1)


@pytest.mark.parametrize("name", slow_except(["detached", "gan", "shared_trunk", "n_chain",
                                               "n_ensemble"], ["detached", "shared_trunk"]))
def test_setups_stay_bitwise_identical(name):
    assert all(r.bitwise for r in setup_equivalence(name, optimizer="adamw", n_networks=3))


def test_bf16_autocast_runs_the_forward_in_bf16_and_setups_still_agree():
    step = build_step(StepSpec("shared_input", 4, precision="bf16"))
    seen = []
    handle = step.networks["linear"].fc1.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    step.run()
    handle.remove()
    assert seen == [torch.bfloat16]
    assert step.last_loss.dtype == torch.float32  # autocast keeps the loss in fp32
    assert all(r.bitwise for r in setup_equivalence("shared_input", precision="bf16"))


def test_fp16_is_refused_off_cuda():
    with pytest.raises(MultinetError, match="precision fp16 .* needs CUDA; cpu supports fp32, bf16"):
        build_step(StepSpec("sequential", 2, precision="fp16"))


def test_unknown_precision_and_compile_mode():
    with pytest.raises(MultinetError, match="unknown precision 'fp8'; valid: bf16, fp16, fp32"):
        StepSpec("sequential", 2, precision="fp8")
    with pytest.raises(MultinetError, match="unknown compile mode 'all'; valid: modules, none, step"):
        StepSpec("sequential", 2, compile="all")


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["modules", "step"])
def test_compiled_steps_compute_what_eager_computes(mode):
    eager, compiled = build_step(StepSpec("sequential", 4)), build_step(StepSpec("sequential", 4, compile=mode))
    for _ in range(2):
        eager.run()
        compiled.run()
    torch.testing.assert_close(compiled.last_loss, eager.last_loss, rtol=1e-4, atol=1e-5)
    for a, b in zip(compiled.parameters(), eager.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_gan_with_a_compiled_step_is_listed_as_unsupported():
    from multinet.step import unsupported
    assert "use compile=modules" in unsupported(StepSpec("gan", 4, compile="step"))
    assert unsupported(StepSpec("gan", 4, compile="modules")) is None
    assert unsupported(StepSpec("sequential", 4, compile="step")) is None
