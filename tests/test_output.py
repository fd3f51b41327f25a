"""Safe output: one folder per run, whole-file JSON writes."""

import datetime as dt
import json
import os

import pytest

from bench.atomic import write_json_atomic
from bench.sweep.folder import new_run_id


def test_runs_started_in_the_same_second_get_different_ids():
    now = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    ids = {new_run_id("host", now) for _ in range(1000)}
    assert len(ids) == 1000
    assert all(run_id.startswith("20260102-030405-host-") for run_id in ids)


def test_a_json_write_that_fails_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "env.json"
    write_json_atomic(path, {"run_id": "a"})

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError):
        write_json_atomic(path, {"run_id": "b"})
    assert json.loads(path.read_text()) == {"run_id": "a"}
