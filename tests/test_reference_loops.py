"""The joint step against loops written apart from it (``bench/correctness``): every scenario,
setup, optimizer and implementation, five steps, losses, gradients, parameters and state."""

import ast
import importlib
import pkgutil
import subprocess
import sys

import pytest
import torch

import bench.correctness
from bench.correctness import check, networks
from bench.correctness.check import against_reference
from bench.correctness.loops import LOOPS
from bench.correctness.workload_loops import WORKLOAD_LOOPS
from bench.tools.mutation_check import copy_checkout
from bench.tools.mutations import MUTATIONS
from multinet import OPTIMIZERS, SCENARIOS, SETUPS, JointStep
from multinet.optim import OptimizerKind
from tests import article
from tests.conftest import ROOT, run_cli, slow_except


ARTICLE = [name for name in SCENARIOS if name not in WORKLOAD_LOOPS]


def test_every_scenario_has_a_reference_loop():
    assert set(LOOPS) == set(SCENARIOS)


def imported_names(module) -> dict[str, set[str]]:
    """Module -> the names taken from it, for every import of ``module``'s source."""
    found: dict[str, set[str]] = {}
    for node in ast.walk(ast.parse(open(module.__file__).read())):
        if isinstance(node, ast.ImportFrom):
            found.setdefault(node.module, set()).update(a.name for a in node.names)
        elif isinstance(node, ast.Import):
            found.update({a.name: set() for a in node.names})
    return found


def test_the_reference_shares_no_code_with_the_library():
    reference = [info.name for info in pkgutil.iter_modules(bench.correctness.__path__)
                 if info.name != "check"]
    assert {"base", "loops", "networks", "workload_loops"} <= set(reference)
    for name in reference:
        module = importlib.import_module(f"bench.correctness.{name}")
        assert not any(m.split(".")[0] == "multinet" for m in imported_names(module)), module
    # the check builds the harness's step from multinet, and takes nothing else from it but
    # the registry (the size of a scenario that has no reference loop) and the reading of a
    # stacked network back as each network's own tensors
    taken = {m: names for m, names in imported_names(check).items() if m.startswith("multinet")}
    assert taken == {"multinet": {"SCENARIOS", "SETUPS", "StepSpec", "build_step"},
                     "multinet.stacking": {"Slot", "member_view", "slots"}}


def test_the_reference_networks_are_the_article_s():
    """Built from one seed, the reference's networks hold the article's own weights."""
    for ours, theirs in ((lambda: networks.LinearNet(10, 20, 1024),
                          lambda: article.LinearNet(10, 20, 1024)),
                         (lambda: networks.ConvNet(1, 1), lambda: article.ConvNet(1, 1))):
        torch.manual_seed(3)
        a = ours().state_dict()
        torch.manual_seed(3)
        b = theirs().state_dict()
        assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("optimizer", slow_except(list(OPTIMIZERS), ["adam"]))
@pytest.mark.parametrize("scenario", slow_except(ARTICLE, ["sequential", "gan"]))
def test_the_step_is_the_article_s_loop(scenario, optimizer):
    for impl in ("loop", "foreach", "fused"):
        results = against_reference(scenario, optimizer=optimizer, optimizer_impl=impl,
                                    n_networks=3)
        assert [r.setup for r in results] == list(SETUPS)
        for r in results:
            assert r.ok, (impl, r.setup, r.mismatch)
            if impl == "fused":
                assert r.tolerance == "norm rtol=0.0001, atol=1e-07"
            else:  # the very same arithmetic as the reference's
                assert r.tolerance == "bitwise" and r.max_abs_diff == 0, (impl, r.setup)


@pytest.mark.parametrize("scenario", slow_except(["sequential", "gan"], ["sequential"]))
def test_the_step_is_the_article_s_loop_under_bf16_autocast(scenario):
    for r in against_reference(scenario, precision="bf16"):
        assert r.ok and r.max_abs_diff == 0, (r.setup, r.mismatch)


def test_a_changed_hyperparameter_is_named(monkeypatch):
    monkeypatch.setitem(OPTIMIZERS, "adam",
                        OptimizerKind(torch.optim.Adam, {"lr": 1e-3, "betas": (0.8, 0.99)}))
    results = against_reference("shared_input", setups=["grouped"])
    assert [r.mismatch for r in results] == [
        "step 1, linear parameter 0's betas: (0.8, 0.99) in the harness, (0.9, 0.999) in "
        "the reference"]


def test_gradients_left_from_the_last_step_are_caught(monkeypatch):
    """A joint step that never zeroes: the second backward adds to the first's gradients."""
    def steps_only(self, owners):
        optimizers = [self.optimizers[i] for i in owners]
        return lambda: [opt.step() for opt in optimizers]
    monkeypatch.setattr(JointStep, "_optimizer_fn", steps_only)
    results = against_reference("sequential", setups=["separate"], steps=2)
    assert results[0].mismatch.startswith("step 2, update 0, gradient of linear parameter 0")


@pytest.mark.slow
def test_verify_shows_the_reference_check_and_fails_on_changed_betas(tmp_path):
    """A copy of the library whose Adam has other betas: verify exits 1 and says why."""
    # the very defect and copy that `make mutation-check` plants
    tree = copy_checkout(ROOT, tmp_path)
    betas = next(m for m in MUTATIONS if m.name.startswith("Adam built with betas=(0.8, 0.99)"))
    path = tree / betas.path
    assert path.read_text().count(betas.find) == 1
    path.write_text(path.read_text().replace(betas.find, betas.replace))
    proc = subprocess.run([sys.executable, "-m", "bench", "verify", "--scenarios", "sequential"],
                          cwd=tree, capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Against the reference loops on cpu" in proc.stdout
    assert ("sequential/adam/loop/separate: step 1, linear parameter 0's betas: (0.8, 0.99) "
            "in the harness, (0.9, 0.999) in the reference") in proc.stdout
    # setup equivalence alone passes: every setup shares the defect
    assert "sequential        adam       loop     identical             identical" in proc.stdout


@pytest.mark.slow
def test_verify_passes_on_the_library_as_it_is():
    proc = run_cli("verify", "--scenarios", "gan,n_ensemble", "--steps", "3")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Against the reference loops on cpu, fp32, over 3 steps" in proc.stdout
    assert "loop bitwise; foreach bitwise; fused norm rtol=0.0001, atol=1e-07" in proc.stdout
