"""Why a field of env.json was not recorded, said in words: by the collector on this machine
(a folder that is not a git checkout, no NVIDIA driver), for the raw exceptions older runs
recorded, and in the Environment section of a report."""

import ctypes.util
import json
import subprocess

import pytest

from bench.measure import environment_capture
from bench.measure.environment_capture import capture_environment, field, project_commit
from bench.measure.nvml import nvml_session
from bench.measure.unavailable import (NO_COMMIT, NO_DRIVER, NOT_A_CHECKOUT, OLD_GIT_128,
                                       reason_of, unavailable_in_words)
from bench.present.environment_section import (differing_fields, env_table, environment_sentence,
                                               unreadable_fields)
from bench.present.labels import env_value, flatten_env
from bench.present.page import Section, Table, render_page
from tests.conftest import ROOT

RAW = ("CalledProcessError", "NVMLError_", "FileNotFoundError")
# what the collector recorded before it said why in words (the first as this project's
# report showed it; the NVML one as results/reference/*/env.json hold it)
OLD_GIT = ("CalledProcessError: Command '['git', 'rev-parse', 'HEAD']' returned non-zero exit "
           "status 128.")
OLD_NVML = "NVMLError_LibraryNotFound: NVML Shared Library Not Found"
REFERENCE_ENVS = sorted((ROOT / "results" / "reference").rglob("env.json"))


def old_text(exc: BaseException) -> str:
    """The text the collector recorded for ``exc`` before it said why in words."""
    return f"{type(exc).__name__}: {exc}".strip()


def raised_by(read) -> BaseException:
    try:
        read()
    except Exception as exc:
        return exc
    raise AssertionError("nothing was raised")


def no_nvidia_library() -> bool:
    nvml, _ = nvml_session()
    return nvml is None and ctypes.util.find_library("nvidia-ml") is None


def test_the_collector_says_in_words_that_a_folder_is_not_a_git_checkout(tmp_path,
                                                                          monkeypatch):
    # git runs in the project root
    monkeypatch.setattr(environment_capture, "PROJECT_ROOT", tmp_path)
    env = capture_environment("rid", ["run", "--devices", "cpu"])
    assert env["project"] == {"unavailable": "not a git checkout"}
    text = json.dumps(env)
    assert not any(raw in text for raw in RAW), text
    assert flatten_env(env)["project"] == "not recorded: not a git checkout"


@pytest.mark.skipif(not no_nvidia_library(), reason="an NVIDIA driver library is present")
def test_the_collector_says_in_words_that_there_is_no_nvidia_driver():
    pytest.importorskip("pynvml")
    env = capture_environment("rid", ["run", "--devices", "cpu"])
    assert env["nvidia_driver"] == {"unavailable": "no NVIDIA driver (NVML library not found)"}
    assert nvml_session() == (None, "no NVIDIA driver (NVML library not found)")
    assert flatten_env(env)["nvidia_driver"] == (
        "not recorded: no NVIDIA driver (NVML library not found)")
    assert "NVMLError_" not in json.dumps(env)


def test_without_git_the_collector_says_git_is_not_installed(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no git to be found
    assert field(project_commit) == {"unavailable": "git is not installed"}


def test_git_failures_are_worded_from_git_s_own_message(tmp_path):
    def rev_parse():
        subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True,
                       text=True, check=True)

    outside = raised_by(rev_parse)
    assert old_text(outside) == OLD_GIT  # the very text the old collector recorded
    assert reason_of(outside) == NOT_A_CHECKOUT == "not a git checkout"
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    assert reason_of(raised_by(rev_parse)) == NO_COMMIT == "the git checkout has no commit yet"
    # a cause no case matches keeps its type and first line
    assert reason_of(ZeroDivisionError("division by zero")) == (
        "ZeroDivisionError: division by zero")
    assert reason_of(ValueError("x" * 500)) == "ValueError: " + "x" * 147 + "…"


def test_nvml_errors_are_worded_by_their_kind():
    pynvml = pytest.importorskip("pynvml")
    assert reason_of(pynvml.NVMLError_LibraryNotFound()) == NO_DRIVER
    assert reason_of(pynvml.NVMLError_DriverNotLoaded()) == "the NVIDIA driver is not loaded"
    assert reason_of(pynvml.NVMLError_NoPermission()) == (
        "no permission to query the NVIDIA driver")
    assert reason_of(pynvml.NVMLError_Unknown()) == "NVML error: Unknown Error"
    assert reason_of(ModuleNotFoundError("No module named 'pynvml'", name="pynvml")) == (
        "nvidia-ml-py is not installed")


def test_old_raw_texts_read_back_in_the_same_words(tmp_path, monkeypatch):
    assert unavailable_in_words(OLD_GIT) == OLD_GIT_128
    assert unavailable_in_words(OLD_NVML) == "no NVIDIA driver (NVML library not found)"
    assert unavailable_in_words("NVMLError_DriverNotLoaded: Driver Not Loaded") == (
        "the NVIDIA driver is not loaded")
    assert unavailable_in_words("NVMLError_NoPermission: Insufficient Permissions") == (
        "no permission to query the NVIDIA driver")
    assert unavailable_in_words("NVMLError_Unknown: Unknown Error") == (
        "NVML error: Unknown Error")
    assert unavailable_in_words(
        "CalledProcessError: Command '['git', 'status', '--porcelain', '--untracked-files=no']"
        "' returned non-zero exit status 1.") == "git failed: exit status 1"
    assert unavailable_in_words("ModuleNotFoundError: No module named 'pynvml'") == (
        "nvidia-ml-py is not installed")
    monkeypatch.setenv("PATH", str(tmp_path))
    missing = raised_by(lambda: subprocess.run(["git", "rev-parse", "HEAD"], check=True))
    assert old_text(missing) == "FileNotFoundError: [Errno 2] No such file or directory: 'git'"
    assert unavailable_in_words(old_text(missing)) == "git is not installed"
    # texts already in words, and any other, stay as they are
    for text in ("not a git checkout", NO_DRIVER, "no NVML", "ZeroDivisionError: division by "
                 "zero", "no env.json in the run folder"):
        assert unavailable_in_words(text) == text
    assert env_value({"unavailable": OLD_GIT}) == f"not recorded: {OLD_GIT_128}"


