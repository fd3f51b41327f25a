import pytest
import torch

from multinet import (OPTIMIZERS, SCENARIOS, MultinetError, Scenario, StepSpec, build_step,
                      gradient_flow, setup_equivalence)
from multinet.scenarios import register
from multinet.verify import tolerance
from tests.conftest import slow_except

EXPECTED_MATRIX = {  # (scenario, term, network) -> receives a gradient
    ("sequential", "loss", "linear"): True, ("sequential", "loss", "conv"): True,
    ("shared_input", "loss", "linear"): True, ("shared_input", "loss", "conv"): True,
    ("separate_losses", "loss_linear", "linear"): True,
    ("separate_losses", "loss_linear", "conv"): False,
    ("separate_losses", "loss_conv", "linear"): False,
    ("separate_losses", "loss_conv", "conv"): True,
}


def test_gradient_flow_matrix_of_the_article_scenarios():
    observed = {(r.scenario, r.term, r.network): r.observed
                for name in ("sequential", "shared_input", "separate_losses")
                for r in gradient_flow(name)}
    assert observed == EXPECTED_MATRIX


@pytest.mark.parametrize("scenario", ["sequential", "shared_input", "separate_losses"])
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("impl", ["loop", "foreach", "fused"])
def test_setups_are_bitwise_identical_on_cpu(scenario, optimizer, impl):
    results = setup_equivalence(scenario, optimizer=optimizer, optimizer_impl=impl, steps=3)
    assert [r.setup for r in results] == ["separate", "single", "grouped"]
    assert all(r.bitwise and r.max_abs_diff == 0.0 and r.ok for r in results)


@pytest.mark.parametrize("scenario", slow_except(sorted(SCENARIOS), ["sequential", "gan"]))
def test_under_bf16_autocast_the_flow_holds_and_setups_stay_bitwise_on_cpu(scenario):
    size = SCENARIOS[scenario].size_names()[0]  # the smallest: seed, or a workload's tiny
    fp32 = {(r.term, r.network): r.observed
            for r in gradient_flow(scenario, size=size, n_networks=3)}
    flow = gradient_flow(scenario, size=size, n_networks=3, precision="bf16")
    assert {(r.term, r.network): r.observed for r in flow} == fp32 and all(r.ok for r in flow)
    results = setup_equivalence(scenario, optimizer="adam", optimizer_impl="foreach", steps=3,
                                size=size, n_networks=3, precision="bf16")
    assert all(r.bitwise and r.tolerance == "bitwise" for r in results)
    # autocast is really on: the same steps in fp32 end elsewhere
    assert final_difference(scenario, size, "fp32", "bf16") > 0


def final_difference(scenario: str, size: str, a: str, b: str) -> float:
    """The largest difference between the parameters after 3 steps at precisions a and b."""
    ends = []
    for precision in (a, b):
        step = build_step(StepSpec(scenario, 4, "cpu", "single", "adam", "foreach",
                                   size=size, precision=precision, n_networks=3))
        for _ in range(3):
            step.run()
        ends.append(torch.cat([p.detach().flatten() for p in step.parameters()]))
    return float((ends[0] - ends[1]).abs().max())


def test_the_stated_tolerances():
    assert tolerance("cpu", "fp32") == tolerance("cpu", "bf16") == "bitwise"
    assert tolerance("cuda:0", "fp32") == "rtol=1e-05, atol=1e-06"
    assert tolerance("cuda:0", "bf16") == "rtol=0.00390625, atol=1e-05"  # 2**-8


def test_fp16_has_no_setup_equivalence_and_says_why():
    with pytest.raises(MultinetError, match="no setup equivalence under fp16: each "
                       "optimizer's GradScaler step skips"):
        setup_equivalence("sequential", precision="fp16", device="cpu")


@pytest.fixture
def scenario_with_wrong_expectation_and_noise():
    """A scenario that claims its loss reaches only `a` (it reaches `b` too), and whose loss
    draws from the global RNG, so that runs of it cannot be identical: both checks must
    say so."""
    @register
    class Broken(Scenario):
        name = "test_broken"
        description = "for tests"
        expected_flow = {"loss": {"a"}}

        def build_networks(self):
            return {"a": torch.nn.Linear(2, 2), "b": torch.nn.Linear(2, 2)}

        def make_batch(self, batch_size, generator):
            return {"x": torch.randn(batch_size, 2, generator=generator)}

        def loss_terms(self, networks, batch):
            noise = torch.rand(())
            return {"loss": (networks["a"](batch["x"]) * networks["b"](batch["x"])).sum() * noise}

    yield "test_broken"
    SCENARIOS.pop("test_broken")


def test_the_checks_can_fail(scenario_with_wrong_expectation_and_noise):
    name = scenario_with_wrong_expectation_and_noise
    flow = {r.network: r for r in gradient_flow(name)}
    assert flow["a"].ok and not flow["b"].ok  # b is reached but not expected
    results = {r.setup: r for r in setup_equivalence(name, steps=2)}
    assert not results["single"].ok and results["single"].max_abs_diff > 0
