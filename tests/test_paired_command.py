"""``python -m bench paired`` on folders of rounds a user may hand it: the same rounds on
both sides, sides of unequal length, an unfinished round, too few rounds to judge, and a
configuration that failed in most rounds on one side."""

import io
import json
import shutil
from contextlib import redirect_stderr, redirect_stdout
from itertools import product

import numpy as np
import pandas as pd
import pytest

from bench.analyze.paired_rounds import compare_paired
from bench.cli import main
from bench.commands.paired import rounds_in
from bench.schema import ENV_FILE, ONLY_KEY, PLAN_KEY, REQUIRED_PHASES, RESULTS_FILE, SWEEP_FILE
from tests.support.synthetic import env_record, result_row, write_run
from tests.conftest import run_cli

CONFIGS = list(product(("sequential", "shared_input"), ("separate", "single")))


def write_rounds(folder, name, rounds, factor=1.0, failed=(), seed=0):
    """``rounds`` rounds of four configurations, 1% noise a round; every median times
    ``factor``; ``failed``: (scenario, setup, round index) recorded as an error."""
    rng = np.random.default_rng(seed)
    for i in range(rounds):
        run_id = f"{name}-{i}"
        rows, samples = [], {}
        for scenario, setup in CONFIGS:
            for phase in REQUIRED_PHASES:
                if (scenario, setup, i) in failed:
                    rows.append(result_row(run_id=run_id, scenario=scenario, phase=phase,
                                           optimizer_setup=setup, status="error",
                                           error="RuntimeError: planted"))
                    continue
                median = factor * rng.lognormal(0, 0.01)
                values = [median * 0.99, median, median * 1.01]
                row = result_row(run_id=run_id, scenario=scenario, optimizer_setup=setup,
                                 phase=phase, n_samples=3, median_ms=median,
                                 ci_low_ms=values[0], ci_high_ms=values[2])
                rows.append(row)
                samples[(row["config_id"], phase, 1)] = values
        write_run(folder / f"round-{i + 1:02d}", rows, samples, env_record(run_id))
    return folder


@pytest.mark.slow
def test_the_same_rounds_on_both_sides_are_refused(tmp_path):
    a = write_rounds(tmp_path / "a", "a", 6)
    proc = run_cli("paired", str(a), str(a))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert f"{a} is given twice (as {a} before)" in proc.stderr
    copy = write_rounds(tmp_path / "copy", "a", 6)  # the same runs, written again
    proc = run_cli("paired", str(a), str(copy))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert f"{copy} holds the same runs as {a} (run a-0 and 5 more)" in proc.stderr


def test_rounds_without_a_partner_are_named(tmp_path):
    a = write_rounds(tmp_path / "a", "a", 8)
    b = write_rounds(tmp_path / "b", "b", 6, seed=1)
    proc = run_cli("paired", str(a), str(b), "--out", str(tmp_path / "p.html"))
    assert proc.returncode == 0
    assert (f"note: {a} has 8 rounds, the other side 6: rounds 7 to 8 of {a} have no partner "
            "and are left out") in proc.stdout
    assert "16 measurements over 6 paired rounds" in proc.stdout


def test_an_unfinished_round_says_how_to_finish_it(tmp_path):
    a = write_rounds(tmp_path / "a", "a", 6)
    b = write_rounds(tmp_path / "b", "b", 5, seed=1)
    (b / "round-06").mkdir()  # interrupted before its first configuration was written
    proc = run_cli("paired", str(a), str(b))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert f"{b / 'round-06'} holds no results.csv: an unfinished round" in proc.stderr
    assert "--rounds" in proc.stderr


def test_under_three_rounds_nothing_is_judged_not_even_the_shift(tmp_path):
    # everything 30% slower, two rounds: the first look comes after round 3, so no verdict
    # is given, and --fail-on-regression has nothing to fail on
    a = write_rounds(tmp_path / "a", "a", 2)
    b = write_rounds(tmp_path / "b", "b", 2, factor=1.3, seed=1)
    proc = run_cli("paired", str(a), str(b), "--fail-on-regression",
                   "--out", str(tmp_path / "p.html"))
    assert proc.returncode == 0
    assert "With 2 round(s) nothing is judged" in proc.stdout
    assert "(not judged)" in proc.stdout and "0 regression(s)" in proc.stdout
    assert "not judged" in (tmp_path / "p.html").read_text()
    # the same at six rounds: every measurement and the shift are regressions
    a = write_rounds(tmp_path / "a6", "a6", 6)
    b = write_rounds(tmp_path / "b6", "b6", 6, factor=1.3, seed=1)
    proc = run_cli("paired", str(a), str(b), "--fail-on-regression",
                   "--out", str(tmp_path / "p6.html"))
    assert proc.returncode == 1
    assert "16 regression(s)" in proc.stdout and "(regression)" in proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize("failed_rounds", [4, 1])
