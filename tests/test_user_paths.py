"""Paths as the user gives them: a ``~`` the shell left alone (quoted, or in a variable) is
the home folder for every command, never a folder named ``~`` in the current one; and a
path through a symbolic link that leads nowhere (to a place that does not exist, or round
a loop) is refused in one line before anything is measured. Real subprocesses, a real home
folder (HOME set to a temporary one), real links."""

from __future__ import annotations

import ast
import os
import shutil
import sys

import pytest

from tests.conftest import ROOT, TINY_RUN, run_cli, slow_except
from tests.support.refusals import refused_in_one_line


@pytest.fixture
def home(tmp_path):
    """A home folder of the test's own, and a current folder apart from it, where a ``~``
    taken literally would show as a folder of that name."""
    (tmp_path / "home").mkdir()
    (tmp_path / "cwd").mkdir()
    return tmp_path / "home"


def in_home(home, *args: str):
    env = {**os.environ, "HOME": str(home)}
    return run_cli(*args, env=env, cwd=home.parent / "cwd")


def no_tilde_folder(home) -> bool:
    return not (home.parent / "cwd" / "~").exists()


@pytest.mark.slow
def test_a_run_s_quoted_tilde_out_dir_is_in_the_home_folder(home):
    proc = in_home(home, "run", *TINY_RUN, "--out-dir", "~/runs/tilde")
    assert proc.returncode == 0, proc.stderr
    run = home / "runs" / "tilde"
    assert (run / "results.csv").is_file() and (run / "report.html").is_file()
    assert f"Results: {run / 'results.csv'}" in proc.stdout
    assert no_tilde_folder(home)


def test_a_quoted_tilde_store_and_page_are_in_the_home_folder(real_run, home):
    shutil.copytree(real_run, home / "run")
    proc = in_home(home, "history", "add", "~/run", "--store", "~/sub/h.duckdb")
    assert proc.returncode == 0, proc.stderr
    assert f"in {home / 'sub' / 'h.duckdb'}" in proc.stdout  # the name says where it is
    proc = in_home(home, "history", "report", "--store", "~/sub/h.duckdb", "--out", "~/h.html")
    assert proc.returncode == 0, proc.stderr
    assert (home / "h.html").is_file()
    proc = in_home(home, "report", "~/run", "--out", "~/r.html")
    assert proc.returncode == 0, proc.stderr
    assert (home / "r.html").is_file()
    assert no_tilde_folder(home)


@pytest.mark.slow
def test_bench_history_with_a_tilde_is_the_store_in_the_home_folder(real_run, home):
    shutil.copytree(real_run, home / "run")
    env = {**os.environ, "HOME": str(home), "BENCH_HISTORY": "~/h.duckdb"}
    proc = run_cli("history", "add", str(home / "run"), env=env, cwd=home.parent / "cwd")
    assert proc.returncode == 0, proc.stderr
    assert (home / "h.duckdb").is_file() and no_tilde_folder(home)


def test_a_loaded_file_under_a_tilde_is_found(home):
    (home / "scenarios.py").write_text("open('loaded', 'w').close()\n")
    proc = in_home(home, "--load", "~/scenarios.py", "schema", "--axes")
    assert proc.returncode == 0, proc.stderr
    assert (home.parent / "cwd" / "loaded").is_file()


@pytest.mark.slow
def test_an_environment_s_interpreter_under_a_tilde_is_found(home, tmp_path):
    python = home / "python"  # a link would leave the virtual environment behind
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    # both interpreters accepted, the folder is refused next: nothing is measured
    (tmp_path / "nowhere-link").symlink_to(tmp_path / "nowhere")
    proc = in_home(home, "paired-rounds", "--env", "a=~/python", "--env", "b=~/python",
                   "--out-dir", str(tmp_path / "nowhere-link"))
    refused_in_one_line(proc, "is a symbolic link to")


def test_no_command_takes_a_path_without_expanding_its_tilde():
    """Every command's path option parses through bench.cli.user_path (or expands its
    parts itself): a plain ``type=Path`` would take a quoted ``~`` literally again."""
    plain = []
    for path in [ROOT / "bench" / "cli.py", *(ROOT / "bench" / "commands").glob("*.py"),
                 *(ROOT / "bench" / "tools").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.keyword) and node.arg == "type" \
                    and getattr(node.value, "id", None) == "Path":
                plain.append(f"{path.relative_to(ROOT)}:{node.value.lineno}")
    assert plain == []


def broken(tmp_path, kind: str):
    """A symbolic link to a place that does not exist, or one of a loop of two."""
    link = tmp_path / "link"
    if kind == "dangling":
        link.symlink_to(tmp_path / "nowhere" / "sub")
        return link, f"{link} is a symbolic link to {tmp_path / 'nowhere' / 'sub'}, which " \
            "does not exist"
    link.symlink_to(tmp_path / "other")
    (tmp_path / "other").symlink_to(link)
    return link, f"{link} is a symbolic link in a loop of links"


def nothing_made(tmp_path) -> bool:
    return sorted(p.name for p in tmp_path.iterdir()) in (["link"], ["link", "other"])


@pytest.mark.parametrize("kind", slow_except(["dangling", "loop"], quick=["dangling"]))
@pytest.mark.parametrize("under", slow_except([False, True], quick=[False]))
def test_a_run_folder_through_a_link_to_nowhere_is_refused_before_measuring(tmp_path, kind,
                                                                           under):
    link, said = broken(tmp_path, kind)
    out_dir = link / "run" if under else link
    proc = run_cli("run", *TINY_RUN, "--out-dir", str(out_dir))
    refused_in_one_line(proc, f"--out-dir {out_dir}", said)
    assert nothing_made(tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["dangling", "loop"])
def test_a_run_with_a_store_and_a_folder_through_a_loop_is_one_line(tmp_path, kind):
    link, said = broken(tmp_path, kind)
    proc = run_cli("run", *TINY_RUN, "--out-dir", str(link), "--history",
                   str(tmp_path / "h.duckdb"))
    refused_in_one_line(proc, said)
    assert nothing_made(tmp_path)


@pytest.mark.parametrize("kind", slow_except(["dangling", "loop"], quick=["loop"]))
def test_pages_and_stores_through_a_link_to_nowhere_are_refused(tmp_path, kind):
    link, said = broken(tmp_path, kind)
    for page in (link, link / "h.html"):
        proc = run_cli("history", "report", "--store", str(tmp_path / "none.duckdb"),
                       "--out", str(page))
        refused_in_one_line(proc, f"--out {page}", said)
    proc = run_cli("history", "changes", "--store", str(link / "h.duckdb"))
    refused_in_one_line(proc, f"history store {link / 'h.duckdb'}", said)
    assert nothing_made(tmp_path)


@pytest.mark.slow  # each tool first runs both interpreters, to see that they can measure
@pytest.mark.parametrize("kind", ["dangling", "loop"])
@pytest.mark.parametrize("tool", ["paired-rounds", "bisect"])
def test_rounds_through_a_link_to_nowhere_are_refused_before_the_first(tmp_path, kind, tool):
    link, said = broken(tmp_path, kind)
    proc = run_cli(tool, "--env", f"a={sys.executable}", "--env", f"b={sys.executable}",
                   "--out-dir", str(link / "rounds"), "--run-args", " ".join(TINY_RUN))
    refused_in_one_line(proc, f"--out-dir {link / 'rounds'}: {said}")
    assert nothing_made(tmp_path)
