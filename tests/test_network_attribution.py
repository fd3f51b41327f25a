"""The attribution pass: each network's share of each phase, and of the memory.

Known work planted in one network (``bench/tools/planted_work.py``: a real sleep on the CPU,
``torch.cuda._sleep`` on a GPU) must land in that network and phase; the rest is checked
against numbers computed by hand or by the configuration's own analytic breakdown.
"""

import pytest
import torch

from bench.measure.attribution import (Timeline, attribute, attribute_into, attribute_step,
                                       owned_by_network, paired_gap)
from bench.measure.boundaries import OUTSIDE, NetworkBoundaries, apportion, transitions
from bench.measure.clocks import phase_names
from bench.measure.memory import analytic_breakdown
from bench.measure.network_memory import survey_memory
from bench.measure.result import ConfigResult
from bench.sweep.writer import network_rows
from bench.tools.planted_work import LANDS_IN, PLACES, cuda_cycles_per_ms, landed
from multinet import SCENARIOS, StepSpec, build_step

WORK_MS = 20.0
# at least this share of the work lands where it was planted, at most this much elsewhere
LANDS, STRAYS = 0.9, 0.1
# each time a median of this many rounds: with a CPU-bound process on each core, a round
# now and then loses a few milliseconds to another process, and three let one such round
# in two move a tiny network's median by more than the strays allowed
ROUNDS = 15
ONE_PASS = dict(min_rounds=1, max_rounds=1, budget_s=0)


@pytest.fixture
def one_thread():
    """One torch thread: on two shared cores, two threads wait on each other whenever
    another process holds a core, and a tiny network's time scatters by milliseconds."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_the_hooked_nodes_are_where_the_owner_changes():
    order = [(("n", 5), ("conv",)), (("n", 4), ("conv",)), (("p", 1), ("conv",)),
             (("n", 2), ("linear",)), (("p", 2), ("linear",)), (("n", 9), (OUTSIDE,)),
             (("n", 1), ("linear",))]
    assert transitions(order) == {("n", 5): ("conv",), ("n", 2): ("linear",),
                                  ("n", 9): (OUTSIDE,), ("n", 1): ("linear",)}


def test_a_shared_update_is_split_by_parameter_elements():
    assert apportion(3.0, ["a", "b"], {"a": 100, "b": 300}) == {"a": 0.75, "b": 2.25}
    assert apportion(3.0, ["a", "b"], {}) == {"a": 1.5, "b": 1.5}


def test_the_checks_are_medians_of_ratios_taken_round_by_round():
    # rounds' ratios 2, 1, 0.5: the median is 1, a gap of 0; a round whose reference took
    # no time is left out
    assert paired_gap([2, 3, 4, 5], [1, 3, 8, 0]) == 0
    assert paired_gap([1.1, 2.2], [1, 2]) == pytest.approx(0.1)
    assert paired_gap([1], [0]) is None


def test_measured_and_apportioned_time_add_up_per_network():
    segments = {("forward", ("a",)): (2.0, 1.0), ("forward", (OUTSIDE,)): (0.5, 0.5),
                ("optimizer", ("a",)): (1.0, 1.0), ("optimizer", ("a", "b")): (4.0, 2.0)}
    owned = owned_by_network(segments, {"a": 1, "b": 3})
    assert owned[("forward", "a")][:3] == [2.0, 1.0, 0.0]
    assert owned[("forward", OUTSIDE)][:3] == [0.5, 0.5, 0.0]
    assert owned[("optimizer", "a")][:3] == [2.0, 1.5, 1.0]  # 1 measured + 1 of the 4 shared
    assert owned[("optimizer", "b")] == [3.0, 1.5, 3.0, ("a", "b")]


@pytest.mark.parametrize("place", PLACES)
def test_planted_work_lands_in_its_network_and_phase(one_thread, place):
    shares = landed(WORK_MS, places=(place,), rounds=ROUNDS)[place]
    target = LANDS_IN[place]
    assert shares[target] >= LANDS, shares
    strays = {k: v for k, v in shares.items() if k != target and abs(v) > STRAYS}
    assert strays == {}, shares


@pytest.mark.gpu
@pytest.mark.parametrize("place", PLACES)
def test_planted_gpu_work_lands_in_its_network_and_phase(place):
    shares = landed(WORK_MS, "cuda:0", cuda_cycles_per_ms("cuda:0"), places=(place,))[place]
    target = LANDS_IN[place]
    assert shares[target] >= LANDS, shares
    assert {k: v for k, v in shares.items() if k != target and abs(v) > STRAYS} == {}, shares


def test_a_stage_is_tiled_by_its_owners_segments(one_thread):
    """Nothing between a stage's first and last mark is lost or counted twice."""
    step = build_step(StepSpec("gan", 2))
    timeline = Timeline(torch.device("cpu"))
    boundaries = NetworkBoundaries(step, timeline)
    timeline.reset()
    boundaries.iteration(survey=True)
    timeline.reset()
    boundaries.iteration()
    assert [phase for phase, _ in timeline.stages] == [p for p, _ in step.phases()]
    for phase, marks in timeline.stages:
        owners = {owner for owner, _, _ in marks[:-1]}
        wall = (marks[-1][1] - marks[0][1]) / 1e6
        segments = sum(host for (p, _), (_, host) in _segments(phase, marks).items())
        assert segments == pytest.approx(wall, abs=1e-9)
        if phase == "backward":  # the backward's hand-overs reach its network
            assert owners & {("generator",), ("discriminator",)}


