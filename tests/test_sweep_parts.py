"""Sweeps with parts (the top level's product, then each part's), the CUDA default sweep, and
the real workloads run end to end on the CPU."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from bench.errors import UsageError
from bench.schema import REQUIRED_PHASES, TARGET
from bench.sweep import config as sweep_config
from bench.sweep.config import (DEFAULT_CUDA_SWEEP, DEFAULT_SWEEP, default_sweep, expand_all,
                                load_sweep, sweep_from_mapping, sweep_to_mapping)
from tests.conftest import ROOT

PARTS = """
scenarios = ["sequential"]
sizes = ["seed"]
batch_sizes = [1, 8]
devices = ["cpu"]
optimizer_setups = ["separate", "single"]
optimizers = ["adam"]
optimizer_impls = ["auto"]

[[parts]]
scenarios = ["sac", "dcgan"]
sizes = ["tiny"]
batch_sizes = [4]
"""
FAST = ["--warmup-iters", "1", "--warmup-s", "0", "--min-samples", "4", "--min-rounds", "6",
        "--budget-s", "0.05"]


def write(tmp_path, text):
    path = tmp_path / "sweep.toml"
    path.write_text(text)
    return path


def test_a_sweep_is_its_top_level_then_each_part(tmp_path):
    config = load_sweep(write(tmp_path, PARTS))
    runnable, skipped = expand_all(config)
    # 1 scenario x 2 batches x 2 setups, then 2 scenarios x 1 batch x 2 setups
    assert skipped == [] and len(runnable) == 4 + 4
    assert {(s.scenario, s.size, s.batch_size) for s in runnable} == {
        ("sequential", "seed", 1), ("sequential", "seed", 8), ("sac", "tiny", 4),
        ("dcgan", "tiny", 4)}


def test_the_command_line_replaces_an_axis_in_every_part(tmp_path):
    config = load_sweep(write(tmp_path, PARTS), {"batch_sizes": [2]})
    runnable, _ = expand_all(config)
    assert {s.batch_size for s in runnable} == {2} and len(runnable) == 2 + 4


def test_parts_survive_the_round_trip_through_sweep_json(tmp_path):
    config = load_sweep(write(tmp_path, PARTS))
    again = sweep_from_mapping(sweep_to_mapping(config), "sweep.json")
    assert again == config and expand_all(again) == expand_all(config)


@pytest.mark.parametrize("text, message", [
    (PARTS + "colour = 1\n", "part 1: unknown key 'colour'; a part holds axes: scenarios"),
    (PARTS.split("[[parts]]")[0] + "parts = 3\n", "'parts' must be a list of tables"),
    (PARTS.replace('sizes = ["tiny"]', 'sizes = ["huge"]'), "part 1: unknown size 'huge'"),
    (PARTS.replace('batch_sizes = [4]', 'batch_sizes = []'), "part 1: 'batch_sizes' is empty"),
])
def test_bad_parts_are_named(tmp_path, text, message):
    with pytest.raises(UsageError, match=message):
        load_sweep(write(tmp_path, text))


def test_a_size_a_scenario_lacks_is_skipped_with_the_reason(tmp_path):
    config = load_sweep(write(tmp_path, PARTS.replace('sizes = ["tiny"]', 'sizes = ["seed"]')))
    runnable, skipped = expand_all(config)
    assert len(runnable) == 4
    assert {reason for _, reason in skipped} == {
        "scenario 'sac' has sizes tiny, published, tiny-redq, published-redq, not 'seed'",
        "scenario 'dcgan' has sizes tiny, published, not 'seed'"}


def test_the_default_sweep_follows_the_devices(monkeypatch):
    assert default_sweep(None) == DEFAULT_SWEEP  # this machine has no GPU
    assert default_sweep(["cpu"]) == DEFAULT_SWEEP
    # where `auto` finds a GPU (faked: there is none here), the CUDA sweep
    monkeypatch.setattr(sweep_config, "resolve_devices", lambda devices: ["cuda:0"])
    assert default_sweep(None) == DEFAULT_CUDA_SWEEP


def test_the_cuda_default_adds_the_workloads_at_their_published_sizes():
    config = load_sweep(DEFAULT_CUDA_SWEEP, {"devices": ["cpu"]})
    runnable, skipped = expand_all(config)
    assert skipped == []
    by_scenario = {}
    for spec in runnable:
        by_scenario.setdefault(spec.scenario, set()).add((spec.size, spec.batch_size))
    assert by_scenario == {
        **{s: {("seed", 1), ("seed", 32), ("seed", 128)}
           for s in ("sequential", "shared_input", "separate_losses")},
        "dcgan": {("published", 128)}, "cyclegan": {("published", 4)},
        "sac": {("published", 256)}, "clip": {("published", 128)},
        "distill": {("published", 128)}}
    # and the CPU's default is the article's alone, as before
    assert {s.scenario for s in expand_all(load_sweep(DEFAULT_SWEEP))[0]} == {
        "sequential", "shared_input", "separate_losses"}


@pytest.mark.slow
def test_the_five_workloads_run_at_tiny_size_on_the_cpu(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "run", "--scenarios", "dcgan,cyclegan,sac,clip,distill",
         "--devices", "cpu", "--sizes", "tiny", "--batch-sizes", "4", "--out-dir", str(out),
         *FAST], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    rows = pd.read_csv(out / "results.csv")
    assert set(rows["status"]) == {"ok"}
    assert set(rows["scenario"]) == {"dcgan", "cyclegan", "sac", "clip", "distill"}
    assert len(rows) == 5 * 3 * len(REQUIRED_PHASES) + 3  # and SAC's target rows, one a setup
    target = rows[rows["phase"] == TARGET]
    assert set(target["scenario"]) == {"sac"} and (target["median_ms"] > 0).all()
