"""The real workloads' joint steps against their reference code's loops (bench/correctness/
workload_loops.py) at the CPU's `tiny` size: bitwise with loop and foreach in every setup,
and a planted defect of each workload caught and named."""

import pytest
import torch
import torch.nn.functional as F

from bench.correctness.check import against_reference, checked_size, reference_trace, unchecked
from bench.correctness.loops import LOOPS
from bench.correctness.workload_loops import WORKLOAD_LOOPS
from multinet import OPTIMIZERS, SETUPS
from multinet.scenarios import SCENARIOS, Update, build_scenario
from multinet.workloads import clip, cyclegan, dcgan, distill, sac
from tests.conftest import slow_except

WORKLOADS = ["dcgan", "cyclegan", "sac", "clip", "distill"]


def test_every_workload_has_a_loop_at_each_of_its_sizes():
    assert set(WORKLOAD_LOOPS) == set(WORKLOADS) and all(LOOPS[w] is WORKLOAD_LOOPS[w]
                                                         for w in WORKLOADS)
    for name in WORKLOADS:
        assert LOOPS[name].sizes == SCENARIOS[name].size_names(), name
        assert checked_size(name) == "tiny"
    assert checked_size("gan") == "seed"


@pytest.mark.parametrize("name", WORKLOADS)
def test_the_reference_networks_have_the_published_shapes(name):
    """At the published sizes, built without memory: the harness's parameters and buffers,
    shape for shape and in its order."""
    with torch.device("meta"):
        ours = build_scenario(name, "published").build_networks()
        theirs = LOOPS[name]("published").networks(2)
    assert list(ours) == list(theirs)
    for net in ours:
        mine = [tuple(p.shape) for p in ours[net].parameters()]
        assert mine == [tuple(p.shape) for p in (theirs[net].parameters()
                                                 if isinstance(theirs[net], torch.nn.Module)
                                                 else theirs[net])], net
        if isinstance(theirs[net], torch.nn.Module):
            assert ([tuple(b.shape) for b in ours[net].buffers()]
                    == [tuple(b.shape) for b in theirs[net].buffers()]), net


@pytest.mark.parametrize("optimizer", slow_except(list(OPTIMIZERS), ["adam"]))
# the two image-to-image GANs take seconds each: the long tier runs them
@pytest.mark.parametrize("name", slow_except(WORKLOADS, [w for w in WORKLOADS
                                                     if w not in ("cyclegan", "dcgan")]))
def test_the_step_is_the_reference_code_s_loop(name, optimizer):
    trace = reference_trace(name, optimizer, steps=5, batch_size=4, device="cpu", seed=0,
                            n_networks=2, precision="fp32")
    for impl in ("loop", "foreach"):
        results = against_reference(name, optimizer=optimizer, optimizer_impl=impl,
                                    trace=trace)
        assert [r.setup for r in results] == list(SETUPS)
        for r in results:
            assert r.ok, (impl, r.setup, r.mismatch)
            assert r.tolerance == "bitwise" and r.max_abs_diff == 0 and r.size == "tiny"


@pytest.mark.parametrize("name", ["dcgan", "sac"])
def test_fused_kernels_agree_within_the_stated_tolerance(name):
    assert unchecked(name, "cpu", "fp32", "fused") is None
    for r in against_reference(name, optimizer_impl="fused"):
        assert r.ok and r.tolerance == "norm rtol=0.0001, atol=1e-07", (r.setup, r.mismatch)


def test_where_a_workload_is_not_compared_the_reason_is_given():
    for name in ("cyclegan", "clip", "distill"):  # held to their loops bitwise only
        assert unchecked(name, "cpu", "fp32", "fused") == LOOPS[name].bitwise_only != ""
        assert unchecked(name, "cuda", "fp32", "foreach") == LOOPS[name].bitwise_only
        assert unchecked(name, "cpu", "fp32", "foreach") is None
    assert "two backward passes" in unchecked("dcgan", "cpu", "bf16", "loop")


@pytest.mark.parametrize("name", ["cyclegan", "sac", "clip", "distill"])
def test_under_bf16_autocast_the_step_is_the_loop_bitwise(name):
    assert unchecked(name, "cpu", "bf16", "loop") is None
    for r in against_reference(name, precision="bf16", steps=2):
        assert r.ok and r.max_abs_diff == 0, (r.setup, r.mismatch)


def test_under_bf16_dcgan_s_two_backward_passes_add_the_gradients_differently():
    """Why dcgan is not compared under bf16: what differs first is the discriminator's
    gradient in its own update, where main.py makes two backward passes."""
    r = against_reference("dcgan", precision="bf16", setups=["separate"], steps=1)[0]
    assert r.mismatch.startswith("step 1, update 0, gradient of discriminator parameter 0 ")


def mismatches(name, **kwargs) -> dict[str, str]:
    return {r.setup: r.mismatch for r in against_reference(name, steps=2, **kwargs)}


def test_dcgan_with_the_harness_s_default_beta1_is_caught(monkeypatch):
    monkeypatch.setattr(dcgan.Dcgan, "optimizer_overrides",
                        {"adam": {"lr": 2e-4, "betas": (0.9, 0.999)}})
    assert set(mismatches("dcgan").values()) == {
        "step 1, generator parameter 0's betas: (0.9, 0.999) in the harness, (0.5, 0.999) in "
        "the reference"}