@pytest.mark.parametrize("path", REFERENCE_ENVS, ids=lambda p: str(p.relative_to(ROOT)))
def test_reference_runs_show_no_raw_exception(path):
    env = json.loads(path.read_text())
    raw = json.dumps(env)
    cells = " ".join(flatten_env(env).values())
    assert not any(r in cells for r in RAW), cells
    if OLD_NVML in raw:  # the CPU references were recorded without a driver
        assert flatten_env(env)["nvidia_driver"] == (
            "not recorded: no NVIDIA driver (NVML library not found)")


def test_the_reference_files_hold_the_old_nvml_text_or_the_words():
    # OLD_NVML above is what the files really hold; a reference recorded again holds words
    drivers = [json.loads(p.read_text())["nvidia_driver"] for p in REFERENCE_ENVS]
    texts = {d["unavailable"] for d in drivers if isinstance(d, dict)}
    assert texts and texts <= {OLD_NVML, NO_DRIVER}


RUN_A = {"run_id": "a", "started_at": "2026-01-01T00:00:00+00:00", "command_line": "bench run",
         "torch_version": "2.12.0", "gpus": [], "project": {"unavailable": OLD_GIT},
         "nvidia_driver": {"unavailable": OLD_NVML}, "threads": 4}
RUN_B = {"run_id": "b", "started_at": "2026-01-02T00:00:00+00:00",
         "command_line": "bench run --devices cuda", "torch_version": "2.13.0",
         "gpus": [{"name": "NVIDIA H100", "memory_mib": 81079, "capability": "9.0"}],
         "project": {"commit": "abc123", "dirty": False},
         "nvidia_driver": {"unavailable": "no NVIDIA driver (NVML library not found)"},
         "threads": 4}


def test_the_sentence_names_what_differs_and_what_was_not_recorded():
    envs = {"run-a": RUN_A, "run-b": RUN_B}
    # run ids, times and command lines differ by construction; the driver's old raw text
    # and the new words say the same, so it does not differ; project is unavailable on a
    # and its commit and dirty flag are missing there
    assert differing_fields(envs) == ["torch_version", "gpus", "project", "project.commit",
                                      "project.dirty"]
    assert unreadable_fields(envs) == [
        ("project", OLD_GIT_128, ["run-a"]),
        ("nvidia_driver", "no NVIDIA driver (NVML library not found)", ["run-a", "run-b"])]
    assert environment_sentence(envs) == (
        "The runs differ in: torch_version, gpus, project, project.commit, project.dirty. "
        f"Not recorded: project on run-a — {OLD_GIT_128}; nvidia_driver on run-a, run-b"
        " — no NVIDIA driver (NVML library not found).")


def test_one_run_has_no_difference_to_name():
    assert differing_fields({"run-a": RUN_A}) == []
    assert environment_sentence({"run-a": RUN_A}) == (
        f"Not recorded: project on run-a — {OLD_GIT_128}; nvidia_driver on run-a — "
        "no NVIDIA driver (NVML library not found).")
    clean = {k: v for k, v in RUN_B.items() if k != "nvidia_driver"}
    blocks = env_table({"run-b": clean})
    assert len(blocks) == 1 and isinstance(blocks[0], Table)
    assert environment_sentence({"x": clean, "y": {**clean, "run_id": "y"}}) == (
        "The runs agree on every field (run ids, start times and command lines aside).")


def test_the_table_lists_the_differing_fields_first():
    sentence, table = env_table({"run-a": RUN_A, "run-b": RUN_B})
    assert sentence.startswith("The runs differ in: torch_version, gpus")
    assert table.header == ["field", "run-a", "run-b"]
    assert [row[0] for row in table.rows] == [
        "torch_version", "gpus", "project", "project.commit", "project.dirty",
        "run_id", "started_at", "command_line", "nvidia_driver", "threads"]
    assert list(table.row_classes) == ["differs"] * 5 + [""] * 5
    assert table.rows[1] == ["gpus", "none", "NVIDIA H100 (81079 MiB, cc 9.0)"]
    assert table.rows[2] == ["project", f"not recorded: {OLD_GIT_128}", "-"]
    assert table.rows[8] == ["nvidia_driver"] + [
        "not recorded: no NVIDIA driver (NVML library not found)"] * 2


def test_a_run_without_env_json_is_named_not_compared():
    envs = {"run-a": RUN_A, "run-b": RUN_B,
            "run-c": {"unavailable": "no env.json in the run folder"}}
    assert differing_fields(envs) == differing_fields({"run-a": RUN_A, "run-b": RUN_B})
    assert ("environment", "no env.json in the run folder", ["run-c"]) in unreadable_fields(envs)
    _, table = env_table(envs)
    assert ["environment", "-", "-", "not recorded: no env.json in the run folder"] in table.rows


def test_the_rendered_section_holds_the_words_and_no_raw_exception():
    html = render_page("env", [Section("Environment",
                                       env_table({"run-a": RUN_A, "run-b": RUN_B}))])
    assert f"not recorded: {OLD_GIT_128}" in html
    assert f"Not recorded: project on run-a — {OLD_GIT_128}" in html
    assert '<tr class="differs"><td>torch_version</td>' in html
    assert not any(raw in html for raw in RAW)
