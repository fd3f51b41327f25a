"""Data-parallel runs: real torchrun processes on the CPU (gloo), and the pieces that decide
what they record, checked by hand."""

import dataclasses
import json
import re
import os
import signal
import socket
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch

from bench.analyze.reader import load_run
from bench.analyze.run_tables import results_of, scaling_table
from bench.axes import config_id
from bench.errors import UsageError
from bench.measure.configuration import NONFINITE_ELSEWHERE
from bench.measure.result import ConfigResult
from bench.measure.timers import Timing, TimingOptions, time_step
from bench.present.labels import axes_text, env_value
from bench.schema import REQUIRED_PHASES
from bench.sweep.config import expand_all, load_sweep
from bench.sweep.folder import check_world
from bench.sweep.ranks import RankResult, merge_ranks
from bench.tools.gpu_check import check_ddp
from tests.support.synthetic import result_row, write_run
from multinet import StepSpec, build_step, get_scenario
from multinet.ddp import leaves_a_network_out
from multinet.errors import MultinetError
from multinet.step import unsupported
from tests.conftest import FAILING_SCENARIOS, ROOT
from tests.support.disk_full import file_size_limited, uncovered_environment

ARTICLE = ("sequential", "shared_input", "separate_losses")
WRAPS = ("joint", "per_network")
QUICK = ["--budget-s", "0", "--min-samples", "3", "--warmup-s", "0", "--warmup-iters", "1",
         "--quiet"]
SWEEP = ["run", "--distributed", "--devices", "cpu", "--scenarios", ",".join(ARTICLE),
         "--batch-sizes", "4", "--optimizer-setups", "single", "--ddp-wrap", ",".join(WRAPS),
         *QUICK]
EXPECTED = {f"{s}/seed/cpu/bs4/single/adam/loop/ddp-{w}" for s in ARTICLE for w in WRAPS}


def torchrun_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", *args]


