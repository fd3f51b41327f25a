"""The environments of a paired comparison as the command line names them: ``NAME=PYTHON``
for each, ``NAME:VAR=VALUE`` for each variable set in one. A name becomes its rounds'
folder in ``--out-dir``, so it is one plain folder name that none of the rounds' own files
or folders takes. Standard library only, like ``bench/tools/paired.py``.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from dataclasses import dataclass, field

from bench.schema import (ENV_FILE, NETWORKS_FILE, OPERATORS_FILE, RATIOS_FILE, RESULTS_FILE,
                          SAMPLES_FILE, SWEEP_FILE)
from bench.secrets import hide, hide_variable

USAGE_ERROR = 2  # what `python -m bench run` exits with on arguments it refuses
# An environment's name is its rounds' folder in --out-dir: one plain name, never a path.
FOLDER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
MAX_NAME_BYTES = 200  # a file system's names stop at 255


@dataclass
class Environment:
    name: str
    python: str
    variables: dict[str, str] = field(default_factory=dict)


def fail(message: str) -> SystemExit:
    """One line on stderr and exit code 2: input the user can fix."""
    print(f"error: {hide(message)}", file=sys.stderr, flush=True)  # --run-args may hold a URL
    return SystemExit(USAGE_ERROR)


# what the rounds write in --out-dir beside the environments' folders: the comparison's
# page, its standing, what the rounds measure (checked when the command is run again) and
# what the next round measures (the configurations still undecided)
OWN_FILES = ("paired.html", "decisions.json", "rounds.json", "undecided.txt")
# and what each environment's folder holds: round-01, round-02, ... (ASCII digits alone:
# \d takes any script's, and round-١ would be read as round 1)
ROUND_FOLDER = re.compile(r"round-[0-9]+")
# a run's own files: an environment's folder of such a name makes --out-dir look like a
# run's folder, so the comparison's page is refused there after every round is measured
RUN_FILE_NAMES = (RESULTS_FILE, SAMPLES_FILE, ENV_FILE, SWEEP_FILE, RATIOS_FILE, NETWORKS_FILE,
                  OPERATORS_FILE)
# a variable's name as a shell and the environment take it
VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parse_environments(envs: list[str], settings: list[str]) -> list[Environment]:
    """``NAME=PYTHON`` for each environment, ``NAME:VAR=VALUE`` for each variable; every
    interpreter exists, and every name is one folder's (its rounds: ``--out-dir``/NAME)."""
    out: dict[str, Environment] = {}
    for text in envs:
        name, sep, python = text.partition("=")
        python = os.path.expanduser(python)  # ~/venv/bin/python, quoted past the shell
        if not sep or not name or not python:
            raise fail(f"--env {text!r}: expected NAME=PYTHON")
        if not FOLDER_NAME.fullmatch(name):
            raise fail(f"--env {text!r}: the name {name!r} becomes a folder in --out-dir; use "
                       "letters, digits, '.', '_' and '-', starting with a letter or digit")
        if len(name.encode()) > MAX_NAME_BYTES:
            raise fail(f"--env {name[:40]}...: the name is {len(name.encode())} bytes, too long "
                       f"for a folder's name (at most {MAX_NAME_BYTES})")
        if name.lower() in OWN_FILES or ROUND_FOLDER.fullmatch(name.lower()):
            raise fail(f"--env {text!r}: {name!r} is the name of a file the rounds write in "
                       f"--out-dir ({', '.join(OWN_FILES)}) or of a round's folder (round-01, "
                       "...); give the environment another")
        if name.lower() in RUN_FILE_NAMES:
            raise fail(f"--env {text!r}: {name!r} is the name of a file a run writes "
                       f"({', '.join(RUN_FILE_NAMES)}), which would make --out-dir look like a "
                       "run's folder; give the environment another")
        if name.lower() in {given.lower() for given in out}:  # one folder where case folds
            raise fail(f"--env {name!r} is given twice (names that differ only in case "
                       "share a folder on some file systems)")
        if shutil.which(python) is None:
            raise fail(f"--env {text!r}: {python} is not an executable interpreter; give "
                       "one such as .venv/bin/python")
        out[name] = Environment(name, python)
    for text in settings:
        name, sep, assignment = text.partition(":")
        var, sep2, value = assignment.partition("=")
        if not sep or not sep2 or not var:
            # mistyped, the value may still follow a password's name (b:PGPASSWORD:pw)
            shown = f"{name}:{hide_variable(assignment, assignment)}" if sep else \
                hide_variable(text, text)
            raise fail(f"--set {shown!r}: expected NAME:VAR=VALUE")
        if not VARIABLE_NAME.fullmatch(var):  # ' PGPASSWORD' would be set, and never read
            raise fail(f"--set '{name}:{var}={hide_variable(var, value)}': {var!r} is not a "
                       "variable's name (letters, digits and '_', not starting with a digit)")
        if name not in out:  # the value may be a password (PGPASSWORD=...): never shown
            raise fail(f"--set '{name}:{var}={hide_variable(var, value)}': no environment "
                       f"{name!r}; given: {', '.join(out)}")
        out[name].variables[var] = value
    if len(out) < 2:
        raise fail("a paired comparison needs at least two --env")
    return list(out.values())
