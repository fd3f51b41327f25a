"""Profiler traces: a range for every network and phase, parsed back from the Chrome trace
JSON; loaded by TensorBoard's PyTorch profiler plugin; the operator table computed by hand
on a small trace."""

import json

import pandas as pd
import pytest
import torch

from bench.analyze.reader import read_operators
from bench.analyze.trace_ops import load_events, operator_table, range_names, self_times, spans
from bench.cli import run_command
from bench.measure.tracing import trace_configuration
from bench.schema import OPERATORS_FILE, OUTSIDE
from multinet import StepSpec, build_step

WORKLOADS = ("dcgan", "cyclegan", "sac", "clip", "distill")


def expected_ranges(spec: StepSpec) -> set[str]:
    step = build_step(spec)
    return ({f"network:{n}" for n in step.networks}
            | {f"phase:{p}" for p, _ in step.phases()})


@pytest.fixture(scope="module")
def traced(tmp_path_factory):
    """One configuration of each workload traced for one iteration, on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("traces")
    out = {}
    for name in WORKLOADS:
        spec = StepSpec(name, 2, size="tiny", optimizer_impl="loop")
        out[name] = (spec, trace_configuration(spec, folder / f"{name}.pt.trace.json", steps=1))
    torch.set_num_threads(threads)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("workload", WORKLOADS)
def test_a_trace_has_a_range_for_every_network_and_phase(traced, workload):
    spec, trace = traced[workload]
    data = json.loads(trace.path.read_text())  # a Chrome trace: an object of traceEvents
    assert isinstance(data["traceEvents"], list)
    assert expected_ranges(spec) <= range_names(data["traceEvents"])
    rows = operator_table(data["traceEvents"], trace.steps)
    networks = {r["network"] for r in rows}
    assert set(build_step(spec).networks) <= networks  # each network ran operators


@pytest.mark.slow
def test_tensorboard_profiler_plugin_loads_the_traces(traced, tmp_path):
    plugin = pytest.importorskip("torch_tb_profiler.profiler.data")
    for workload, (_, trace) in traced.items():
        profile = plugin.RunProfileData.parse(workload, None, str(trace.path), str(tmp_path))
        # the plugin's own views of it: the operators it found, and the traced iteration
        names = {op.name for op in profile.op_list_groupby_name}
        assert "aten::addmm" in names or "aten::convolution" in names, workload
        assert len(profile.events) > 100


def test_the_trace_command_writes_traces_and_their_operators(tmp_path, capsys):
    out = tmp_path / "traced"
    code = run_command(["trace", "--scenarios", "sequential", "--batch-sizes", "2",
                        "--optimizer-setups", "separate,single", "--devices", "cpu",
                        "--steps", "1", "--threads", "1", "--out-dir", str(out)])
    assert code == 0
    traces = sorted(p.name for p in (out / "traces").iterdir())
    assert traces == ["sequential_seed_cpu_bs2_separate_adam_loop.pt.trace.json",
                      "sequential_seed_cpu_bs2_single_adam_loop.pt.trace.json"]
    operators = read_operators(out / OPERATORS_FILE)
    assert set(operators["trace"]) == {f"traces/{t}" for t in traces}
    assert set(operators["network"]) == {"linear", "conv", OUTSIDE}
    assert operators["device_ms"].isna().all()  # nothing ran on a device
    # tracing one again replaces its rows and keeps the other's
    again = run_command(["trace", "--scenarios", "sequential", "--batch-sizes", "2",
                         "--optimizer-setups", "single", "--devices", "cpu", "--steps", "1",
                         "--out-dir", str(out)])
    assert again == 0
    after = read_operators(out / OPERATORS_FILE)  # the reader refuses a row twice
    assert set(after["trace"]) == set(operators["trace"])
    kept = f"traces/{traces[0]}"
    pd.testing.assert_frame_equal(after[after["trace"] == kept].reset_index(drop=True),
                                  operators[operators["trace"] == kept].reset_index(drop=True))


def test_bad_trace_options_are_one_line_and_exit_2(tmp_path, capsys):
    assert run_command(["trace", "--steps", "0", "--out-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --steps must be an integer from 1 to 100, got 0"]


# A hand-made trace on one thread: operator A (0-10 us) calls B (2-5) and C (6-9); B
# launches a kernel of 4 us. The forward's range is 0-20, network n's 1-9.5; D (12-14) runs
# in the forward outside n.
HAND = [
    {"ph": "X", "cat": "user_annotation", "name": "phase:forward", "ts": 0, "dur": 20, "tid": 1},
    {"ph": "X", "cat": "user_annotation", "name": "network:n", "ts": 1, "dur": 9.5, "tid": 1},
    {"ph": "X", "cat": "cpu_op", "name": "A", "ts": 0.5, "dur": 9.5, "tid": 1},
    {"ph": "X", "cat": "cpu_op", "name": "B", "ts": 2, "dur": 3, "tid": 1},
    {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "ts": 3, "dur": 1, "tid": 1,
     "args": {"correlation": 7}},
    {"ph": "X", "cat": "kernel", "name": "k", "ts": 30, "dur": 4, "tid": 9,
     "args": {"correlation": 7}},
    {"ph": "X", "cat": "cpu_op", "name": "C", "ts": 6, "dur": 3, "tid": 1},
    {"ph": "X", "cat": "cpu_op", "name": "D", "ts": 12, "dur": 2, "tid": 1},
]


def test_self_times_and_kernels_by_hand():
    operators = spans(HAND, ("cpu_op",))
    assert [op.name for op in operators] == ["A", "B", "C", "D"]
    assert self_times(operators) == [9.5 - 3 - 3, 3, 3, 2]
    rows = {(r["network"], r["operator"]): r for r in operator_table(HAND, steps=1)}
    assert rows[("n", "A")]["self_host_ms"] == pytest.approx(3.5e-3)
    assert rows[("n", "B")]["device_ms"] == pytest.approx(4e-3)
    assert rows[("n", "C")]["device_ms"] == 0
    assert rows[(OUTSIDE, "D")]["self_host_ms"] == pytest.approx(2e-3)
    assert [rows[("n", name)]["rank"] for name in "BAC"] == [1, 2, 3]  # by device time first


def test_load_events_reads_an_object_or_a_list(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"traceEvents": HAND}))
    (tmp_path / "b.json").write_text(json.dumps(HAND))
    assert load_events(tmp_path / "a.json") == load_events(tmp_path / "b.json") == HAND


@pytest.mark.gpu
def test_a_cuda_trace_has_every_range_and_device_time_per_network(tmp_path):
    spec = StepSpec("dcgan", 64, "cuda:0", size="published", optimizer_impl="foreach")
    trace = trace_configuration(spec, tmp_path / "dcgan.pt.trace.json", steps=2)
    events = load_events(trace.path)
    assert expected_ranges(spec) <= range_names(events)
    rows = operator_table(events, trace.steps)
    device = {}
    for r in rows:
        device[r["network"]] = device.get(r["network"], 0) + r["device_ms"]
    assert device["generator"] > 0 and device["discriminator"] > 0
