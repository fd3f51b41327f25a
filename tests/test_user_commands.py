"""What a user runs is found in ``python -m bench --help``: every command is listed there, each
answers its own --help within a screen, and bench/tools holds nothing but those commands and
the parts only they use."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import COMMANDS, TOOLS, main

ROOT = Path(__file__).resolve().parent.parent
TOOLS_DIR = ROOT / "bench" / "tools"
SCREEN_LINES = 40


def test_the_top_level_help_lists_every_command():
    proc = subprocess.run([sys.executable, "-m", "bench", "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    listed = {line.split()[0] for line in proc.stdout.splitlines()
              if line.startswith("    ") and not line.startswith("     ")}
    assert listed == set(COMMANDS) | set(TOOLS)
    assert {"paired-rounds", "versions", "gpu-check", "perf-check", "mutation-check",
            "launch", "bisect"} <= listed


@pytest.mark.parametrize("name", sorted(TOOLS))
def test_each_command_answers_help_within_a_screen(name, capsys):
    try:
        code = main([name, "--help"])
    except SystemExit as ended:  # argparse's --help ends the process it runs in
        code = ended.code
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith(f"usage: python -m bench {name}")
    assert len(out.splitlines()) <= SCREEN_LINES, out


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
        elif isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
    return names


def test_the_tools_folder_holds_only_commands_and_their_parts():
    """A module there is a command of TOOLS, or a part that a command there imports and no
    module outside the folder does."""
    commands = {module for module, _ in TOOLS.values()}
    inside = {f"bench.tools.{p.stem}": imported_modules(p) for p in TOOLS_DIR.glob("*.py")
              if p.stem != "__init__"}
    outside = set().union(*(imported_modules(p) for p in ROOT.joinpath("bench").rglob("*.py")
                            if TOOLS_DIR not in p.parents))
    for name in sorted(set(inside) - commands):
        users = [module for module, imports in inside.items() if name in imports]
        assert users, f"{name} is neither a command nor used by one"
        assert name not in outside, f"{name} is a command's part, yet the product imports it"
