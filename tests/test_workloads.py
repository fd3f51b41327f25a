"""The real workloads: their published sizes, and their steps on the CPU at `tiny`.

Parameter counts are the published figures (the issue that asked for them, torchvision's
model table, the DCGAN and CycleGAN references); the smaller ones are worked out by hand
beside each assertion.
"""

from __future__ import annotations

import copy

import pytest
import torch

from multinet import MultinetError, StepSpec, build_step, gradient_flow, setup_equivalence
from multinet.scenarios import SCENARIOS, build_scenario, size_names
from multinet.step import unsupported
from multinet.workloads.resnet import resnet18, resnet50
from multinet.workloads.sac import TAU

WORKLOADS = ["dcgan", "cyclegan", "sac", "clip", "distill"]


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def published(name: str, size: str = "published") -> dict[str, torch.nn.Module]:
    return build_scenario(name, size).build_networks()


def test_dcgan_counts_are_the_published_ones():
    nets = published("dcgan")
    assert count(nets["generator"]) == 3_576_704
    assert count(nets["discriminator"]) == 2_765_568


def test_cyclegan_counts_are_the_published_ones():
    # one ResNet generator: 7x7 in (3*64*49 + 64), two downsamplings (64*128*9 + 128,
    # 128*256*9 + 256), nine blocks of two 3x3 convolutions at 256 (2 * (256*256*9 + 256)
    # each), two upsamplings (256*128*9 + 128, 128*64*9 + 64), 7x7 out (64*3*49 + 3)
    generator = (3 * 64 * 49 + 64 + 64 * 128 * 9 + 128 + 128 * 256 * 9 + 256
                 + 9 * 2 * (256 * 256 * 9 + 256) + 256 * 128 * 9 + 128 + 128 * 64 * 9 + 64
                 + 64 * 3 * 49 + 3)
    # a PatchGAN: 4x4 convolutions 3->64->128->256->512->1, all with biases
    discriminator = (3 * 64 * 16 + 64 + 64 * 128 * 16 + 128 + 128 * 256 * 16 + 256
                     + 256 * 512 * 16 + 512 + 512 * 16 + 1)
    assert (generator, discriminator) == (11_378_179, 2_764_737)
    for size in ("published", "published-128"):  # the image size changes no parameter
        nets = published("cyclegan", size)
        assert [count(g) for g in nets["generators"].values()] == [generator] * 2
        assert [count(d) for d in nets["discriminators"].values()] == [discriminator] * 2


def test_resnets_are_torchvision_s():
    assert count(resnet18()) == 11_689_512
    assert count(resnet50()) == 25_557_032


def test_distill_pairs_a_resnet50_teacher_with_a_resnet18_student():
    nets = published("distill")
    assert (count(nets["teacher"]), count(nets["student"])) == (25_557_032, 11_689_512)


def test_clip_encoders():
    nets = published("clip")
    # ResNet-18 without its 1000-way head (11,689,512 - 512*1000 - 1000) plus a 512->512
    # projection with bias
    assert count(nets["image"]) == 11_689_512 - 513_000 + 512 * 512 + 512
    # tokens 49408*512, positions 77*512, 12 layers of (attention 4*512*512 + 4*512, MLP
    # 2*512*2048 + 2048 + 512, two norms 4*512), final norm 2*512, projection 512*512, and
    # the temperature
    layer = 4 * 512 * 512 + 4 * 512 + 2 * 512 * 2048 + 2048 + 512 + 4 * 512
    assert count(nets["text"]) == (49408 * 512 + 77 * 512 + 12 * layer + 2 * 512
                                   + 512 * 512 + 1)


def test_sac_networks():
    nets = published("sac")
    # two Q functions of 17 + 6 inputs: (23*256 + 256) + (256*256 + 256) + (256 + 1) each
    q = 23 * 256 + 256 + 256 * 256 + 256 + 257
    assert count(nets["critic"]) == count(nets["critic_target"]) == 2 * q
    # the policy: 17 -> 256 -> 256, then a mean and a log-std head of 6
    assert count(nets["actor"]) == 17 * 256 + 256 + 256 * 256 + 256 + 2 * (256 * 6 + 6)
    assert count(nets["temperature"]) == 1


