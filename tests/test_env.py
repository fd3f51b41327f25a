import json

from bench.measure.environment_capture import capture_environment, field
from bench.schema import SCHEMA_VERSION


def test_environment_fields():
    env = capture_environment("rid", ["run", "--devices", "cpu"])
    assert env["schema_version"] == SCHEMA_VERSION and env["run_id"] == "rid"
    assert env["torch_version"].startswith("2.")
    assert env["command_line"].endswith("run --devices cpu")
    assert isinstance(env["threads"], int) and env["threads"] >= 1
    assert set(env["project"]) == {"commit", "dirty"} or "unavailable" in env["project"]
    assert env["packages"]["torch"]
    json.dumps(env)  # everything is serialisable


def test_a_field_that_cannot_be_read_is_recorded_not_raised():
    assert field(lambda: 1 / 0) == {"unavailable": "ZeroDivisionError: division by zero"}
