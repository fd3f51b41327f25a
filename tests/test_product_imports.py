"""The product never imports what only measures the project itself (bench/selfcheck) or what
only the tests use (tests/): an installed harness has neither. Every module of bench/ and
multinet/ outside bench/selfcheck is read with ``ast``, so a module that only a GPU machine
or the long tier imports is checked all the same."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOT_PRODUCT = ("bench.selfcheck", "tests")
# a module named in a string, as importlib.import_module or `python -m` takes it ("tests"
# alone is the folder a mutation check copies, not a module)
MODULE_NAME = re.compile(r"^(bench\.selfcheck|tests\.\w+)(\.\w+)*$")


def is_not_product(module: str) -> bool:
    return any(module == name or module.startswith(f"{name}.") for name in NOT_PRODUCT)


def forbidden_imports(source: str) -> list[str]:
    """The modules apart from the product that ``source`` imports, or names for import."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if is_not_product(alias.name)]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [node.module] if is_not_product(node.module) else []
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            found += [node.value] if MODULE_NAME.match(node.value) else []
    return found


def product_modules() -> list[Path]:
    selfcheck = ROOT / "bench" / "selfcheck"
    return sorted(path for package in ("bench", "multinet") for path in
                  (ROOT / package).rglob("*.py") if selfcheck not in path.parents)


def test_the_checker_finds_each_way_of_importing():
    planted = {
        "from bench.selfcheck.noise_model import binomial_upper": ["bench.selfcheck.noise_model"],
        "import tests.support.synthetic as s": ["tests.support.synthetic"],
        "from tests.support import chromium": ["tests.support"],
        "importlib.import_module('bench.selfcheck.report_speed')": ["bench.selfcheck.report_speed"],
        "from bench.sweep import side_by_side": [],
        "from bench.selfchecks import x": [],  # a name that only begins alike
        "'''python -m bench.selfcheck.noise_check measures it'''": [],  # prose, not a name
        "copy = ['bench', 'tests']": [],  # folder names
    }
    for source, expected in planted.items():
        assert forbidden_imports(source) == expected, source


def test_no_product_module_imports_selfcheck_or_test_code():
    modules = product_modules()
    assert len(modules) > 100 and ROOT / "bench" / "cli.py" in modules
    assert not any("selfcheck" in path.parts for path in modules)
    offenders = {str(path.relative_to(ROOT)): names for path in modules
                 if (names := forbidden_imports(path.read_text()))}
    assert offenders == {}