def test_each_scenario_has_its_own_sizes():
    assert size_names()[:3] == ("seed", "wide", "large")
    for name in WORKLOADS:
        assert SCENARIOS[name].size_names()[:2] == ("tiny", "published")
    assert "scenario 'dcgan' has sizes tiny, published, not 'seed'" == unsupported(
        StepSpec("dcgan", 4, size="seed"))
    assert "'sequential' has sizes seed, wide, large" in unsupported(
        StepSpec("sequential", 4, size="tiny"))
    with pytest.raises(MultinetError, match="has sizes"):
        build_step(StepSpec("clip", 4, size="large"))


@pytest.mark.parametrize("name", WORKLOADS)
def test_tiny_step_runs_and_every_loss_term_reaches_its_networks(name):
    step = build_step(StepSpec(name, 4, size="tiny"))
    for _ in range(2):
        step.run()
    assert torch.isfinite(step.last_loss).all()
    flows = gradient_flow(name, size="tiny")
    assert flows and all(r.ok for r in flows), [r for r in flows if not r.ok]


@pytest.mark.parametrize("name", WORKLOADS)
def test_tiny_setups_are_bitwise_equal(name):
    results = setup_equivalence(name, size="tiny", steps=2)
    assert [r.setup for r in results] == ["separate", "single", "grouped"]
    assert all(r.bitwise for r in results), results


def test_reference_arrangements_under_separate():
    def arrangement(name):
        step = build_step(StepSpec(name, 2, size="tiny"))
        return [(type(o).__name__, o.defaults["lr"], o.defaults["betas"],
                 sum(p.numel() for g in o.param_groups for p in g["params"]))
                for o in step.optimizers], step

    dcgan, step = arrangement("dcgan")
    assert [a[:3] for a in dcgan] == [("Adam", 2e-4, (0.5, 0.999))] * 2
    cyclegan, step = arrangement("cyclegan")
    # one Adam over both generators, one over both discriminators
    nets = step.networks
    assert [a[3] for a in cyclegan] == [count(nets["generators"]), count(nets["discriminators"])]
    sac, step = arrangement("sac")
    nets = step.networks
    assert [a[3] for a in sac] == [count(nets["critic"]), count(nets["actor"]), 1]
    assert {a[1] for a in sac} == {3e-4}
    distill, step = arrangement("distill")
    assert [a[3] for a in distill] == [count(step.networks["student"])]  # no teacher's


def test_sac_target_critics_follow_by_polyak_averaging():
    step = build_step(StepSpec("sac", 8, size="tiny"))
    assert [name for name, _ in step.phases()][-1] == "target"
    critic, target = step.networks["critic"], step.networks["critic_target"]
    assert all(torch.equal(a, b) for a, b in zip(critic.parameters(), target.parameters()))
    before = [p.detach().clone() for p in target.parameters()]
    step.run()
    for old, new, source in zip(before, target.parameters(), critic.parameters()):
        assert torch.allclose(new, (1 - TAU) * old + TAU * source, rtol=0, atol=1e-7)
        assert not new.requires_grad
    # the critics moved, so the targets moved with them, by tau of the gap
    assert any(not torch.equal(a, b) for a, b in zip(before, target.parameters()))


def test_distill_teacher_stays_frozen_in_eval_mode():
    step = build_step(StepSpec("distill", 4, size="tiny"))
    teacher = step.networks["teacher"]
    before = copy.deepcopy(teacher.state_dict())
    for _ in range(2):
        step.run()
    assert not teacher.training
    # weights and running statistics alike: eval mode never updates them
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())
    student = step.networks["student"]
    assert student.training and all(p.requires_grad for p in student.parameters())
