"""A store's password never shows where it was not meant to go: an argument a command
refuses (a URL given to the wrong option, or where a folder goes, which a path makes
`postgresql:/...`), and the record of what paired rounds measure. Real subprocesses; no
server is needed, since nothing gets as far as connecting."""

from __future__ import annotations

import json
import sys

import pytest

from bench.measure.environment_capture import settings
from bench.present.labels import flatten_env
from bench.secrets import hide, hide_all, hide_variable
from tests.conftest import ROOT, run_cli
from tests.support.refusals import refused_in_one_line

URL = "postgresql://bench:SECRETPW@localhost:1/db"


@pytest.mark.parametrize("argv", [
    ("run", "--store", URL),  # an option run does not have
    pytest.param(("submit", "--store", URL), marks=pytest.mark.slow),
    pytest.param(("compare", str(ROOT), str(ROOT), "--threshold", URL),  # a value it refuses
                 marks=pytest.mark.slow),
    ("history", "add", URL),  # a run folder's place: a path, whose // becomes /
    pytest.param(("history", "changes", "--store", "x.duckdb", "--config", URL, "--phase", URL),
                 marks=pytest.mark.slow),
])
def test_a_refused_argument_holding_a_url_never_shows_its_password(argv):
    stderr = refused_in_one_line(run_cli(*argv))
    assert "SECRETPW" not in stderr and "***" in stderr, stderr


@pytest.mark.parametrize("command", ["paired-rounds", pytest.param("bisect",
                                                                  marks=pytest.mark.slow)])
def test_a_password_set_for_an_environment_never_shows_in_the_refusal(command):
    """``--set ENV:PGPASSWORD=...`` for an environment not given is refused by naming it,
    the value masked as rounds.json masks it."""
    stderr = refused_in_one_line(run_cli(command, "--env", f"a={sys.executable}", "--env",
                                         f"b={sys.executable}", "--set",
                                         "c:PGPASSWORD=Leak3dSecret"))
    assert "Leak3dSecret" not in stderr
    assert "--set 'c:PGPASSWORD=***': no environment 'c'; given: a, b" in stderr, stderr


@pytest.mark.parametrize("setting, said", [
    # mistyped, the value still follows the password's name
    ("b:PGPASSWORD:Leak4dSecret", "--set 'b:***': expected NAME:VAR=VALUE"),
    ("PGPASSWORD Leak4dSecret", "--set '***': expected NAME:VAR=VALUE"),
    ("b:x y", "--set 'b:x y': expected NAME:VAR=VALUE"),  # nothing secret: shown as given
    # a name with a space was set, and never read by libpq
    ("b: PGPASSWORD=Leak4dSecret", "--set 'b: PGPASSWORD=***': ' PGPASSWORD' is not a "
     "variable's name (letters, digits and '_', not starting with a digit)"),
])
def test_a_mistyped_setting_is_refused_without_its_password(setting, said):
    stderr = refused_in_one_line(run_cli("paired-rounds", "--env", f"a={sys.executable}",
                                         "--env", f"b={sys.executable}", "--set", setting))
    assert "Leak4dSecret" not in stderr and said in stderr, stderr


def test_a_password_variable_set_in_any_text_is_masked_and_other_variables_are_not():
    assert hide("--set 'c:PGPASSWORD=Leak3dSecret': no environment") == \
        "--set 'c:PGPASSWORD=***': no environment"
    assert hide('env DB_PASS=abc MY_PASSWD = "x" OMP_NUM_THREADS=1') == \
        'env DB_PASS=*** MY_PASSWD = *** OMP_NUM_THREADS=1'
    assert hide("passenger=2 user=alice") == "passenger=2 user=alice"


def test_a_store_s_url_given_as_the_run_folder_is_refused_masked(tmp_path):
    proc = run_cli("run", "--scenarios", "sequential", "--out-dir", URL, cwd=tmp_path)
    said = refused_in_one_line(proc, "is a URL, not a folder; a store's URL goes to --history")
    assert "SECRETPW" not in said and list(tmp_path.iterdir()) == []


