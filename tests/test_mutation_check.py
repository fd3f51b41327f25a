"""The mutation check's list stays in step with the source, and the tool runs end to end."""

import json
import subprocess
import sys

import pytest

from bench.errors import UsageError
from bench.tools.mutation_check import check_list
from bench.tools.mutations import MUTATIONS, Mutation
from tests.conftest import ROOT


def test_every_mutation_finds_its_text_once():
    assert len(MUTATIONS) >= 12
    check_list(MUTATIONS, ROOT)  # raises where a text is missing or ambiguous
    for m in MUTATIONS:
        assert m.find != m.replace and m.tests and (ROOT / m.tests[0]).exists(), m.name


def test_the_defects_found_by_hand_are_on_the_list():
    names = {m.name for m in MUTATIONS}
    assert {"forward and backward labels swapped in the per-phase split",
            "a 1 ms sleep inside the timed region of the unbroken step pass",
            "Adam built with betas=(0.8, 0.99) in every setup",
            "`single` leaves out one network's parameters", "zero_grad dropped",
            "events recorded on the default stream, not the step's",
            "a warm-up that counts its iterations and ignores its time",
            "a host block drops its last sample",
            "the step pass times the phase pass's first closure"} <= names


def test_a_stale_mutation_is_named():
    stale = Mutation("gone", "multinet/optim.py", "no such text", "x", ("tests",))
    with pytest.raises(UsageError, match="mutation 'gone': its text is in multinet/optim.py 0 "
                                         "times, not once"):
        check_list([stale], ROOT)


def run_tool(*args):
    return subprocess.run([sys.executable, "-m", "bench", "mutation-check", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_the_tool_plants_a_defect_and_sees_it_caught(tmp_path):
    # a mutant whose tests take seconds (each mutant's own are tested in
    # test_every_mutation_finds_its_text_once and by `make mutation-check`)
    proc = run_tool("--only", "half the measurements agreeing make a shift common", "--out",
                    str(tmp_path / "m.json"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "caught" in proc.stdout and "Mutation score: 1/1 caught." in proc.stdout
    outcome = json.loads((tmp_path / "m.json").read_text())
    assert (outcome["caught"], outcome["total"]) == (1, 1)
    assert outcome["mutations"][0]["caught_by"].startswith("tests/test_shifts.py::")
    # the checkout itself was never changed
    assert "AGREEMENT = 0.75" in (ROOT / "bench" / "analyze" / "shifts.py").read_text()


def test_a_name_that_matches_nothing_is_refused_in_one_line():
    proc = run_tool("--only", "no such mutation")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "Error: no mutation's name has 'no such mutation'"
