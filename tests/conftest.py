import os
import runpy
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import torch

from multinet import SCENARIOS, Scenario
from multinet.scenarios import register
from tests.support.chromium import find_chromium
from tests.postgres_server import PostgresServer, find_binaries
from tests import slurm_cluster

ROOT = Path(__file__).resolve().parent.parent


# The two tiers, stated here once. `make test` runs pytest with --quick, which leaves out
# every test carrying one of these markers (registered in pyproject.toml); `make test-all`
# and plain `pytest` run everything. A test needing more than a few seconds is marked `slow`;
# one that needs a real server or browser is marked by what it needs.
LONG_TIER = ("slow", "postgres", "chromium", "slurm")
FUZZ_CASES = 60


def slow_except(values, quick) -> list:
    """``values`` to parametrize a test with, each marked `slow` but those in ``quick``: the
    quick tier runs a few of them, the long tier every one."""
    return [v if v in quick else pytest.param(v, marks=pytest.mark.slow) for v in values]


def pytest_addoption(parser):
    parser.addoption("--quick", action="store_true",
                     help=f"the quick tier: leave out tests marked {', '.join(LONG_TIER)}")
    # tests/test_fuzz_inputs.py: each damage reaches every command, so the cases cost
    # seconds each; a longer hunt (`make test-all ARGS="--fuzz-cases 400"`) costs minutes more
    parser.addoption("--fuzz-cases", type=int, default=FUZZ_CASES, metavar="N",
                     help=f"seeded damages per file kind in the fuzz tests (default "
                          f"{FUZZ_CASES})")


