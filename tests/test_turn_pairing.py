"""The turn-pairing check reads how alike the two sides' blocks are: worked out by hand on
rounds whose blocks move together, against each other, and not at all."""

import math

import pandas as pd
import pytest

from bench.selfcheck.turn_pairing import main, pairing


def write_round(folder, blocks_ms: dict[str, list[list[float]]]) -> None:
    """samples.csv of one round: per configuration, per block, its step samples (a forward
    row beside each, which the check must leave out)."""
    folder.mkdir(parents=True)
    rows = []
    for config, blocks in blocks_ms.items():
        for block, samples in enumerate(blocks, 1):
            for i, ms in enumerate(samples):
                rows.append({"run_id": "r", "repeat": 1, "config_id": config, "phase": "step",
                             "iteration": i, "block": block, "device_ms": ms, "host_ms": ms})
                rows.append({**rows[-1], "phase": "forward", "device_ms": 99.0})
    pd.DataFrame(rows).to_csv(folder / "samples.csv", index=False)


def test_blocks_that_move_together_against_each_other_and_apart(tmp_path):
    # block medians 1, 2, 4 ms: logs about their mean -ln2, 0, +ln2
    a = {"x": [[1.0, 1.0, 1.0], [2.0], [4.0, 4.0]]}
    write_round(tmp_path / "same" / "a" / "round-01", a)
    write_round(tmp_path / "same" / "b" / "round-01", {"x": [[2.0], [4.0], [8.0]]})
    figures = pairing(tmp_path / "same")
    assert figures["correlation"] == pytest.approx(1.0)
    assert figures["paired_sd"] == pytest.approx(0.0, abs=1e-12)
    assert figures["block_sd_a"] == pytest.approx(math.log(2))  # sd of (-ln2, 0, ln2)
    assert figures["one_iteration_blocks"] == pytest.approx(1 / 3)
    assert (figures["rounds"], figures["blocks"]) == (1, 3)

    write_round(tmp_path / "opposite" / "a" / "round-01", a)
    write_round(tmp_path / "opposite" / "b" / "round-01", {"x": [[4.0], [2.0], [1.0]]})
    figures = pairing(tmp_path / "opposite")
    assert figures["correlation"] == pytest.approx(-1.0)
    assert figures["paired_sd"] == pytest.approx(2 * math.log(2))  # (2 ln2, 0, -2 ln2)

    # a second configuration moving in A only: its blocks (1, 1, 1 ms in B) add nothing
    # to B's spread, and the deviations pair by configuration and block
    two = {**a, "y": [[3.0], [6.0], [12.0]]}
    write_round(tmp_path / "half" / "a" / "round-01", two)
    write_round(tmp_path / "half" / "b" / "round-01", {"x": [[2.0], [4.0], [8.0]],
                                                       "y": [[1.0], [1.0], [1.0]]})
    figures = pairing(tmp_path / "half")
    assert figures["blocks"] == 6
    # A: (-l, 0, l) twice; B: (-l, 0, l) then zeros; l = ln 2
    assert figures["correlation"] == pytest.approx(math.sqrt(0.5))


def test_a_folder_without_two_sides_is_refused(tmp_path, capsys):
    write_round(tmp_path / "only" / "a" / "round-01", {"x": [[1.0]]})
    with pytest.raises(SystemExit, match="holds 1 folders, not two sides"):
        main([str(tmp_path / "only")])
