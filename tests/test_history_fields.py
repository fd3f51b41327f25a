"""Every field the history store keeps, against what the run folder says, worked out apart:
the run's own row field by field (its fingerprint recomputed from the files), every column
of every results row and every sample, and the dashboard's points over repeats whose
medians and intervals disagree. Each test runs against DuckDB and PostgreSQL."""

import datetime as dt
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from bench.analyze.reader import load_run
from bench.history.add import add_run
from bench.history.dashboard import read_points
from bench.history.store import StoreError, open_store
from bench.history.store_schema import RUN_COLUMNS
from bench.schema import COLUMNS, SCHEMA_VERSION
from tests.support.synthetic import env_record, result_row, write_run

ENV = env_record("run-h", started_at="2026-02-03T04:05:06+00:00", hostname="node-7",
                 torch_version="2.14.1+cu128", cuda_version="12.8", nvidia_driver="570.1",
                 project={"commit": "0123abc", "dirty": True})


def a_run(folder, env=ENV, repeats=((1, 2.0, 1.9, 2.1),)):
    """Two devices' rows of one run; ``repeats``: (repeat, median, ci_low, ci_high) of the
    step of the first, with its other figures apart per repeat."""
    rows = []
    for repeat, median, low, high in repeats:
        rows += [result_row(run_id="run-h", repeat=repeat, device="cuda:0", device_name="GPU B",
                            phase=phase, median_ms=median * share, ci_low_ms=low * share,
                            ci_high_ms=high * share, iqr_ms=0.1 * repeat, n_samples=5,
                            started_at=f"2026-02-03T0{repeat}:00:00+00:00",
                            hostname="node-7", torch_version="2.14.1+cu128")
                 for phase, share in (("forward", 0.4), ("step", 1.0))]
    rows.append(result_row(run_id="run-h", device="cuda:1", device_name="GPU A", batch_size=8,
                           median_ms=7.5, started_at="2026-02-03T00:30:00+00:00",
                           hostname="node-7", torch_version="2.14.1+cu128"))
    samples = {(rows[0]["config_id"], "forward", 1): [0.7, 0.8, 0.81, 0.79, 3.0]}
    return write_run(folder, rows, samples, env=env)


def stored_run(url, folder) -> dict:
    with open_store(url, write=True) as store:
        add_run(store, folder)
        frame = store.frame("SELECT * FROM runs")
    assert len(frame) == 1
    return frame.iloc[0].to_dict()


def test_the_run_s_row_is_what_its_environment_says(tmp_path, store_url):
    folder = a_run(tmp_path / "run")
    before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    row = stored_run(store_url, folder)
    added = dt.datetime.fromisoformat(row["added_at"])
    assert before <= added <= dt.datetime.now(dt.timezone.utc)
    # the fingerprint is of the contents: the same rows in another order are the same run,
    # one sample changed is another
    assert len(row["fingerprint"]) == 64
    shuffled = tmp_path / "shuffled"
    shutil.copytree(folder, shuffled)
    header, *lines = (folder / "results.csv").read_text().splitlines(keepends=True)
    (shuffled / "results.csv").write_text(header + "".join(reversed(lines)))
    assert stored_run(str(tmp_path / "s.duckdb"), shuffled)["fingerprint"] == row["fingerprint"]
    changed = tmp_path / "changed"
    shutil.copytree(folder, changed)
    header, first, *rest = (folder / "samples.csv").read_text().splitlines(keepends=True)
    cells = first.split(",")
    cells[-2] = str(float(cells[-2]) * 2)  # one sample's device_ms
    (changed / "samples.csv").write_text(header + ",".join(cells) + "".join(rest))
    assert stored_run(str(tmp_path / "c.duckdb"), changed)["fingerprint"] != row["fingerprint"]
    # and the environment is part of the contents: one field of env.json changed (unsealed,
    # as a folder without sweep.json, an older run's, holds it) is another run
    other_env = tmp_path / "other-env"
    shutil.copytree(folder, other_env)
    env = json.loads((folder / "env.json").read_text())
    env.pop("digest", None)
    (other_env / "env.json").write_text(json.dumps({**env, "nvidia_driver": "999.9"}))
    assert stored_run(str(tmp_path / "e.duckdb"), other_env)["fingerprint"] != row["fingerprint"]
    assert {k: row[k] for k, _ in RUN_COLUMNS if k not in ("added_at", "fingerprint")} == {
        "run_id": "run-h",
        "started_at": "2026-02-03T04:05:06+00:00", "hostname": "node-7", "machine": "node-7",
        "device_name": "GPU A, GPU B", "torch_version": "2.14.1+cu128", "cuda_version": "12.8",
        "nvidia_driver": "570.1", "project_commit": "0123abc+dirty",
        "results_schema_version": SCHEMA_VERSION,
        "env_json": json.dumps(ENV, sort_keys=True)}