def pytest_configure(config):
    # tests/damage.py draws each case's kind from its seed: fewer cases than this leave some
    # kind reaching some command once or never, which proves nothing about it
    if config.getoption("--fuzz-cases") < 30:
        raise pytest.UsageError(f"--fuzz-cases {config.getoption('--fuzz-cases')}: give at "
                                "least 30")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "postgres" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)  # the server fixture puts it in its tier
        if "slurm" in getattr(item, "fixturenames", ()):
            # one cluster per session: under `--dist loadgroup` its tests share a process
            item.add_marker(pytest.mark.xdist_group("slurm"))
    if config.getoption("--quick"):
        long = [any(item.get_closest_marker(m) for m in LONG_TIER) for item in items]
        if any(long):
            config.hook.pytest_deselected(items=[i for i, x in zip(items, long) if x])
            items[:] = [i for i, x in zip(items, long) if not x]
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason=f"needs a CUDA device; torch {torch.__version__} sees none")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def run_cli(*args: str, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    """``python -m bench ARGS`` in a real subprocess, from the project root."""
    env = {**kwargs.pop("env", os.environ), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=kwargs.pop("cwd", ROOT),
                          capture_output=True, text=True, timeout=timeout, env=env, **kwargs)


@pytest.fixture
def cli():
    return run_cli


FAILING_SCENARIOS = ROOT / "tests" / "failing_scenarios.py"


@pytest.fixture
def failing_scenarios():
    """The scenarios of tests/failing_scenarios.py, registered for one test only."""
    namespace = runpy.run_path(str(FAILING_SCENARIOS))
    yield namespace
    for name in namespace["NAMES"]:
        SCENARIOS.pop(name, None)


@pytest.fixture(autouse=True)
def _quiet_machine(request):
    """A test marked `quiet` asserts timings that only a machine to itself keeps (a fraction
    of a millisecond): while other processes hold the CPU it is skipped, saying so."""
    if request.node.get_closest_marker("quiet") is None:
        return
    from bench.measure.environment_capture import machine_load
    load = machine_load(0.5)
    if load["busy"]:
        pytest.skip(f"other processes use {load['others_share']:.0%} of the CPU: this test "
                    "asserts timings that only a machine to itself keeps")


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    """An in-process sweep with `threads` set changes torch's global thread count."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def small_scenario():
    """x(5x4) -> Linear(4,3) -> ReLU -> Linear(3,2) -> squared -> mean: small enough that
    bytes and FLOPs can be counted by hand. Registered for the test, then removed."""
    @register
    class Small(Scenario):
        name = "test_small"
        description = "for counting tests"
        expected_flow = {"loss": {"net"}}

        def build_networks(self):
            return {"net": torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(),
                                               torch.nn.Linear(3, 2))}

        def make_batch(self, batch_size, generator):
            return {"x": torch.randn(batch_size, 4, generator=generator)}

        def loss_terms(self, networks, batch):
            return {"loss": networks["net"](batch["x"]).pow(2).mean()}

    yield Small.name
    SCENARIOS.pop(Small.name)


@pytest.fixture(scope="session")
def saved_suite(tmp_path_factory):
    """A saved suite run, shared by the tests that read one: its folder and its JSON."""
    from tests.suite_runs import save_run

    tmp_path = tmp_path_factory.mktemp("suite")
    return tmp_path, save_run(tmp_path)


@pytest.fixture(scope="session")
def saved_suite_run(saved_suite):
    return saved_suite[1]


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server in a temporary folder, for the whole session; skipped with
    the reason where its binaries are absent."""
    binaries, why = find_binaries()
    if binaries is None:
        pytest.skip(why)
    server = PostgresServer(binaries).start()
    yield server
    server.stop()


# Real runs, as small as a sweep gets: two setups, a few samples each; TINY_RUN is one
# batch size of the article's first scenario.
QUICK_RUN = ["--devices", "cpu", "--optimizer-setups", "separate,single", "--warmup-iters",
             "1", "--warmup-s", "0", "--min-samples", "3", "--min-rounds", "2", "--threads",
             "1", "--quiet"]
TINY_RUN = ["--scenarios", "sequential", "--batch-sizes", "2", "--budget-s", "0.02",
            *QUICK_RUN]


@pytest.fixture(scope="session")
def real_run(tmp_path_factory):
    """A run folder `bench run` made, complete, for tests that read it (copy it to change
    it): eight rows (two setups x four phases) and their samples."""
    folder = tmp_path_factory.mktemp("real") / "run"
    proc = run_cli("run", *TINY_RUN, "--out-dir", str(folder))
    assert proc.returncode == 0, proc.stderr
    return folder


@pytest.fixture(scope="session")
def bare_python(tmp_path_factory) -> str:
    """The interpreter of a virtual environment with nothing installed: no torch, no
    pandas (what a user's other environment may well lack)."""
    import venv
    folder = tmp_path_factory.mktemp("bare") / "venv"
    venv.create(folder, with_pip=False)
    return str(folder / "bin" / "python")


@pytest.fixture(scope="session")
def slurm():
    """A real single-node Slurm cluster with partitions `alpha` and `beta`, for the whole
    session; skipped with the reason where its daemons are absent, failed in CI, whose
    setup installs them."""
    found, why = slurm_cluster.find_binaries()
    if not found:
        if os.environ.get("CI"):
            pytest.fail(f"{why}; .ci/run installs them")
        pytest.skip(why)
    cluster = slurm_cluster.SlurmCluster(("alpha", "beta")).start()
    yield cluster
    cluster.stop()


@pytest.fixture(params=["duckdb", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request, tmp_path):
    """A new, empty history store of each kind: every test that takes it runs against both."""
    if request.param == "duckdb":
        return str(tmp_path / "history.duckdb")
    server = request.getfixturevalue("postgres")
    return server.create_database(f"t{uuid.uuid4().hex[:12]}")


def chromium_or_skip() -> str:
    """Chromium's path for a test that needs a real browser: skipped with the reason where
    it is absent, failed in CI, whose setup installs it."""
    executable = find_chromium()
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed in CI; .ci/run installs it")
        pytest.skip("chromium is not installed (Debian: apt-get install chromium); the "
                    "browser test needs a real one")
    return executable
