"""The `stacked` execution on the CPU: networks of one architecture as one module, read back
network by network, stepped by one optimizer, and held to the same run one network after
the other and to the reference loops; a stack that computes something else is caught."""

import functools
import operator

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from bench.correctness.check import against_reference
from multinet import MultinetError, StepSpec, build_step
from multinet.networks import LinearNet
from multinet.stacking import Stack, member_view, slots, stack_networks
from multinet.verify import EXECUTION_REASONS, execution_equivalence


def linear_nets(n: int, seed: int = 0) -> list[nn.Module]:
    torch.manual_seed(seed)
    return [LinearNet(10, 20, 10) for _ in range(n)]


def test_a_stack_returns_what_each_member_returns():
    nets = linear_nets(3)
    x = torch.randn(4, 10)
    stack = Stack(nets, ["a", "b", "c"])
    outputs = stack(x)
    assert [o.shape for o in outputs] == [(4, 10)] * 3
    for out, net in zip(outputs, nets):
        torch.testing.assert_close(out, net(x), rtol=1e-6, atol=1e-7)
    # one stacked tensor per parameter of the architecture, the members along dimension 0
    assert [tuple(p.shape) for p in stack.parameters()] == [(3, 20, 10), (3, 20), (3, 10, 20),
                                                            (3, 10)]


def test_networks_that_differ_or_hold_buffers_are_refused():
    with pytest.raises(MultinetError, match="a, b differ in architecture"):
        Stack([LinearNet(10, 20, 10), LinearNet(10, 21, 10)], ["a", "b"])
    with pytest.raises(MultinetError, match="buffers"):
        Stack([nn.BatchNorm1d(3), nn.BatchNorm1d(3)], ["a", "b"])


def test_slots_give_every_network_back_by_its_name_in_its_order():
    nets = linear_nets(3)
    before = {f"net{i}": [p.detach().clone() for p in net.parameters()]
              for i, net in enumerate(nets)}
    stacked = stack_networks([("", ("net0", "net1", "net2"))],
                             {f"net{i}": net for i, net in enumerate(nets)})
    assert list(stacked) == ["net0-net2"]
    views = {name: [member_view(s, s[0]) for s in ss] for name, ss in slots(stacked).items()}
    assert list(views) == ["net0", "net1", "net2"]
    assert all(torch.equal(a, b) for name in before for a, b in zip(before[name], views[name]))


def test_sac_critics_stack_inside_the_critic_and_read_back_in_the_reference_order():
    step = build_step(StepSpec("sac", 4, size="tiny", execution="stacked"))
    critic = step.networks["critic"]
    assert list(critic.q) == ["q1-q2"] and list(step.networks["critic_target"].q) == ["q1-q2"]
    plain = build_step(StepSpec("sac", 4, size="tiny"))
    # q1's linear1..3 then q2's: the reference QNetwork's linear1..6
    ours = [member_view(s, s[0]) for s in slots(step.networks)["critic"]]
    assert all(torch.equal(a, b) for a, b in zip(ours, plain.networks["critic"].parameters()))
    assert len(ours) == 12


def test_one_optimizer_step_over_stacked_tensors_is_each_network_s_step_bitwise():
    """Adam's arithmetic is per element: where the gradients are the same, the stack's
    step is each network's own, to the bit."""
    nets = linear_nets(4)
    stack = Stack(nets, [str(i) for i in range(4)])
    torch.manual_seed(1)
    grads = [[torch.randn_like(p) for p in net.parameters()] for net in nets]
    for net, gs in zip(nets, grads):
        for p, g in zip(net.parameters(), gs):
            p.grad = g.clone()
    for p, column in zip(stack.parameters(), zip(*grads)):
        p.grad = torch.stack(column)
    separate = [torch.optim.Adam(net.parameters(), lr=1e-3) for net in nets]
    joint = torch.optim.Adam(stack.parameters(), lr=1e-3)
    for _ in range(3):
        for opt in [*separate, joint]:
            opt.step()
    for i, net in enumerate(nets):
        assert all(torch.equal(p, s[i]) for p, s in zip(net.parameters(), stack.parameters()))


def test_n_ensemble_stacked_has_one_optimizer_whatever_the_setup():
    for setup in ("separate", "single", "grouped"):
        step = build_step(StepSpec("n_ensemble", 4, optimizer_setup=setup, n_networks=8,
                                   execution="stacked"))
        assert [len(list(net.parameters())) for net in step.networks.values()] == [4]
        assert len(step.optimizers) == 1
        assert sum(len(g["params"]) for g in step.optimizers[0].param_groups) == 4