def test_a_configuration_that_failed_in_most_rounds_is_named_not_passed_over(
        tmp_path, failed_rounds):
    # failed in the first four rounds of six on one side: two pairs left, too few to decide
    # anything, so its four phases are named as undecided with their pairs; failed in one,
    # it is decided like the rest
    failed = {("shared_input", "single", i) for i in range(failed_rounds)}
    a = write_rounds(tmp_path / "a", "a", 6)
    b = write_rounds(tmp_path / "b", "b", 6, failed=failed, seed=1)
    proc = run_cli("paired", str(a), str(b), "--out", str(tmp_path / "p.html"))
    assert proc.returncode == 0
    undecided = [line for line in proc.stdout.splitlines()
                 if line.startswith("  shared_input/seed/cpu/bs32/single/adam/loop ")]
    if failed_rounds == 4:
        assert "Undecided (4)" in proc.stdout
        assert len(undecided) == 4 and all("after 2 round(s)" in u for u in undecided)
    else:
        assert undecided == []


def write_numbered_rounds(folder, name, numbers, factor):
    """Rounds numbered ``numbers``, as the paired tool names them: in round r the machine
    ran at a level 1 + r/2 for both sides alike; the side's times are that level times
    ``factor``, with a per-mille of spread so that the rounds have a variance."""
    for r in numbers:
        run_id, rows = f"{name}-{r}", []
        for k, (scenario, setup) in enumerate(CONFIGS):
            for phase in REQUIRED_PHASES:
                median = (1 + r / 2) * factor * (1 + 0.001 * ((7 * r + k) % 5 - 2))
                rows.append(result_row(run_id=run_id, scenario=scenario, optimizer_setup=setup,
                                       phase=phase, n_samples=3, median_ms=median,
                                       ci_low_ms=median * 0.99, ci_high_ms=median * 1.01))
        write_run(folder / f"round-{r:02d}", rows, None, env_record(run_id))
    return folder


def test_rounds_pair_by_number_when_one_is_missing(tmp_path):
    """Round 3 of the candidate is gone: rounds 4 to 6 still pair with the baseline's
    rounds 4 to 6, the ones they ran beside, and round 3 of the baseline is named as left
    out. Paired by position, every later pair would set two machine levels against each
    other, about 10% apart."""
    a = write_numbered_rounds(tmp_path / "a", "a", range(1, 7), 1.0)
    b = write_numbered_rounds(tmp_path / "b", "b", [1, 2, 4, 5, 6], 1.1)
    table = compare_paired(rounds_in(a, None), rounds_in(b, None))
    assert table.attrs["rounds"] == 5 and set(table["verdict"]) == {"regression"}
    assert table["ratio"].to_numpy() == pytest.approx(1.1, rel=0.003)
    proc = run_cli("paired", str(a), str(b), "--out", str(tmp_path / "p.html"))
    assert proc.returncode == 0, proc.stderr
    assert (f"note: {a} has 6 rounds, the other side 5: round 3 of {a} has no partner and "
            "is left out") in proc.stdout
    assert "16 measurements over 5 paired rounds, 16 decided: 16 regression(s)" in proc.stdout
    # the standing the rounds stop on counts the paired rounds, and names the one left out
    proc = run_cli("paired", str(a), str(b), "--decisions", str(tmp_path / "d.json"))
    assert proc.returncode == 0, proc.stderr
    standing = json.loads((tmp_path / "d.json").read_text())
    assert standing["rounds"] == 5 and "round 3 of" in standing["notes"][0]


def test_a_round_folder_without_its_number_is_refused(tmp_path):
    a = write_rounds(tmp_path / "a", "a", 6)
    b = write_rounds(tmp_path / "b", "b", 6, seed=1)
    (b / "round-06").rename(b / "round-six")
    proc = run_cli("paired", str(a), str(b))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert f"{b / 'round-six'} is not a round's folder: rounds are named round-NN" in proc.stderr
    shutil.copytree(b / "round-05", b / "round-5")  # one number, spelled twice
    (b / "round-six").rename(b / "round-06")
    proc = run_cli("paired", str(a), str(b))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "are both round 5; keep the one that ran in that round" in proc.stderr


