"""The `streams` execution: refused off CUDA in one line; its bookkeeping (fork, join,
streams and events made once, memory kept alive across streams, which networks run
together) with the CUDA calls recorded on the CPU; and on a real GPU, where one is lent,
the same networks on real streams ending where `sequential` ends."""

import contextlib

import pytest
import torch

import multinet.step
from multinet import StepSpec, build_step
from multinet.execution import MAX_STREAMS, Streams
from multinet.scenarios import SCENARIOS, build_scenario
from multinet.step import unsupported
from multinet.verify import execution_equivalence


class Stream:
    def __init__(self, log, name):
        self.log, self.name = log, name

    def wait_event(self, event):
        self.log.append(("wait", self.name, event.name))


class Event:
    def __init__(self, log, name):
        self.log, self.name = log, name

    def record(self, stream):
        self.log.append(("record", self.name, stream.name))


class RecordedCuda:
    """The CUDA calls of ``Streams``, recorded in order: CUDA itself is what this machine
    cannot have (the GPU tests below run the real ones)."""

    def __init__(self):
        self.log, self.made = [], []
        self.main = Stream(self.log, "main")
        self.on = self.main

    def current(self):
        return self.on

    def new_stream(self):
        self.made.append(f"side{len(self.made)}")
        return Stream(self.log, self.made[-1])

    def new_event(self):
        self.made.append(f"event{len(self.made)}")
        return Event(self.log, self.made[-1])

    @contextlib.contextmanager
    def using(self, stream):
        before, self.on = self.on, stream
        self.log.append(("enter", stream.name))
        yield
        self.on = before

    def record_stream(self, tensor, stream):
        self.log.append(("keep", tensor.shape[0], stream.name))