def test_variables_named_as_secrets_are_recorded_masked(monkeypatch):
    """env.json's settings: what a run was measured under, never a password it was given."""
    monkeypatch.setenv("TORCH_DB_PASSWORD", "sekret88")
    monkeypatch.setenv("MULTINET_STORE", "postgresql://u:sekret99@h/db")
    monkeypatch.setenv("NVIDIA_API_TOKEN", "sekret77")
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    recorded = settings()
    assert recorded["TORCH_DB_PASSWORD"] == "***" and recorded["NVIDIA_API_TOKEN"] == "***"
    assert recorded["MULTINET_STORE"] == "postgresql://u:***@h/db"
    assert recorded["OMP_NUM_THREADS"] == "3"
    # and a run recorded before they were masked shows none on a page or in the store
    older = {"settings": {"TORCH_DB_PASSWORD": "sekret88", "CUDA_SECRET": "sekret66",
                          "OMP_NUM_THREADS": "3"}}
    assert flatten_env(older) == {"settings.TORCH_DB_PASSWORD": "***",
                                  "settings.CUDA_SECRET": "***",
                                  "settings.OMP_NUM_THREADS": "3"}
    assert hide_all(older)["settings"] == {"TORCH_DB_PASSWORD": "***", "CUDA_SECRET": "***",
                                           "OMP_NUM_THREADS": "3"}


@pytest.mark.parametrize("name", ["MULTINET_SECRETKEY", "MULTINET_APITOKEN", "MULTINET_DBPWD",
                                  "MULTINET_SECRET2", "TORCH_PASSPHRASE", "CUDA_CREDENTIALS",
                                  "NVIDIA_PRIVATE_KEY", "TORCH_ACCESSTOKEN", "DB_PASS",
                                  "TORCH_ACCESSKEY", "TORCH_SSL_KEY", "TORCH_BEARER",
                                  "TORCH_JWT", "TORCH_SESSION_COOKIE", "TORCH_SIGNATURE"])
def test_a_secret_is_known_by_a_word_anywhere_in_its_variable_s_name(name):
    assert hide_variable(name, "s3cr3t") == "***"


@pytest.mark.parametrize("name", ["MULTINET_PASS_COUNT", "OMP_NUM_THREADS", "BYPASS",
                                  "CUDA_VISIBLE_DEVICES", "PYTORCH_CUDA_ALLOC_CONF",
                                  "MULTINET_KEYS", "TORCH_MONKEY", "KEY"])
def test_a_setting_whose_name_says_no_secret_is_kept(name):
    assert hide_variable(name, "1") == "1"


@pytest.mark.parametrize("argv", [
    ("history", "report", "--store", "x.duckdb", "--out", URL),
    pytest.param(("report", str(ROOT), "--out", URL), marks=pytest.mark.slow),
    ("history", "changes", "--store", "duckdb://bench:SECRETPW@localhost/db"),
])
def test_a_url_where_a_file_goes_is_refused_and_makes_nothing(argv, tmp_path):
    """Written as a path, a URL would make folders named after its password."""
    said = refused_in_one_line(run_cli(*argv, cwd=tmp_path))
    assert "SECRETPW" not in said and list(tmp_path.iterdir()) == []


def test_a_url_made_a_path_is_masked_like_the_url():
    assert hide("postgresql:/bench:SECRETPW@h/db: no such run folder") == \
        "postgresql:/bench:***@h/db: no such run folder"
    assert hide("see http://example.com/x:y@z") == "see http://example.com/x:y@z"  # no userinfo


def test_variables_named_as_passwords_are_masked_whole_and_others_as_any_text():
    assert hide_variable("PGPASSWORD", "SECRETPW") == "***"
    assert hide_variable("MY_DB_PASSWD", "x") == "***"
    assert hide_variable("OMP_NUM_THREADS", "1") == "1"
    assert hide_variable("BENCH_HISTORY", URL) == "postgresql://bench:***@localhost:1/db"


@pytest.mark.slow
def test_what_paired_rounds_record_keeps_no_password(tmp_path):
    out = tmp_path / "rounds"
    proc = run_cli("paired-rounds", "--env", f"a={sys.executable}", "--env",
                   f"b={sys.executable}", "--set", "b:PGPASSWORD=SECRETPW", "--rounds", "2",
                   "--out-dir", str(out), "--run-args",
                   f"--scenarios sequential --batch-sizes 1 --history {URL}", timeout=600)
    assert proc.returncode != 0  # the store cannot be reached: no round measures anything
    assert "SECRETPW" not in proc.stdout + proc.stderr
    record = (out / "rounds.json").read_text()
    assert "SECRETPW" not in record
    what = json.loads(record)
    assert what["environments"][1]["variables"] == {"PGPASSWORD": "***"}
    assert what["run_args"][-1] == "postgresql://bench:***@localhost:1/db"