def test_the_critics_stay_frozen_through_the_actor_s_update_and_the_targets_follow():
    step = build_step(StepSpec("sac", 8, size="tiny-redq", execution="stacked"))
    critic, target = step.networks["critic"], step.networks["critic_target"]
    seen = []
    for phase, fn in step.phases():
        fn()
        if phase == "backward":
            seen.append([p.grad is not None for p in critic.parameters()])
    # the critics' own update fills their gradients; the actor's and temperature's leave none
    assert seen == [[True] * 6, [False] * 6, [False] * 6]
    step.run()
    before = [p.clone() for p in target.parameters()]
    step.stage("target")()
    for old, new, source in zip(before, target.parameters(), critic.parameters()):
        torch.testing.assert_close(new, 0.995 * old + 0.005 * source, rtol=0, atol=1e-7)


@pytest.mark.parametrize("scenario, size, n", [("n_ensemble", "seed", 3),
                                               ("sac", "tiny", 2), ("sac", "tiny-redq", 2)])
def test_stacked_ends_where_sequential_ends(scenario, size, n):
    results = execution_equivalence(scenario, "stacked", optimizer="adamw", steps=5,
                                    size=size, n_networks=n)
    assert [r.setup for r in results] == ["separate", "single", "grouped"]
    assert all(r.ok for r in results), results
    assert all(r.tolerance == "norm rtol=0.0001, atol=1e-07" for r in results)


def test_at_batch_1_stacked_rounds_otherwise_and_is_held_to_its_tolerance():
    """vmap's bmm and each network's addmm accumulate differently for a single sample on
    this CPU: not bitwise, within the tolerance, for the reason stated."""
    r = execution_equivalence("n_ensemble", "stacked", batch_size=1, n_networks=8,
                              setups=("separate",))[0]
    assert not r.bitwise and 0 < r.max_rel_diff < 1e-4 and r.ok
    assert "bmm" in EXECUTION_REASONS["stacked"]


def test_stacked_is_held_to_the_reference_loops():
    for scenario, size in (("n_ensemble", None), ("sac", "tiny-redq")):
        results = against_reference(scenario, optimizer="adam", optimizer_impl="foreach",
                                    size=size, n_networks=3, steps=3, execution="stacked")
        assert all(r.ok and r.execution == "stacked" for r in results), results


def test_a_stack_that_runs_one_member_for_all_is_caught(monkeypatch):
    forward = Stack.forward

    def first_only(self, *args):
        outputs = forward(self, *args)
        return [outputs[0]] * len(outputs)

    monkeypatch.setattr(Stack, "forward", first_only)
    r = execution_equivalence("n_ensemble", "stacked", steps=2, n_networks=3,
                              setups=("separate",))[0]
    assert not r.ok and r.max_rel_diff > 1e-2
    ref = against_reference("n_ensemble", optimizer="adam", steps=2, n_networks=3,
                            setups=("separate",), execution="stacked")[0]
    assert ref.mismatch.startswith("step 1, loss of update 0 differs")


def test_the_reference_redq_loop_is_the_step_bitwise_and_catches_a_min_over_all_ten(
        monkeypatch):
    results = against_reference("sac", optimizer="adam", optimizer_impl="loop",
                                size="tiny-redq", steps=3)
    assert all(r.ok and r.max_abs_diff == 0 for r in results), results

    def min_over_all(q_next, batch):
        return torch.cat(q_next, 1).min(dim=1, keepdim=True).values

    from multinet.workloads import sac
    monkeypatch.setattr(sac.Sac, "_target_min", staticmethod(min_over_all))
    caught = against_reference("sac", optimizer="adam", optimizer_impl="loop",
                               size="tiny-redq", steps=3, setups=("separate",))[0]
    assert caught.mismatch.startswith("step 1, loss of update 0 differs")


def test_redq_s_critic_loss_is_the_sum_of_the_critics_errors():
    """REDQ's mean over all errors times the number of critics, by another route: each
    critic's own mean squared error, summed."""
    step = build_step(StepSpec("sac", 16, size="tiny-redq"))
    sc, nets, batch = step.scenario, step.networks, step.batch
    loss = sc._critic_loss(nets, batch, {})
    with torch.no_grad():
        next_action, next_log_pi = nets["actor"](batch["next_state"],
                                                 batch["next_noise"])
        q_next = nets["critic_target"](batch["next_state"], next_action)
        i, j = batch["in_target"].tolist()
        alpha = nets["temperature"].log_alpha.exp()
        target = batch["reward"] + batch["mask"] * 0.99 * (
            torch.min(q_next[i], q_next[j]) - alpha * next_log_pi)
    qs = nets["critic"](batch["state"], batch["action"])
    by_hand = functools.reduce(operator.add, (F.mse_loss(q, target) for q in qs))
    assert len(qs) == 10 and i != j
    torch.testing.assert_close(loss, by_hand, rtol=1e-6, atol=0)