def test_what_env_json_lacks_comes_from_the_rows_or_stays_empty(tmp_path, store_url):
    env = {k: v for k, v in ENV.items() if k not in ("started_at", "torch_version", "project")}
    env["cuda_version"] = {"unavailable": "no CUDA"}  # a field that could not be read
    row = stored_run(store_url, a_run(tmp_path / "run", env=env,
                                      repeats=((1, 2.0, 1.9, 2.1), (2, 2.2, 2.0, 2.4))))
    # the earliest row's start (repeat 1's device rows start at 01:00, the other at 00:30)
    assert row["started_at"] == "2026-02-03T00:30:00+00:00"
    assert row["torch_version"] == "2.14.1+cu128"
    assert row["cuda_version"] is None and row["project_commit"] is None


def test_a_run_changed_in_env_json_alone_is_another_run(tmp_path):
    url = str(tmp_path / "h.duckdb")
    stored_run(url, a_run(tmp_path / "one"))
    edited = a_run(tmp_path / "two", env={**ENV, "nvidia_driver": "999.9"})
    with open_store(url, write=True) as store, \
            pytest.raises(StoreError, match="other contents"):
        add_run(store, edited)


def test_every_column_of_every_row_and_every_sample_reads_back(tmp_path, store_url):
    folder = a_run(tmp_path / "run", repeats=((1, 2.0, 1.9, 2.1), (2, 2.2, 2.0, 2.4)))
    run = load_run(folder)
    with open_store(store_url, write=True) as store:
        add_run(store, folder)
        results = store.frame("SELECT * FROM results")
        samples = store.frame("SELECT * FROM samples")
    key = ["repeat", "config_id", "phase"]
    written = run.results.sort_values(key).reset_index(drop=True)
    results = results.sort_values(key).reset_index(drop=True)
    for column in COLUMNS:
        a, b = written[column.name], results[column.name]
        if column.kind == "float":
            assert np.allclose(a.astype(float), b.astype(float), equal_nan=True), column.name
        else:
            assert [str(x) if pd.notna(x) and x != "" else "" for x in a] == \
                [str(x) if pd.notna(x) and x != "" else "" for x in b], column.name
    on_disk = run.samples().sort_values(["repeat", "config_id", "phase", "iteration"])
    samples = samples.sort_values(["repeat", "config_id", "phase", "iteration"])
    assert len(samples) == len(on_disk) == 2 * (5 + 5) + 20
    assert samples["device_ms"].tolist() == pytest.approx(on_disk["device_ms"].tolist())
    forward = samples[(samples["phase"] == "forward") & (samples["repeat"] == 1)
                      & (samples["config_id"] == written["config_id"].iloc[0])]
    assert forward["device_ms"].tolist() == pytest.approx([0.7, 0.8, 0.81, 0.79, 3.0])


def test_the_dashboard_takes_the_median_of_repeats_and_the_widest_interval(tmp_path):
    """Three repeats of a step at 2.0, 3.0 and 4.5 ms (mean 3.17), intervals that do not
    nest: the point is their median, 3.0, within the lowest low and the highest high."""
    url = str(tmp_path / "h.duckdb")
    stored_run(url, a_run(tmp_path / "run", repeats=(
        (1, 2.0, 1.9, 2.6), (2, 3.0, 2.2, 3.1), (3, 4.5, 4.4, 4.6))))
    with open_store(url) as store:
        points, configs = read_points(store)
    step = points[(points["phase"] == "step") & (points["device_name"] == "GPU B")]
    assert len(step) == 1
    assert step[["repeats", "median_ms", "ci_low_ms", "ci_high_ms"]].iloc[0].tolist() == \
        pytest.approx([3, 3.0, 1.9, 4.6])
    forward = points[(points["phase"] == "forward") & (points["device_name"] == "GPU B")]
    assert forward["median_ms"].tolist() == pytest.approx([0.4 * 3.0])
    assert len(configs) == 2  # the two devices' configurations, once each
