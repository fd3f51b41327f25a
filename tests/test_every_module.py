"""Every module of bench/ and multinet/ imports, and every tool that takes a command line
answers --help with its usage: the quick tier reaches the modules whose real work (a GPU,
minutes of measuring, a browser) only the long tier or a GPU machine runs."""

import importlib
import io
import pkgutil
from contextlib import redirect_stdout

import pytest

import bench
import multinet

# pytest's own modules of the suite: collected by pytest, never imported as the product
NOT_IMPORTED = {"bench.suite.test_joint_step", "bench.suite.conftest", "bench.__main__"}


def every_module() -> list[str]:
    names = []
    for package in (bench, multinet):
        names += [info.name for info in pkgutil.walk_packages(package.__path__,
                                                              f"{package.__name__}.")]
    return sorted(set(names) - NOT_IMPORTED)


def test_every_module_imports():
    names = every_module()
    assert "bench.tools.perf_check" in names and "multinet.graphs" in names
    for name in names:
        importlib.import_module(name)


TOOLS = [name for name in every_module() if name.startswith(("bench.tools.", "bench.selfcheck."))
         and hasattr(importlib.import_module(name), "main")
         and "argparse" in importlib.import_module(name).__dict__]


@pytest.mark.parametrize("name", TOOLS)
def test_each_tool_answers_help(name):
    out = io.StringIO()
    with redirect_stdout(out), pytest.raises(SystemExit) as ended:
        importlib.import_module(name).main(["--help"])
    assert ended.value.code == 0
    assert out.getvalue().startswith("usage:")
