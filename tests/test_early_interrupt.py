"""Ctrl-C in a command's first moments, while the harness or a tool is still importing: one
line and the shell's code for SIGINT (130), never a traceback. A real SIGINT, sent by the
process to itself at the very import where it must land (a ``sitecustomize`` on the path
arranges it: a signal sent from outside would land anywhere in those few milliseconds)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from tests.conftest import ROOT

HOOK = '''
import importlib.abc, os, signal, sys

class SignalAt(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == os.environ.get("SIGINT_AT_IMPORT"):
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGINT)
        return None

sys.meta_path.insert(0, SignalAt())
'''


@pytest.mark.parametrize("module", ["bench.cli", "bench.tools.paired"])
def test_ctrl_c_while_paired_rounds_imports_is_one_line(tmp_path, module):
    (tmp_path / "hook").mkdir()
    (tmp_path / "hook" / "sitecustomize.py").write_text(HOOK)
    python = sys.executable
    proc = subprocess.run(
        [python, "-m", "bench", "paired-rounds", "--env", f"a={python}", "--env",
         f"b={python}", "--out-dir", str(tmp_path / "paired"), "--rounds", "2"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": f"{tmp_path / 'hook'}{os.pathsep}{ROOT}",
             "SIGINT_AT_IMPORT": module},
        # as from a terminal: a shell starting these tests in the background without job
        # control leaves SIGINT ignored, and children inherit that
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert (proc.returncode, proc.stderr) == (130, "interrupted\n")
    assert not (tmp_path / "paired").exists()