@pytest.mark.parametrize("kept", [[2], []])
def test_sides_sharing_fewer_than_two_rounds_are_refused(tmp_path, kept):
    """Two rounds on each side but one, or none, in common: a single pair has no spread to
    judge it by (its interval would be NaN); the line names what the sides share."""
    a = write_numbered_rounds(tmp_path / "a", "a", [1, 2], 1.0)
    b = write_numbered_rounds(tmp_path / "b", "b", [*kept, 3], 1.0)
    proc = run_cli("paired", str(a), str(b), "--out", str(tmp_path / "p.html"))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    held = "only round 2" if kept else "no round"
    assert f"error: {a} and {b} have {held} in common: pairing needs at least 2" in proc.stderr
    assert "nan" not in proc.stdout.lower() and not (tmp_path / "p.html").exists()


def paired_here(*argv) -> tuple[int, str, str]:
    """``python -m bench paired ARGV`` in this process: its exit code, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(["paired", *map(str, argv)])
        except SystemExit as stop:  # the parser's refusal ends the process, as argparse does
            code = stop.code
    return code, out.getvalue(), err.getvalue()


def plan_rounds(folder, configs=CONFIGS):
    """Each round's sweep.json, planning ``configs`` once each, as a sweep records it."""
    plan = [result_row(scenario=s, optimizer_setup=o)["config_id"] for s, o in configs]
    for round_ in sorted(folder.glob("round-*")):
        (round_ / SWEEP_FILE).write_text(json.dumps({PLAN_KEY: plan, "sweep": {"repeats": 1}}))


def test_a_round_stopped_part_way_is_named_and_pairs_what_it_measured(tmp_path):
    """Round 4 of the candidate lacks its last configuration (a crash part way through,
    which would recur in every round): said, and what it measured still pairs."""
    a = write_numbered_rounds(tmp_path / "a", "a", range(1, 7), 1.0)
    plan_rounds(a)
    b = write_numbered_rounds(tmp_path / "b", "b", range(1, 7), 1.1)
    plan_rounds(b)
    results = b / "round-04" / RESULTS_FILE
    rows = pd.read_csv(results, dtype=str, keep_default_na=False)
    last = rows["config_id"].iloc[-1]
    rows[rows["config_id"] != last].to_csv(results, index=False)
    code, out, err = paired_here(a, b, "--out", tmp_path / "p.html")
    assert code == 0, err
    assert (f"note: {b} has unfinished rounds, whose measured configurations alone pair: "
            "round 4 (1 of 4 not measured)") in out
    # and every configuration is judged, the one round 4 lacks over the five that hold it
    assert "16 measurements over 6 paired rounds, 16 decided: 16 regression(s)" in out


def test_a_round_of_another_sweep_is_refused(tmp_path):
    a = write_rounds(tmp_path / "a", "a", 6)
    b = write_rounds(tmp_path / "b", "b", 6, seed=1)
    plan_rounds(a)
    plan_rounds(b)
    (b / "round-05" / SWEEP_FILE).write_text(json.dumps(
        {PLAN_KEY: ["another/config"], "sweep": {"repeats": 1}}))
    code, out, err = paired_here(a, b)
    assert code == 2 and err.count("\n") == 1, err
    assert (f"error: {b}: round 5 measured another sweep than round 1 (1 configurations "
            "planned, not 4)") in err


def test_a_round_limited_to_part_of_the_sweep_pairs_and_one_beyond_it_is_refused(tmp_path):
    """From the third round, paired-rounds measures only what is still undecided (`only`):
    such a round plans a part of its side's sweep, and pairs; one whose part is not in the
    sweep at all measured another."""
    a = write_rounds(tmp_path / "a", "a", 6)
    b = write_rounds(tmp_path / "b", "b", 6, seed=1)
    plan_rounds(a)
    plan_rounds(b)
    whole = json.loads((b / "round-01" / SWEEP_FILE).read_text())[PLAN_KEY]
    for side in (a, b):
        for number in (3, 4, 5, 6):
            folder = side / f"round-{number:02d}"
            (folder / SWEEP_FILE).write_text(json.dumps(
                {PLAN_KEY: whole[:1], "sweep": {"repeats": 1, ONLY_KEY: whole[:1]}}))
            rows = pd.read_csv(folder / RESULTS_FILE, dtype=str, keep_default_na=False)
            rows[rows["config_id"] == whole[0]].to_csv(folder / RESULTS_FILE, index=False)
    code, out, err = paired_here(a, b)
    assert code in (0, 1) and err == "", err
    (b / "round-05" / SWEEP_FILE).write_text(json.dumps(
        {PLAN_KEY: ["another/config"], "sweep": {"repeats": 1, ONLY_KEY: ["another/config"]}}))
    code, out, err = paired_here(a, b)
    assert code == 2 and err.count("\n") == 1, err
    assert (f"error: {b}: round 5 measured another sweep than round 1 (1 configurations "
            "planned, not 4)") in err


