"""Each scenario's loss and gradients against a hand-written functional reference."""

import pytest
import torch
import torch.nn.functional as F

from multinet import SCENARIOS, MultinetError, Scenario, StepSpec, build_step, get_scenario
from multinet.scenarios import register


def linear_ref(p, x):
    h = torch.relu(x @ p["fc1.weight"].T + p["fc1.bias"])
    return h @ p["fc2.weight"].T + p["fc2.bias"]


def conv_ref(p, image):
    h = torch.relu(F.conv2d(image, p["conv1.weight"], p["conv1.bias"], padding=1))
    h = F.conv2d(h, p["conv2.weight"], p["conv2.bias"], padding=1)
    return h.reshape(h.shape[0], -1) @ p["fc.weight"].T + p["fc.bias"]


def cross_entropy_ref(logits, target):
    log_probs = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    return -log_probs[torch.arange(len(target)), target].mean()


REFERENCES = {
    "sequential": lambda a, b, batch: cross_entropy_ref(
        conv_ref(b, linear_ref(a, batch["x"]).reshape(-1, 1, 32, 32)), batch["target"]),
    "shared_input": lambda a, b, batch: cross_entropy_ref(
        linear_ref(a, batch["x"]) + conv_ref(b, batch["image"]), batch["target"]),
    "separate_losses": lambda a, b, batch: (
        cross_entropy_ref(linear_ref(a, batch["x"]), batch["target_linear"])
        + cross_entropy_ref(conv_ref(b, batch["image"]), batch["target_conv"])),
}


@pytest.mark.parametrize("name", list(REFERENCES))
def test_loss_and_gradients_match_a_functional_reference(name):
    scenario = get_scenario(name)
    nets = scenario.networks(seed=3)
    batch = scenario.batch(6, seed=4)
    loss = scenario.loss(nets, batch)
    loss.backward()

    a = {k: v.detach().clone().requires_grad_() for k, v in nets["linear"].named_parameters()}
    b = {k: v.detach().clone().requires_grad_() for k, v in nets["conv"].named_parameters()}
    ref = REFERENCES[name](a, b, batch)
    ref.backward()
    torch.testing.assert_close(loss, ref, rtol=1e-6, atol=1e-6)
    for net, params in (("linear", a), ("conv", b)):
        for k, p in nets[net].named_parameters():
            torch.testing.assert_close(p.grad, params[k].grad, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("batch_size", [1, 2, 7, 64])
def test_sequential_takes_any_batch_size(batch_size):
    scenario = get_scenario("sequential")
    nets = scenario.networks()
    batch = scenario.batch(batch_size)
    logits = nets["conv"](nets["linear"](batch["x"]).reshape(-1, 1, 32, 32))
    assert logits.shape == (batch_size, 10)
    assert scenario.loss(nets, batch).shape == ()


def test_same_seed_same_batch_other_seed_other_batch():
    scenario = get_scenario("separate_losses")
    first, again, other = scenario.batch(5, seed=11), scenario.batch(5, seed=11), scenario.batch(5, seed=12)
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not torch.equal(first["x"], other["x"])
    # drawing a batch leaves the global generator alone
    torch.manual_seed(0)
    expected = torch.rand(1)
    torch.manual_seed(0)
    scenario.batch(5, seed=11)
    scenario.networks(seed=11)
    assert torch.equal(torch.rand(1), expected)


def test_same_seed_same_weights():
    a, b = get_scenario("sequential").networks(7), get_scenario("sequential").networks(7)
    assert all(torch.equal(x, y) for x, y in zip(a["conv"].parameters(), b["conv"].parameters()))


def test_a_user_scenario_is_one_registered_class():
    @register
    class TwoLinear(Scenario):
        name = "test_two_linear"
        description = "two linear layers, outputs summed"
        expected_flow = {"loss": {"a", "b"}}

        def build_networks(self):
            return {"a": torch.nn.Linear(3, 2), "b": torch.nn.Linear(3, 2)}

        def make_batch(self, batch_size, generator):
            return {"x": torch.randn(batch_size, 3, generator=generator)}

        def loss_terms(self, networks, batch):
            return {"loss": (networks["a"](batch["x"]) + networks["b"](batch["x"])).pow(2).mean()}

    try:
        assert TwoLinear.expected_flow == {"loss": frozenset({"a", "b"})}
        step = build_step(StepSpec("test_two_linear", 4, optimizer_setup="grouped"))
        before = [p.detach().clone() for p in step.parameters()]
        step.run()
        assert len(step.optimizers) == 1 and len(step.optimizers[0].param_groups) == 2
        assert all(not torch.equal(x, p) for x, p in zip(before, step.parameters()))
        with pytest.raises(MultinetError, match="already registered"):
            register(TwoLinear)
    finally:
        SCENARIOS.pop("test_two_linear")


def test_unknown_scenario_names_the_valid_ones():
    with pytest.raises(MultinetError, match=r"unknown scenario 'nope'; valid: "
                                            r"clip, cyclegan, dcgan, detached, distill, gan, n_chain, n_ensemble, sac, separate_losses, sequential, shared_input, shared_trunk"):
        get_scenario("nope")
