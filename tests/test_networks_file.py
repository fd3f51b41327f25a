"""networks.csv and operators.csv: written by a real sweep, read back by the one reader,
documented in results/README.md, and taken back in part after a crash."""

import pytest

from bench.analyze.reader import load_run, read_networks
from bench.errors import UsageError
from bench.schema import (NETWORK_COLUMNS, NETWORKS_FILE, OPERATOR_COLUMNS, OUTSIDE, RESULTS_FILE,
                          markdown_table)
from bench.sweep.config import load_sweep
from bench.sweep.loop import resume_sweep, run_sweep
from tests.conftest import ROOT, run_cli

TINY = {"warmup_iters": 1, "warmup_s": 0, "min_samples": 2, "budget_s": 0.05, "min_rounds": 2}
GAN_PHASES = ("forward", "backward", "optimizer")


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory):
    """A real sweep: gan at batch 2, two setups timed together, one thread."""
    config = load_sweep(overrides={"scenarios": ["gan"], "batch_sizes": [2], "devices": ["cpu"],
                                   "optimizer_setups": ["separate", "single"], "threads": 1},
                        timing_overrides=TINY)
    out = tmp_path_factory.mktemp("gan") / "run"
    run_sweep(config, out, progress=False)
    return out


def test_every_network_and_phase_of_every_configuration_is_read_back(gan_run):
    run = load_run(gan_run)
    networks = run.networks()
    configs = set(run.results["config_id"])
    assert set(networks["config_id"]) == configs and set(networks["status"]) == {"ok"}
    expected = {(n, p) for n in ("generator", "discriminator", OUTSIDE) for p in GAN_PHASES}
    for config, rows in networks.groupby("config_id"):
        assert set(zip(rows["network"], rows["phase"])) == expected, config
        for phase, cell in rows.groupby("phase"):
            # each phase's shares of its attributed time: the rows' medians over their sum
            assert cell["attributed_ms"].iloc[0] == pytest.approx(cell["median_ms"].sum(),
                                                                  rel=1e-6)
            assert cell["share"].sum() == pytest.approx(1, rel=1e-6)
            assert cell["sum_gap"].nunique() == 1 and cell["sum_gap"].notna().all()
    assert networks.groupby("config_id")["overhead"].nunique().eq(1).all()
    # both networks are trained, so both have gradients; (outside) has no parameters
    trained = networks["network"] != OUTSIDE
    assert (networks.loc[trained, "grad_bytes"] == networks.loc[trained, "param_bytes"]).all()
    assert (networks.loc[~trained, ["param_bytes", "grad_bytes"]] == 0).all().all()


def test_a_cut_last_line_loses_that_configuration_alone_on_resume(gan_run, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    for path in gan_run.iterdir():
        (out / path.name).write_bytes(path.read_bytes())
    text = (out / NETWORKS_FILE).read_text()
    (out / NETWORKS_FILE).write_text(text[:-40])  # a crash in the middle of the last row
    with pytest.raises(UsageError, match="truncated"):
        read_networks(out / NETWORKS_FILE)
    resume_sweep(out, progress=False)
    before = load_run(gan_run).networks()
    after = load_run(out).networks()
    last = before["config_id"].iloc[-1]
    assert set(after["config_id"]) == set(before["config_id"]) - {last}
    assert len(after) == len(before[before["config_id"] != last])
    assert len(load_run(out).results) == len(load_run(gan_run).results)


def test_a_damaged_row_is_refused_in_one_line(gan_run, tmp_path):
    lines = (gan_run / NETWORKS_FILE).read_text().splitlines(keepends=True)
    header = lines[0].rstrip("\n").split(",")
    cells = lines[2].rstrip("\n").split(",")
    cells[header.index("median_ms")] = ""
    path = tmp_path / NETWORKS_FILE
    path.write_text("".join([lines[0], lines[1], ",".join(cells) + "\n"]))
    with pytest.raises(UsageError, match=r"line 3 has empty cells"):
        read_networks(path)


def test_results_readme_documents_both_files():
    readme = (ROOT / "results" / "README.md").read_text()
    assert markdown_table(NETWORK_COLUMNS) in readme
    assert markdown_table(OPERATOR_COLUMNS) in readme
    assert f"`{NETWORKS_FILE}`" in readme and RESULTS_FILE in readme


@pytest.mark.slow
def test_no_attribution_time_is_no_attribution_pass_and_the_run_reads_and_reports(tmp_path):
    config = load_sweep(overrides={"scenarios": ["gan"], "batch_sizes": [2], "devices": ["cpu"],
                                   "optimizer_setups": ["separate", "single"], "threads": 1},
                        timing_overrides={**TINY, "attribution_s": 0})
    out = tmp_path / "run"
    run_sweep(config, out, progress=False)
    run = load_run(out)
    assert set(run.results["status"]) == {"ok"} and len(run.results) == 2 * 4
    assert run.networks().empty  # no configuration was split by network
    from bench.present.report_page import write_report
    page = write_report([run], tmp_path / "report.html").read_text()
    assert "gan" in page
    # the attribution check has nothing to check there, and says so in a line
    from tests.support.refusals import refused_in_one_line
    refused_in_one_line(run_cli("attribution-check", str(out)),
                        "has no network attribution rows: it was measured with "
                        "--attribution-s 0")


def test_paired_rounds_skip_the_attribution_pass_unless_their_sweep_asks_for_one(tmp_path):
    from bench.tools.paired import Environment, round_command
    env = Environment("a", "/usr/bin/python3")
    command, _ = round_command(env, tmp_path / "round-01", ["--batch-sizes", "1"])
    at = command.index("--attribution-s")
    assert command[at + 1] == "0" and command.index("--batch-sizes") > at
    # the user's own, later on the command line, is the one argparse keeps
    command, _ = round_command(env, tmp_path / "round-01", ["--attribution-s", "0.5"])
    assert [a for a in command if a in ("0", "0.5")][-1] == "0.5"