def env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def torchrun(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(torchrun_command(*args), cwd=ROOT, env=env(), capture_output=True,
                          text=True, timeout=timeout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def two_rank_rows(out) -> pd.DataFrame:
    """results.csv of a sweep of EXPECTED over two ranks, checked for what every such run
    must hold."""
    df = pd.read_csv(out / "results.csv")
    assert set(df.config_id) == EXPECTED and len(df) == 4 * len(EXPECTED)
    assert set(df.status) == {"ok"}
    assert set(df.world_size) == {2} and set(df.backend) == {"gloo"}
    assert set(df.global_batch_size) == {8} and set(df.batch_size) == {4}
    return df


@pytest.mark.slow
def test_three_scenarios_with_both_wraps_on_two_ranks(tmp_path):
    out = tmp_path / "run"
    started = time.monotonic()
    proc = torchrun("--standalone", "--nproc-per-node", "2", "-m", "bench", *SWEEP,
                    "--out-dir", str(out))
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - started < 90
    df = two_rank_rows(out)
    assert df.slowest_rank.isin([0, 1]).all() and (df.rank_spread >= 1).all()
    assert df.samples_per_s.to_numpy() == pytest.approx(8 / df.median_ms.to_numpy() * 1e3)
    # each phase's samples are its slowest rank's: the row's statistics come from them
    samples = pd.read_csv(out / "samples.csv").groupby(["config_id", "phase"]).device_ms
    rows = df.set_index(["config_id", "phase"])
    assert samples.median().to_dict() == pytest.approx(rows.median_ms.to_dict())
    assert samples.size().to_dict() == rows.n_samples.to_dict()
    ranks = json.loads((out / "env.json").read_text())["ranks"]
    assert [r["rank"] for r in ranks] == [0, 1] and all(set(r["devices"]) == {"cpu"}
                                                        for r in ranks)
    assert json.loads((out / "sweep.json").read_text())["distributed"] == {"world_size": 2}
    # only rank 0 prints the summary, which counts the samples of both ranks
    assert proc.stdout.count("Step time, median ms") == 1
    assert "on each of 2 ranks" in proc.stdout and "Report:" in proc.stdout
    page = (out / "report.html").read_text()
    assert "DDP joint" in page and "DDP per_network" in page


@pytest.mark.slow
@pytest.mark.parametrize("rendezvous", ["static", "c10d"])
def test_two_single_process_nodes_on_loopback_give_the_same_rows(tmp_path, rendezvous):
    out, port = tmp_path / "run", free_port()
    meet = ["--nnodes", "2", "--nproc-per-node", "1", "--rdzv-endpoint", f"127.0.0.1:{port}"]
    if rendezvous == "c10d":
        meet += ["--rdzv-backend", "c10d", "--rdzv-id", "two-nodes",
                 "--rdzv-conf", "join_timeout=60"]
    else:
        meet += ["--rdzv-conf", "timeout=60"]
    nodes = []
    for node in (0, 1):
        rank = ["--node-rank", str(node)] if rendezvous == "static" else []
        with open(tmp_path / f"node{node}.err", "w") as err:
            nodes.append(subprocess.Popen(
                torchrun_command(*meet, *rank, "-m", "bench", *SWEEP, "--out-dir", str(out)),
                cwd=ROOT, env=env(), stdout=subprocess.DEVNULL, stderr=err))
    codes = [node.wait(timeout=180) for node in nodes]
    assert codes == [0, 0], [(tmp_path / f"node{i}.err").read_text()[-2000:] for i in (0, 1)]
    two_rank_rows(out)


@pytest.mark.slow
def test_one_ddp_step_computes_what_one_process_computes_on_the_concatenated_batch(tmp_path):
    report = tmp_path / "gradients.json"
    script = ROOT / "tests" / "ddp_gradients.py"
    proc = torchrun("--standalone", "--nproc-per-node", "2", str(script), str(report))
    assert proc.returncode == 0, proc.stderr
    got = json.loads(report.read_text())
    assert len(got) == 7 * 2  # scenarios x wraps
    for case, diff in got.items():
        assert diff["gradients"] < 1e-5 and diff["parameters"] < 1e-6, case
    # the networks an update leaves out have no gradient under either wrap
    assert got["detached/joint"]["with_gradient"] == got["detached/per_network"]["with_gradient"] \
        == 6  # ConvNet's six tensors; LinearNet's four have none


@pytest.mark.slow
def test_a_rank_that_raises_ends_the_run_and_keeps_what_was_finished(tmp_path):
    out = tmp_path / "run"
    started = time.monotonic()
    # test_rank_fails raises on rank 1 from batch size 8; batch 2 of its group runs first
    proc = torchrun("--standalone", "--nproc-per-node", "2", "-m", "bench", "--load",
                    str(FAILING_SCENARIOS), "run", "--distributed", "--devices", "cpu",
                    "--scenarios", "test_rank_fails", "--batch-sizes", "2,8",
                    "--optimizer-setups", "single", *QUICK, "--out-dir", str(out))
    assert proc.returncode != 0
    assert time.monotonic() - started < 60
    said = proc.stderr
    assert ("error: rank 1 of 2 (" in said and "failed at configuration "
            "test_rank_fails/seed/cpu/bs8/single/adam/loop/ddp-joint (repeat 1): error: "
            "ValueError: rank 1 cannot go on" in said)
    assert f"The run stops: {out}/results.csv keeps the 1 configuration(s)" in said
    assert f"--resume {out}" in said
    df = pd.read_csv(out / "results.csv")
    assert set(df.config_id) == {"test_rank_fails/seed/cpu/bs2/single/adam/loop/ddp-joint"}
    assert len(df) == 4 and set(df.status) == {"ok"}


@pytest.mark.slow
def test_a_full_disk_under_torchrun_stops_every_rank_and_keeps_whole_configurations(tmp_path):
    """RLIMIT_FSIZE makes rank 0's write past 30 kB fail as a full disk does (see
    tests/test_processes.py); the other rank must stop with it, not wait in a collective."""
    out = tmp_path / "run"
    limit = 30_000

    proc = subprocess.run(
        torchrun_command("--standalone", "--nproc-per-node", "2", "-m", "bench", "run",
                         "--distributed", "--devices", "cpu", "--scenarios", "sequential",
                         "--batch-sizes", "2,4,8,16,32,64", "--optimizer-setups", "single",
                         *QUICK, "--min-samples", "20", "--max-samples", "20",
                         "--out-dir", str(out)),
        cwd=ROOT, env={**uncovered_environment(), "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=120, preexec_fn=file_size_limited(limit))
    assert proc.returncode != 0
    assert f"error: cannot write {out / 'samples.csv'}: File too large" in proc.stderr
    assert f"--resume {out}" in proc.stderr
    df = pd.read_csv(out / "results.csv")
    assert 1 <= df.config_id.nunique() < 6 and df.groupby("config_id").size().eq(4).all()
    samples = pd.read_csv(out / "samples.csv").groupby(["config_id", "phase"]).size()
    assert samples.to_dict() == df.set_index(["config_id", "phase"]).n_samples.to_dict()


@pytest.mark.slow
@pytest.mark.parametrize("launcher, node, expected", [
    ("bench launch", 0, "1/2 clients joined"),  # the node that hosts the endpoint
    ("bench launch", 1, "trying to connect to"),
    ("torch.distributed.run", 1, "trying to connect to"),  # torchrun itself names it too
])
def test_a_rendezvous_that_cannot_form_ends_naming_the_endpoint(tmp_path, launcher, node,
                                                                   expected):
    port = free_port()
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", *launcher.split(), "--nnodes", "2", "--node-rank", str(node),
         "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-conf", "timeout=3", "-m", "bench",
         "run", "--distributed", "--devices", "cpu"],
        cwd=ROOT, env=env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert time.monotonic() - started < 30
    assert expected in proc.stderr
    if launcher == "bench launch":
        assert f"error: the rendezvous at 127.0.0.1:{port} (static, --nnodes 2) did not " \
               "form: " in proc.stderr and "Traceback" not in proc.stderr
    else:
        assert str(port) in proc.stderr


@pytest.mark.slow
def test_a_c10d_rendezvous_that_cannot_form_ends_naming_the_endpoint():
    port = free_port()
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "launch", "--nnodes", "2", "--rdzv-backend", "c10d",
         "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-conf", "join_timeout=3", "-m",
         "bench", "run", "--distributed", "--devices", "cpu"],
        cwd=ROOT, env=env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith(
        f"error: the rendezvous at 127.0.0.1:{port} (c10d, --nnodes 2) did not form: "
        "RendezvousTimeoutError")


@pytest.mark.slow
def test_a_distributed_run_resumes_under_torchrun(tmp_path):
    out = tmp_path / "run"
    sweep = ["run", "--distributed", "--devices", "cpu", "--scenarios", "sequential",
             "--batch-sizes", "2,4", "--optimizer-setups", "single", *QUICK]
    proc = torchrun("--standalone", "--nproc-per-node", "2", "-m", "bench", *sweep,
                    "--out-dir", str(out))
    assert proc.returncode == 0, proc.stderr
    first = pd.read_csv(out / "results.csv")
    # as a run killed outright would leave it: the last configuration's rows gone
    lines = (out / "results.csv").read_text().splitlines(keepends=True)
    (out / "results.csv").write_text("".join(lines[:-4]))
    lost = first.config_id.iloc[-1]
    # one process cannot continue it, nor three ranks
    proc = subprocess.run([sys.executable, "-m", "bench", "run", "--resume", str(out)],
                          cwd=ROOT, env=env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "it ran data-parallel over 2 ranks" in proc.stderr
    proc = torchrun("--standalone", "--nproc-per-node", "2", "-m", "bench", "run",
                    "--distributed", "--resume", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    final = pd.read_csv(out / "results.csv")
    assert sorted(final.config_id) == sorted(first.config_id)
    assert final.run_id.nunique() == 1 and set(final.world_size) == {2}
    assert (final.config_id == lost).sum() == 4  # measured again, once
    env_record = json.loads((out / "env.json").read_text())
    assert len(env_record["resumes"]) == 1


@pytest.mark.slow
def test_fail_fast_and_progress_under_torchrun_behave_as_in_one_process(tmp_path):
    """The one sweep loop: rank 0 shows one progress line per configuration written, and
    --fail-fast stops every rank after the first non-finite loss, as a single process does."""
    out = tmp_path / "run"
    proc = torchrun("--standalone", "--nproc-per-node", "2", "-m", "bench", "--load",
                    str(FAILING_SCENARIOS), "run", "--distributed", "--devices", "cpu",
                    "--scenarios", "test_nan_loss,sequential", "--batch-sizes", "2,4",
                    "--optimizer-setups", "single", "--fail-fast", *QUICK[:-1],
                    "--out-dir", str(out))
    assert proc.returncode == 1, proc.stderr
    assert "Stopped at the first failure (--fail-fast): nonfinite: " in proc.stderr
    df = pd.read_csv(out / "results.csv")
    configs = df.drop_duplicates("config_id")
    assert (configs.status == "nonfinite").sum() == 1 and len(configs) < 4
    # a line per configuration written, from rank 0 alone
    progress = [line for line in proc.stderr.splitlines()
                if re.match(r"\[\s*\d+/\d+\]", line)]
    assert len(progress) == len(configs)
    assert f"{4 - len(configs)} configuration(s) not measured yet; to continue, launch the " \
        "same torchrun command" in proc.stderr


@pytest.mark.slow
def test_a_signal_under_torchrun_stops_every_rank_between_configurations(tmp_path):
    out = tmp_path / "run"
    with open(tmp_path / "launch.err", "w") as err:
        launcher = subprocess.Popen(
            [sys.executable, "-m", "bench", "launch", "--standalone", "--nproc-per-node", "2",
             "-m", "bench", "run", "--distributed", "--devices", "cpu", "--scenarios",
             ",".join(ARTICLE), "--batch-sizes", "2,4,8", "--optimizer-setups", "single",
             *QUICK, "--out-dir", str(out)], cwd=ROOT, env=env(), stderr=err,
            stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not ((out / "results.csv").exists()
               and (out / "results.csv").read_text().count("\n") > 4):
        assert time.monotonic() < deadline and launcher.poll() is None
        time.sleep(0.05)
    launcher.send_signal(signal.SIGINT)
    assert launcher.wait(timeout=90) == 130
    said = (tmp_path / "launch.err").read_text()
    assert "SIGINT: stopping after the configuration in progress" in said
    df = pd.read_csv(out / "results.csv")
    assert df.groupby("config_id").size().eq(4).all() and df.config_id.nunique() < 9
    proc = torchrun("--standalone", "--nproc-per-node", "2", "-m", "bench", "run",
                    "--distributed", "--resume", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert pd.read_csv(out / "results.csv").groupby("config_id").size().eq(4).sum() == 9


@pytest.mark.slow
def test_the_gpu_check_ddp_sweep_on_the_cpu(tmp_path):
    checks = []
    check_ddp(tmp_path / "ddp-check", checks, device="cpu", nproc=2)
    assert [c["check"] for c in checks] == ["DDP sweep under torchrun"]
    assert checks[0]["ok"], checks[0]["detail"]
    assert "8/8 rows ok over 2 rank(s) (gloo), wraps joint, per_network" in checks[0]["detail"]


@pytest.mark.gpu
@pytest.mark.slow
def test_the_ddp_sweep_over_every_gpu(tmp_path):
    checks = []
    check_ddp(tmp_path / "ddp-check", checks)
    assert checks[0]["ok"], checks[0]["detail"]
    assert f"over {torch.cuda.device_count()} rank(s) (nccl)" in checks[0]["detail"]


@pytest.mark.slow
def test_distributed_outside_torchrun_is_refused(cli, tmp_path, monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    proc = cli("run", "--distributed", "--devices", "cpu", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: --distributed runs under torchrun, e.g. `torchrun "
                                  "--nproc-per-node 2 -m bench run --distributed ...`")
    proc = cli("run", "--ddp-wrap", "joint", "--devices", "cpu", cwd=tmp_path)
    assert proc.returncode == 2
    assert "--ddp-wrap applies to --distributed runs" in proc.stderr
    assert not (tmp_path / "results").exists()


def timing(medians: dict[str, list[float]]) -> Timing:
    t = Timing(clock="perf_counter", warmup_iters=3, first_iter_s=0.1, stop_reason="budget",
               elapsed_s=0.5)
    for phase in REQUIRED_PHASES:
        t.device_ms[phase] = list(medians[phase])
        t.host_ms[phase] = [v / 2 for v in medians[phase]]
    return t


def test_each_phase_takes_the_slowest_rank_and_the_spread_across_ranks():
    rank0 = timing({"forward": [1, 1, 1], "backward": [4, 4, 4], "optimizer": [1, 2, 3],
                    "step": [6, 7, 8]})
    rank1 = timing({"forward": [2, 2, 2], "backward": [3, 3, 3], "optimizer": [1, 2, 3],
                    "step": [6, 9, 9]})
    rank1.elapsed_s, rank1.first_iter_s = 0.7, 0.05
    result = ConfigResult(StepSpec("sequential", 4, ddp_wrap="joint"), "CPU", 1, "t",
                          timing=rank0, phase_columns={"forward": {"flops": 10}})
    merged = merge_ranks(result, [RankResult(0, "ok", "", rank0), RankResult(1, "ok", "", rank1)],
                         "gloo")
    cols = merged.phase_columns
    assert {p: cols[p]["slowest_rank"] for p in REQUIRED_PHASES} == {
        "forward": 1, "backward": 0, "optimizer": 0, "step": 1}  # a tie goes to the lower rank
    assert {p: cols[p]["rank_spread"] for p in REQUIRED_PHASES} == {
        "forward": 2.0, "backward": 4 / 3, "optimizer": 1.0, "step": 9 / 7}
    assert cols["forward"]["flops"] == 10  # rank 0's counts stay
    assert merged.timing.device_ms["forward"] == [2, 2, 2]
    assert merged.timing.host_ms["backward"] == [2, 2, 2]
    assert (merged.timing.elapsed_s, merged.timing.first_iter_s) == (0.7, 0.1)
    assert (merged.world_size, merged.backend) == (2, "gloo")


def test_a_rank_that_did_not_measure_makes_the_configuration_unmeasured():
    t = timing({p: [1.0] for p in REQUIRED_PHASES})
    result = ConfigResult(StepSpec("sequential", 4, ddp_wrap="joint"), "CPU", 1, "t", timing=t,
                          config_columns={"param_bytes": 1})
    merged = merge_ranks(result, [RankResult(0, "nonfinite", NONFINITE_ELSEWHERE, None),
                                  RankResult(1, "nonfinite", "loss is nan at the last timed "
                                             "iteration", None),
                                  RankResult(2, "ok", "", t)], "gloo")
    assert merged.status == "nonfinite" and merged.timing is None
    assert merged.error == "rank 1: loss is nan at the last timed iteration"
    assert merged.config_columns == {} and merged.world_size == 3


class OtherRank:
    """``agree`` as another rank would answer it: one that wants ``warmup_calls`` more
    warm-up iterations, whose iterations take ``iteration_s``, whose samples never
    converge, and whose clock says ``elapsed_s`` of sampling."""

    def __init__(self, warmup_calls: int, iteration_s: float, elapsed_s: float):
        self.warmup_calls, self.iteration_s, self.elapsed_s = warmup_calls, iteration_s, elapsed_s

    def __call__(self, values):
        if len(values) == 2:  # [not converged, elapsed], after a block
            return [1.0, max(values[1], self.elapsed_s)]
        if values[0] in (0.0, 1.0):  # warm-up: whether to go on
            more = self.warmup_calls > 0
            self.warmup_calls -= more
            return [max(values[0], float(more))]
        return [max(values[0], self.iteration_s)]  # a warm iteration's seconds


def test_timing_decisions_follow_what_the_ranks_agree():
    step = build_step(StepSpec("sequential", 2))
    options = TimingOptions(warmup_iters=1, warmup_s=0, min_samples=3, max_samples=1000,
                            target_rel_ci=1.0, budget_s=3600, min_rounds=1)
    # alone, so generous a target converges at the first block
    assert time_step(step, "cpu", options).stop_reason == "converged"
    # the other rank wants five more warm-up iterations, takes 50 ms an iteration (a block
    # of 0.05 s is then one iteration, where this rank's own 1 ms would make it fifty, and
    # a machine busy enough to slow this rank past 50 ms still makes it one), never
    # converges and has spent its budget: this rank stops when it does, by the budget, as
    # soon as it has its three samples: after three blocks
    agreed = time_step(step, "cpu", options, agree=OtherRank(5, 0.05, 2e6))
    assert agreed.warmup_iters == 1 + 5 + 1  # the first, the other rank's five, the last
    assert agreed.stop_reason == "budget" and agreed.n_samples == 3


def test_find_unused_parameters_is_for_scenarios_that_leave_a_network_out():
    def leaves_out(name):
        scenario = get_scenario(name)
        return leaves_a_network_out(scenario, scenario.build_networks())
    assert [leaves_out(s) for s in ("sequential", "shared_input", "separate_losses",
                                    "shared_trunk", "n_ensemble", "detached", "gan")] == [
        False, False, False, False, False, True, True]


def test_ddp_specs_outside_a_process_group_and_with_cuda_graphs_are_refused():
    spec = StepSpec("sequential", 4, ddp_wrap="joint")
    assert unsupported(spec) == ("DDP needs a process group: launch with torchrun and run "
                                 "--distributed")
    with pytest.raises(MultinetError, match="DDP needs a process group"):
        build_step(spec)
    graphed = dataclasses.replace(spec, device="cuda:0", cuda_graph=True)
    assert unsupported(graphed).startswith("CUDA graphs with DDP")
    assert config_id(spec) == "sequential/seed/cpu/bs4/separate/adam/auto/ddp-joint"
    with pytest.raises(MultinetError, match="unknown DDP wrap 'both'"):
        StepSpec("sequential", 4, ddp_wrap="both")


def test_under_a_rank_devices_are_kinds_and_the_wrap_axis_applies(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('scenarios = ["sequential"]\nsizes = ["seed"]\nbatch_sizes = [2]\n'
                    'devices = ["cpu"]\noptimizer_setups = ["single"]\noptimizers = ["adam"]\n'
                    'optimizer_impls = ["loop"]\nddp_wraps = ["joint", "per_network"]\n')
    config = load_sweep(path)
    alone, _ = expand_all(config)
    assert [s.ddp_wrap for s in alone] == ["none"]  # one process: the axis does not apply
    _, refused = expand_all(config, local_rank=1)  # DDP needs a process group, not here
    assert [s.ddp_wrap for s, _ in refused] == ["joint", "per_network"]
    for device, message in (("cuda:1", "under --distributed a device is `cpu`, `cuda`"),
                            ("mps", "under --distributed a device is `cpu`, `cuda`")):
        with pytest.raises(UsageError, match=message):
            expand_all(dataclasses.replace(config, axes={**config.axes, "device": (device,)}),
                       local_rank=0)
    if torch.cuda.device_count() < 8:
        with pytest.raises(UsageError, match="the rank with LOCAL_RANK 7 has no cuda:7"):
            expand_all(dataclasses.replace(config, axes={**config.axes, "device": ("cuda",)}),
                       local_rank=7)
    path.write_text(path.read_text().replace('"per_network"', '"none"'))
    with pytest.raises(UsageError, match="unknown ddp wrap 'none'; valid: joint, per_network"):
        load_sweep(path)


def test_a_run_resumes_with_the_world_it_ran_with(tmp_path):
    distributed = {"distributed": {"world_size": 2}}
    check_world(tmp_path, distributed, 2)
    check_world(tmp_path, {}, None)
    for record, world, message in ((distributed, None, "it ran data-parallel over 2 ranks"),
                                   (distributed, 4, "over 4 ranks: it ran over 2"),
                                   ({}, 2, "with --distributed: it ran in one process")):
        with pytest.raises(UsageError, match=message):
            check_world(tmp_path, record, world)


def scaling_run(folder, wrap: str, world: int, step_ms: float):
    """A run folder of one configuration, read back as every consumer reads it."""
    rows = [result_row(run_id=folder.name, ddp_wrap=wrap, world_size=world, phase=phase,
                       median_ms=step_ms, batch_size=16) for phase in ("forward", "step")]
    return load_run(write_run(folder, rows))


def test_scaling_is_step_time_throughput_and_efficiency_against_one_process(tmp_path):
    results = results_of([scaling_run(tmp_path / "one", "none", 1, 2.0),
                          scaling_run(tmp_path / "two", "joint", 2, 2.5),
                          scaling_run(tmp_path / "four", "joint", 4, 4.0),
                          scaling_run(tmp_path / "pn1", "per_network", 1, 2.2),
                          scaling_run(tmp_path / "pn4", "per_network", 4, 2.2)])
    table = scaling_table(results)
    got = {(r.ddp_wrap, r.world_size): (r.median_ms, r.throughput, r.efficiency)
           for r in table.itertuples()}
    expected = {
        # the joint wrap has no run of one rank: the single process stands in for it
        ("joint", 1): (2.0, 16 / 2.0 * 1e3, 1.0),
        ("joint", 2): (2.5, 32 / 2.5 * 1e3, 2.0 / 2.5),
        ("joint", 4): (4.0, 64 / 4.0 * 1e3, 0.5),
        # per_network has its own, which it is measured against
        ("per_network", 1): (2.2, 16 / 2.2 * 1e3, 1.0),
        ("per_network", 4): (2.2, 64 / 2.2 * 1e3, 1.0)}
    assert sorted(got) == sorted(expected)
    for key, values in expected.items():
        assert got[key] == pytest.approx(values), key
    one_size = results_of([scaling_run(tmp_path / "alone", "joint", 2, 2.5)])
    assert scaling_table(one_size).empty


def test_ranks_are_named_in_hover_text_and_the_environment_table():
    assert axes_text({"ddp_wrap": "per_network", "world_size": 8}) == "DDP per_network · 8 ranks"
    assert axes_text({"ddp_wrap": "none", "world_size": 1}) == ""
    assert env_value([{"rank": 0, "hostname": "a", "devices": {"cuda:0": "H100"}},
                      {"rank": 1, "hostname": "b", "devices": {"cuda:0": "H100"}}]) == \
        "rank 0: a, cuda:0 (H100); rank 1: b, cuda:0 (H100)"