def test_a_folder_given_twice_or_a_round_named_in_capitals_is_refused(tmp_path):
    a = write_rounds(tmp_path / "a", "a", 6)
    b = write_rounds(tmp_path / "b", "b", 6, seed=1)
    code, _, err = paired_here(a, b, tmp_path / "b" / ".." / "b")
    assert code == 2 and f"is given twice (as {b} before)" in err
    (b / "round-06").rename(b / "Round-06")  # not passed over: it is not a round's name
    code, _, err = paired_here(a, b)
    assert code == 2 and err.count("\n") == 1
    assert f"{b / 'Round-06'} is not a round's folder: rounds are named round-NN" in err


def test_a_round_holding_another_run_s_results_or_a_number_in_other_digits_is_refused(
        tmp_path):
    """Another run's results.csv beside a round's own env.json was paired as that round
    (and called unfinished); round-٦ was read as round 6, as \\d takes any script's digits."""
    a = write_rounds(tmp_path / "a", "a", 6)
    b = write_rounds(tmp_path / "b", "b", 6, seed=1)
    shutil.copy(a / "round-02" / RESULTS_FILE, b / "round-02" / RESULTS_FILE)
    code, _, err = paired_here(a, b)
    assert code == 2 and err.count("\n") == 1, err
    assert (f"{b / 'round-02' / ENV_FILE} is of run 'b-1', not of a-1 ({RESULTS_FILE}'s): "
            "the folder mixes two runs") in err
    shutil.rmtree(b)
    b = write_rounds(tmp_path / "b", "b", 6, seed=1)
    odd = b / "round-\u0666"  # ARABIC-INDIC DIGIT SIX
    (b / "round-06").rename(odd)
    code, _, err = paired_here(a, b)
    assert code == 2 and err.count("\n") == 1
    assert f"{odd} is not a round's folder: rounds are named round-NN" in err


@pytest.mark.parametrize("argv", [["--rounds", "abc"], ["--threshold", "x"], ["--bogus"]])
def test_the_parser_refuses_in_the_same_form_as_every_refusal(tmp_path, argv):
    code, _, err = paired_here(tmp_path, tmp_path, *argv)
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("error: ") and err.rstrip().endswith("--help`)")


def side_by_side_rounds(folder, name, factor, took_turns=True, minutes=(0,) * 6):
    """Six rounds as the paired tool writes them: round r took turns with the seed r (both
    sides alike) and started ``minutes[r - 1]`` minutes into the hour."""
    for r in range(1, 7):
        run_id, rows = f"{name}-{r}", []
        started = f"2026-01-01T00:{minutes[r - 1]:02d}:00+00:00"
        for k, (scenario, setup) in enumerate(CONFIGS):
            for phase in REQUIRED_PHASES:
                median = (1 + r / 2) * factor * (1 + 0.001 * ((7 * r + k) % 5 - 2))
                rows.append(result_row(run_id=run_id, scenario=scenario, optimizer_setup=setup,
                                       phase=phase, n_samples=3, median_ms=median,
                                       ci_low_ms=median * 0.99, ci_high_ms=median * 1.01,
                                       started_at=started))
        turns = {"took_turns": {"groups_order_seed": r}} if took_turns else {}
        write_run(folder / f"round-{r:02d}", rows, None, env_record(run_id, **turns))
    return folder


def test_rounds_that_did_not_run_side_by_side_are_named_and_left_out(tmp_path):
    """Rounds 1 and 2 of the baseline swapped (their seeds then differ from their
    partners'), round 3 of the candidate a run made on its own, round 4 of the candidate
    one of another measurement, 40 minutes later: each is named and left out, and the two
    rounds left pair (a 10% slowdown, every round's level alike on both sides)."""
    a = side_by_side_rounds(tmp_path / "a", "a", 1.0)
    (a / "round-01").rename(a / "round-x")
    (a / "round-02").rename(a / "round-01")
    (a / "round-x").rename(a / "round-02")
    b = side_by_side_rounds(tmp_path / "b", "b", 1.1, minutes=(0, 0, 0, 40, 0, 0))
    alone = side_by_side_rounds(tmp_path / "alone", "alone", 1.1, took_turns=False)
    shutil.rmtree(b / "round-03")
    shutil.copytree(alone / "round-03", b / "round-03")
    code, out, err = paired_here(a, b, "--out", tmp_path / "p.html")
    assert code == 0, err
    assert (f"note: rounds 1 to 4 of {a} and {b} did not run side by side (round 1: their "
            "turns' seeds differ; round 2: their turns' seeds differ; round 3: one of them "
            "took no turns; round 4: they started 40 minutes apart) and are left out") in out
    assert "over 2 paired rounds" in out