def test_off_cuda_streams_are_refused_in_one_line(cli, tmp_path):
    assert unsupported(StepSpec("shared_input", 4, execution="streams")) == (
        "execution streams needs CUDA streams; cpu has none")
    proc = cli("run", "--scenarios", "shared_input", "--batch-sizes", "2", "--devices", "cpu",
               "--execution", "streams", "--quiet", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("error: no configuration of this sweep can run here: "
                                   "execution streams needs CUDA streams; cpu has none")
    assert not (tmp_path / "results").exists()


def test_where_nothing_is_independent_streams_are_refused_even_on_cuda():
    assert unsupported(StepSpec("n_chain", 4, "cuda", n_networks=3, execution="streams")) == (
        "execution streams has nothing to overlap in 'n_chain': no networks of it run "
        "independently within an update")


def test_each_call_runs_on_its_own_stream_between_a_fork_and_a_join():
    cuda = RecordedCuda()
    streams = Streams(cuda)
    ran_on = []

    def call(name):
        def fn(x):
            ran_on.append((name, cuda.current().name))
            return x * 2
        return fn

    inputs = [torch.ones(n + 1) for n in range(3)]
    out = streams.run([(call(i), (x,)) for i, x in enumerate(inputs)])
    assert [o.tolist() for o in out] == [[2.0], [2.0, 2.0], [2.0, 2.0, 2.0]]
    fork = "event0"
    assert ran_on == [(0, "side1"), (1, "side3"), (2, "side5")]
    assert cuda.log == [
        ("record", fork, "main"),
        ("wait", "side1", fork), ("wait", "side3", fork), ("wait", "side5", fork),
        # each input kept alive on the stream that reads it, then the call
        ("enter", "side1"), ("keep", 1, "side1"),
        ("enter", "side3"), ("keep", 2, "side3"),
        ("enter", "side5"), ("keep", 3, "side5"),
        # the join: each side stream's event, waited for by the current stream
        ("record", "event2", "side1"), ("wait", "main", "event2"),
        ("record", "event4", "side3"), ("wait", "main", "event4"),
        ("record", "event6", "side5"), ("wait", "main", "event6"),
        # each result kept alive on the current stream, which goes on using it
        ("keep", 1, "main"), ("keep", 2, "main"), ("keep", 3, "main")]
    made = list(cuda.made)
    streams.run([(call(i), (x,)) for i, x in enumerate(inputs)])
    assert cuda.made == made  # streams and events made once, reused by every later step


def test_beyond_the_streams_members_take_turns_and_a_lone_call_runs_in_place():
    cuda = RecordedCuda()
    streams = Streams(cuda)
    ran_on = []
    calls = [(lambda i=i: ran_on.append(cuda.current().name), ()) for i in range(MAX_STREAMS + 3)]
    streams.run(calls)
    sides = [f"side{2 * i + 1}" for i in range(MAX_STREAMS)]
    assert ran_on == sides + sides[:3]
    assert sum(1 for e in cuda.log if e[0] == "wait" and e[1] == "main") == MAX_STREAMS
    cuda.log.clear()
    assert streams.run([(lambda: cuda.current().name, ())]) == ["main"] and cuda.log == []


def recorded_step(monkeypatch, spec: StepSpec):
    """The step of ``spec`` under `streams` with its CUDA calls recorded, on the CPU."""
    cuda = RecordedCuda()
    monkeypatch.setattr(multinet.step, "execution_problem", lambda spec: None)
    monkeypatch.setattr(multinet.step, "make_execution", lambda name, device: Streams(cuda))
    return build_step(spec), cuda


@pytest.mark.parametrize("scenario, size", [("shared_input", "seed"), ("n_ensemble", "seed"),
                                            ("sac", "tiny"), ("clip", "tiny"),
                                            ("separate_losses", "seed"),
                                            ("shared_trunk", "seed")])
def test_the_networks_run_together_are_those_the_scenario_declares(monkeypatch, scenario,
                                                                   size):
    together = []
    run = Streams.run

    def recording(self, calls):
        together.append(calls)
        return run(self, calls)

    monkeypatch.setattr(Streams, "run", recording)
    step, cuda = recorded_step(monkeypatch, StepSpec(scenario, 4, size=size, n_networks=3,
                                                     execution="streams"))
    modules = {}
    for path, names in step.scenario.independent():
        container = (step.networks if not path else
                     step.networks[path.split(".")[0]].get_submodule(path.split(".", 1)[1]))
        modules.update({id(container[n]): (path, n) for n in names})
    steppers = {id(opt): "optimizer" for opt in step.optimizers}
    for _, fn in step.phases():
        fn()
    declared = {tuple((path, n) for n in names) for path, names in step.scenario.independent()}
    # an optimizer's step is called with the optimizer (looked up when it runs)
    named = [tuple(modules.get(id(fn), steppers.get(id(args[0] if args else None), fn))
                   for fn, args in calls) for calls in together]
    assert {g for g in named if "optimizer" not in g} == declared
    # separate: each update's optimizers (one per network it trains) step side by side
    owners = [sum(1 for scope in step.scopes if scope & (u.trains or set(step.networks)))
              for u in step.scenario.updates()]
    assert [len(g) for g in named if "optimizer" in g] == owners
    assert any(e[0] == "enter" for e in cuda.log)


def test_on_the_cpu_the_recorded_streams_compute_what_sequential_computes(monkeypatch):
    spec = StepSpec("shared_input", 4, execution="streams")
    step, _ = recorded_step(monkeypatch, spec)
    plain = build_step(StepSpec("shared_input", 4))
    for s in (step, plain):
        for _ in range(3):
            s.run()
    assert all(torch.equal(a, b) for a, b in zip(step.parameters(), plain.parameters()))


def test_every_scenario_declares_only_networks_it_has():
    for name, cls in SCENARIOS.items():
        size = cls.size_names()[0]
        scenario = build_scenario(name, size, 3)
        networks = scenario.networks()
        for path, names in (*scenario.independent(), *scenario.stackable()):
            head, _, rest = path.partition(".")
            container = networks if not path else networks[head].get_submodule(rest)
            assert set(names) <= set(container), (name, path, names)


@pytest.mark.gpu
@pytest.mark.parametrize("scenario, size", [("shared_input", "seed"), ("clip", "tiny"),
                                            ("sac", "tiny"), ("n_ensemble", "seed")])
def test_on_cuda_streams_end_where_sequential_ends(scenario, size):
    results = execution_equivalence(scenario, "streams", optimizer_impl="foreach",
                                    device="cuda:0", size=size, n_networks=4)
    assert all(r.ok for r in results), results


@pytest.mark.gpu
def test_on_cuda_the_networks_run_on_side_streams_and_never_synchronize():
    step = build_step(StepSpec("shared_input", 64, "cuda:0", execution="streams"))
    default = torch.cuda.current_stream()
    seen = {}
    def hook(name):
        return lambda module, args, out: seen.setdefault(name, torch.cuda.current_stream())

    for name, net in step.networks.items():
        net.register_forward_hook(hook(name))
    step.run()
    torch.cuda.synchronize()
    assert seen["linear"] != default and seen["conv"] != default
    assert seen["linear"] != seen["conv"]
    torch.cuda.set_sync_debug_mode("error")
    try:
        step.run()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.cuda.synchronize()
    assert torch.isfinite(step.last_loss)


@pytest.mark.gpu
def test_on_cuda_stacked_ends_where_sequential_ends():
    for scenario, size in (("n_ensemble", "seed"), ("sac", "tiny-redq")):
        results = execution_equivalence(scenario, "stacked", optimizer_impl="foreach",
                                        device="cuda:0", size=size, n_networks=8)
        assert all(r.ok for r in results), results
