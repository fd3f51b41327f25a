"""``make mutation-check``: plant each defect of ``bench/tools/mutations.py`` in a copy of the
checkout, run the tests that concern it, and print which were caught.

The copy holds the packages, the tests and pyproject.toml; the tests run in it with the copy
first on the import path, so the mutated code is what they import. Before any mutation the
tests run once on the unmutated copy: a test that fails there would "catch" everything. A
mutation is caught when its tests fail (pytest's exit code 1); any other ending (a
collection error, a timeout) is reported as an error, not as a catch.

    python -m bench mutation-check [--only TEXT] [--out FILE]

Exit 0 when every mutation is caught, 1 when one survives or errs, 2 when the list no longer
matches the source.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import PROJECT_ROOT
from bench.atomic import write_json_atomic
from bench.cli import user_path
from bench.errors import UsageError
from bench.tools.mutations import MUTATIONS, Mutation

COPIED = ("bench", "multinet", "tests", "pyproject.toml")
TEST_TIMEOUT_S = 600
CAUGHT, SURVIVED, ERROR = "caught", "survived", "error"


def check_list(mutations, root: Path) -> None:
    """Each mutation's text must be in its file exactly once, or the list is out of date."""
    names = [m.name for m in mutations]
    if len(set(names)) != len(names):
        raise UsageError("two mutations share a name")
    for m in mutations:
        path = root / m.path
        count = path.read_text().count(m.find) if path.is_file() else 0
        if count != 1:
            raise UsageError(f"mutation {m.name!r}: its text is in {m.path} {count} times, not "
                             "once; update bench/tools/mutations.py")


def copy_checkout(root: Path, into: Path) -> Path:
    tree = into / "tree"
    for name in COPIED:
        source = root / name
        if source.is_dir():
            shutil.copytree(source, tree / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            tree.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, tree / name)
    return tree


def run_tests(tree: Path, args) -> tuple[int, str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    command = [sys.executable, "-m", "pytest", "-q", "-rfEs", "-x", "-p", "no:cacheprovider",
               *args]
    try:
        proc = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True,
                              timeout=TEST_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return -1, f"timed out after {TEST_TIMEOUT_S} s"
    return proc.returncode, proc.stdout + proc.stderr


def first_failure(output: str) -> str:
    found = re.search(r"^(?:FAILED|ERROR) (\S+)|^SKIPPED (.+)", output, re.MULTILINE)
    return found.group(found.lastindex) if found else output.strip().splitlines()[-1] if output.strip() else ""


def imports_from(tree: Path) -> bool:
    """The copy, not the installed project, is what its tests import."""
    probe = "import bench, multinet; print(bench.__file__); print(multinet.__file__)"
    proc = subprocess.run([sys.executable, "-c", probe], cwd=tree, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(tree)}, timeout=120)
    return proc.returncode == 0 and all(Path(line).resolve().is_relative_to(tree.resolve())
                                        for line in proc.stdout.split())


def try_mutation(tree: Path, m: Mutation) -> dict:
    path = tree / m.path
    original = path.read_text()
    path.write_text(original.replace(m.find, m.replace, 1))
    start = time.perf_counter()
    try:
        code, output = run_tests(tree, m.tests)
    finally:
        path.write_text(original)
    outcome = CAUGHT if code == 1 else SURVIVED if code == 0 else ERROR
    if outcome == SURVIVED and not re.search(r"\d+ passed", output):
        outcome = ERROR  # every test skipped (a busy machine, say): nothing was checked
    return {"mutation": m.name, "path": m.path, "tests": " ".join(m.tests), "outcome": outcome,
            "caught_by": first_failure(output) if outcome != SURVIVED else "",
            "seconds": round(time.perf_counter() - start, 1)}


def baseline_args(mutations) -> list[str]:
    """Every test file the mutations name, once, run whole."""
    files = dict.fromkeys(arg for m in mutations for arg in m.tests
                          if not arg.startswith("-") and "/" in arg)
    return list(files)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench mutation-check",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="only the mutations whose name has TEXT")
    parser.add_argument("--out", type=user_path, help="also write the outcomes as JSON here")
    args = parser.parse_args(argv)
    mutations = [m for m in MUTATIONS if args.only.lower() in m.name.lower()]
    try:
        check_list(MUTATIONS, PROJECT_ROOT)
        if not mutations:
            raise UsageError(f"no mutation's name has {args.only!r}")
    except UsageError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="mutation-check-") as tmp:
        tree = copy_checkout(PROJECT_ROOT, Path(tmp))
        if not imports_from(tree):
            print("Error: the copy's tests would import another checkout of the project",
                  file=sys.stderr)
            return 2
        print(f"{len(mutations)} mutation(s); first the tests on the unmutated code ...",
              flush=True)
        code, output = run_tests(tree, baseline_args(mutations))
        if code != 0:
            print(f"The tests fail without any mutation ({first_failure(output)}): fix that "
                  "first.\n" + output[-3000:])
            return 1
        outcomes = []
        for i, m in enumerate(mutations, start=1):
            outcome = try_mutation(tree, m)
            outcomes.append(outcome)
            print(f"[{i:2}/{len(mutations)}] {outcome['outcome']:<8} {outcome['seconds']:6.1f} s"
                  f"  {m.name}" + (f"  <- {outcome['caught_by']}" if outcome["caught_by"]
                                   else ""), flush=True)
    caught = sum(o["outcome"] == CAUGHT for o in outcomes)
    print(f"\nMutation score: {caught}/{len(outcomes)} caught.")
    if args.out:
        write_json_atomic(args.out, {"caught": caught, "total": len(outcomes),
                                     "mutations": outcomes})
    return 0 if caught == len(outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