def without_freezing(cls):
    """``cls.updates`` with no network frozen in any update."""
    updates = cls.updates
    return lambda self: [Update(u.loss, trains=u.trains) for u in updates(self)]


def test_dcgan_s_discriminator_left_unfrozen_for_the_generator_is_caught(monkeypatch):
    """main.py does not freeze the discriminator either, but its next netD.zero_grad() drops
    what it takes there; the harness zeroes only the optimizers an update steps."""
    monkeypatch.setattr(dcgan.Dcgan, "updates", without_freezing(dcgan.Dcgan))
    found = mismatches("dcgan")
    # separate: the stale gradients reach the next discriminator step, and the generator's
    # loss after it; one optimizer: the generator's step moves the discriminator at once
    assert found["separate"].startswith("step 2, loss of update 1 differs by ")
    assert found["single"].startswith("step 1, discriminator parameter 0 differs by ")


def test_cyclegan_s_discriminators_left_unfrozen_are_caught(monkeypatch):
    monkeypatch.setattr(cyclegan.Cyclegan, "updates", without_freezing(cyclegan.Cyclegan))
    found = mismatches("cyclegan", setups=["separate"])
    assert found["separate"].startswith(
        "step 1, update 1, gradient of discriminators parameter 0 differs by ")


def test_cyclegan_s_identity_weight_is_checked(monkeypatch):
    monkeypatch.setattr(cyclegan, "LAMBDA_IDENTITY", 0.25)
    assert mismatches("cyclegan", setups=["grouped"])["grouped"].startswith(
        "step 1, loss of update 0 differs by ")


def test_sac_without_its_target_update_is_caught(monkeypatch):
    monkeypatch.setattr(sac.Sac, "target_update", lambda self, networks: None)
    found = mismatches("sac")
    assert all(m.startswith("step 1, critic_target parameter 0 differs by ")
               for m in found.values()), found


def test_sac_s_actor_update_training_the_critics_is_caught(monkeypatch):
    monkeypatch.setattr(sac.Sac, "updates", without_freezing(sac.Sac))
    assert mismatches("sac", setups=["single"])["single"].startswith(
        "step 1, critic parameter 0 differs by ")


def test_clip_s_adam_epsilon_and_weight_decay_are_checked(monkeypatch):
    monkeypatch.setitem(clip.Clip.optimizer_overrides, "adam",
                        {"lr": 5e-4, "betas": (0.9, 0.98)})
    monkeypatch.setitem(clip.Clip.optimizer_overrides, "adamw",
                        {"lr": 5e-4, "betas": (0.9, 0.98), "eps": 1e-6})
    assert mismatches("clip", setups=["single"])["single"] == (
        "step 1, image parameter 0's eps: 1e-08 in the harness, 1e-06 in the reference")
    assert mismatches("clip", optimizer="adamw", setups=["single"])["single"] == (
        "step 1, image parameter 0's weight_decay: 0.01 in the harness, 0.2 in the reference")


def test_clip_s_loss_is_checked(monkeypatch):
    """One-sided InfoNCE (images to captions only) in place of the symmetric loss."""
    def one_sided(image, text, logit_scale):
        image = image / image.norm(dim=1, keepdim=True)
        text = text / text.norm(dim=1, keepdim=True)
        logits = logit_scale.exp() * image @ text.t()
        return F.cross_entropy(logits, torch.arange(image.shape[0]))
    monkeypatch.setattr(clip, "contrastive_loss", one_sided)
    assert mismatches("clip", setups=["separate"])["separate"].startswith(
        "step 1, loss of update 0 differs by ")


def test_distill_s_teacher_receiving_gradients_is_caught(monkeypatch):
    build = distill.Distill.build_networks

    def trainable_teacher(self):
        nets = build(self)
        nets["teacher"].requires_grad_(True)
        return nets

    def without_no_grad(self, networks, batch):
        teacher = networks["teacher"](batch["images"])
        student = networks["student"](batch["images"])
        return {"loss_soft": distill.SOFT_WEIGHT * distill.soft_target_loss(student, teacher),
                "loss_label": distill.LABEL_WEIGHT * F.cross_entropy(student, batch["labels"])}
    monkeypatch.setattr(distill.Distill, "build_networks", trainable_teacher)
    monkeypatch.setattr(distill.Distill, "loss_terms", without_no_grad)
    assert set(mismatches("distill").values()) == {
        "step 1, update 0, gradient of teacher parameter 0: present in the harness, none in "
        "the reference"}


def test_distill_s_teacher_in_train_mode_is_caught(monkeypatch):
    """A teacher in train mode normalises with the batch's statistics (and moves its own)."""
    build = distill.Distill.build_networks
    monkeypatch.setattr(distill.Distill, "build_networks",
                        lambda self: {k: v.train() for k, v in build(self).items()})
    assert mismatches("distill", setups=["separate"])["separate"].startswith(
        "step 1, loss of update 0 differs by ")


def test_a_teacher_that_moves_is_caught(monkeypatch):
    """The untrained networks' parameters are compared too: here a target update that also
    moves the teacher."""
    def nudge(self, networks):
        with torch.no_grad():
            next(networks["teacher"].parameters()).add_(1e-3)
    monkeypatch.setattr(distill.Distill, "has_target_update", True)
    monkeypatch.setattr(distill.Distill, "target_update", nudge, raising=False)
    assert mismatches("distill", setups=["separate"])["separate"].startswith(
        "step 1, teacher parameter 0 differs by ")