def _segments(phase, marks):
    timeline = Timeline(torch.device("cpu"))
    timeline.stages = [(phase, marks)]
    return timeline.segments()


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_network_of_every_scenario_has_a_row_per_phase(one_thread, scenario):
    cls = SCENARIOS[scenario]
    spec = StepSpec(scenario, 2, size=cls.check_size())
    attribution = attribute(spec, **ONE_PASS)
    step = build_step(spec)
    names = (*step.networks, OUTSIDE)
    phases = phase_names(step)
    assert [(t.network, t.phase) for t in attribution.times] == \
        [(n, p) for p in phases for n in names]
    busy = {t.network for t in attribution.times if t.median_ms > 0}
    assert busy == set(names), f"no time at all for {set(names) - busy}"
    assert all(attribution.phase_ms[p] > 0 for p in phases)


def test_memory_per_network_by_hand_and_against_the_whole_breakdown():
    step = build_step(StepSpec("sequential", 4))
    memory = survey_memory(NetworkBoundaries(step, Timeline(torch.device("cpu"))))
    # LinearNet(10, 20, 1024): fc1 10 x 20 + 20, fc2 20 x 1024 + 1024 -> 21,724 fp32 values
    linear = 21_724 * 4
    assert memory["linear"].param_bytes == memory["linear"].grad_bytes == linear
    # Adam keeps two moments per parameter and a step count (one fp32 scalar per tensor)
    assert memory["linear"].optimizer_state_bytes == 2 * linear + 4 * 4
    whole = analytic_breakdown(build_step(StepSpec("sequential", 4)))
    assert sum(m.param_bytes for m in memory.values()) == whole.param_bytes
    assert sum(m.optimizer_state_bytes for m in memory.values()) == whole.optimizer_state_bytes
    # each storage saved for backward counted once, by whichever network saved it first
    assert sum(m.activation_bytes for m in memory.values()) == whole.activation_bytes
    assert memory[OUTSIDE].activation_bytes > 0  # the loss's own


def test_a_frozen_teacher_holds_parameters_only():
    step = build_step(StepSpec("distill", 2, size="tiny"))
    memory = survey_memory(NetworkBoundaries(step, Timeline(torch.device("cpu"))))
    teacher = memory["teacher"]
    assert teacher.param_bytes > 0
    assert teacher.grad_bytes == teacher.optimizer_state_bytes == teacher.activation_bytes == 0


@pytest.mark.parametrize("setup, impl, apportioned", [
    ("single", "foreach", True), ("single", "loop", False), ("grouped", "foreach", False),
    ("separate", "foreach", False)])
def test_only_a_multi_tensor_step_over_one_group_is_apportioned(one_thread, setup, impl,
                                                                apportioned):
    step = build_step(StepSpec("sequential", 2, optimizer_setup=setup, optimizer_impl=impl))
    attribution = attribute_step(step, torch.device("cpu"), **ONE_PASS)
    rows = {t.network: t for t in attribution.times if t.phase == "optimizer"}
    linear, conv = rows["linear"], rows["conv"]
    assert (linear.apportioned_ms > 0) == (conv.apportioned_ms > 0) == apportioned
    if apportioned:
        assert linear.apportioned_by == conv.apportioned_by != ""
        # one call's time split by elements: linear 21,724 against conv's 10,555
        assert linear.apportioned_ms / conv.apportioned_ms == pytest.approx(21_724 / 10_555)
    else:
        assert linear.apportioned_by == conv.apportioned_by == ""
    assert linear.median_ms > 0 and conv.median_ms > 0


def test_a_failed_pass_is_one_error_row_and_leaves_the_result_alone():
    # a spec no step can be built for: the pass raises, as it would out of memory
    spec = StepSpec("dcgan", 2, size="seed", optimizer_impl="loop")
    result = ConfigResult(spec, "cpu", 1, "now")
    attribute_into(result)
    assert result.status == "ok" and result.attribution is None
    assert result.attribution_error == ("MultinetError: scenario 'dcgan' has sizes tiny, "
                                        "published, not 'seed'")
    rows = network_rows(result, "run")
    assert len(rows) == 1 and rows[0]["status"] == "error"
    assert rows[0]["config_id"] == "dcgan/seed/cpu/bs2/separate/adam/loop"


def test_data_parallel_configurations_are_not_attributed():
    result = ConfigResult(StepSpec("sequential", 2, ddp_wrap="joint"), "cpu", 1, "now")
    attribute_into(result)
    assert result.attribution is None and result.attribution_error == ""
    assert network_rows(result, "run") == []
