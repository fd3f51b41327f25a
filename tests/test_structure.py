"""The shape of the code: bench/ arranged by stage, no import cycle, small modules, and each
axis defined in one place, from which every consumer derives it."""

import ast
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from bench.axes import AXES
from bench.schema import PHASES, STEP, TARGET
from multinet import PHASES as LIBRARY_PHASES
from multinet.step import ALL_PHASES, TARGET as LIBRARY_TARGET
from tests.conftest import ROOT

BENCH = ROOT / "bench"
STAGES = ("measure", "sweep", "analyze", "present", "commands", "tools", "suite")


def modules(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_bench_is_arranged_by_stage():
    top = [p.name for p in BENCH.glob("*.py")]
    assert len(top) <= 12, top
    for stage in STAGES:
        assert (BENCH / stage / "__init__.py").is_file(), stage


def test_no_module_is_over_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in modules(BENCH) + modules(ROOT / "multinet")
            if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}


def imports_of(path: Path) -> set[str]:
    """The modules ``path`` imports when it runs, anywhere in it (a function's imports too;
    not those under ``if TYPE_CHECKING:``, which never run)."""
    found = set()

    def walk(node):
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            return
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        for child in ast.iter_child_nodes(node):
            walk(child)

    walk(ast.parse(path.read_text()))
    return found


def test_no_import_cycle():
    paths = modules(BENCH) + modules(ROOT / "multinet")
    names = {module_name(p) for p in paths}
    graph = {module_name(p): {m for m in imports_of(p) if m in names} for p in paths}
    state: dict[str, str] = {}

    def visit(node, trail):
        state[node] = "open"
        for nxt in sorted(graph[node] - {node}):
            assert state.get(nxt) != "open", " -> ".join([*trail, node, nxt])
            if nxt not in state:
                visit(nxt, [*trail, node])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [])


def test_the_library_never_imports_the_harness():
    assert not any(m.startswith("bench") for p in modules(ROOT / "multinet")
                   for m in imports_of(p))


def test_nothing_in_the_product_imports_a_test_module():
    # bench/selfcheck measures the project itself, from a checkout: not the product
    product = [p for p in modules(BENCH) if not module_name(p).startswith("bench.selfcheck")]
    offenders = {module_name(p): m for p in product for m in imports_of(p)
                 if m.startswith("tests") or ".test_" in f".{m}" or m == "pytest"}
    # the suite's own test module and its conftest are pytest's, not the product's
    offenders = {k: v for k, v in offenders.items()
                 if k not in ("bench.suite.test_joint_step", "bench.suite.conftest")}
    assert offenders == {}


def literal_strings(path: Path) -> list[str]:
    """Every string literal of a module, f-strings' literal parts included."""
    return [node.value for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)]


def token_prefixes(path: Path) -> list[str]:
    """The literal text right before each value an f-string puts in: `bs` of f"bs{n}"."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.JoinedStr):
            parts = node.values
            found += [a.value for a, b in zip(parts, parts[1:])
                      if isinstance(a, ast.Constant) and isinstance(b, ast.FormattedValue)]
    return found


def test_each_axis_name_and_token_is_written_in_one_module():
    """A name or a config_id token spelled again elsewhere would be a second definition
    that the next axis could miss. The phase `optimizer` shares the name of the axis; the
    tuple of phases in bench/schema.py is where that word may stand for the phase."""
    prefixes = {axis.token.split("{")[0] for axis in AXES if "{" in axis.token} - {""}
    words = {axis.token for axis in AXES if "{" not in axis.token}
    written: dict[str, set[str]] = {}
    for path in modules(BENCH):
        if path.name == "axes.py" and path.parent == BENCH:
            continue
        where = str(path.relative_to(ROOT))
        for text in literal_strings(path):
            for name in [a.name for a in AXES] + sorted(words):
                if text == name:
                    written.setdefault(name, set()).add(where)
        for text in token_prefixes(path):  # f"bs{n}", f"/ddp-{wrap}"
            for prefix in prefixes:
                if text.endswith(prefix) and (len(text) == len(prefix)
                                              or not text[-len(prefix) - 1].isalnum()):
                    written.setdefault(prefix, set()).add(where)
    allowed = {name: {"bench/schema.py"} for name in PHASES}
    assert {k: v for k, v in written.items() if v - allowed.get(k, set())} == {}


def test_the_phases_are_the_library_s():
    assert PHASES == LIBRARY_PHASES and STEP not in PHASES
    assert (TARGET, ALL_PHASES) == (LIBRARY_TARGET, (*LIBRARY_PHASES, LIBRARY_TARGET))


DUMMY = '''
DUMMY = Axis(
    name="dummy", sweep_key="dummies", option="--dummies", kind=int, default=1,
    token="dummy{}", text="dummy {}", minimum=1, maximum=9, sweep_default=(1,),
    help="a dummy axis", meaning="a dummy axis, for the test that adds it in one place")
'''

PROBE = '''
import json, sys
from bench.analyze.run_comparison import KEY
from bench.analyze.run_tables import measured
from bench.axes import config_id
from bench.cli import build_parser
from bench.present.summary import variant
from bench.schema import FIELDS
from bench.sweep.config import load_sweep, sweep_from_mapping
from tests.support.synthetic import frame, result_row

parser = build_parser("run")
help_text = parser._subparsers._group_actions[0].choices["run"].format_help()
args = parser.parse_args(["run", "--dummies", "3,4"])
config = load_sweep(overrides={"dummies": [3, 4]})
try:
    load_sweep(overrides={"dummies": [12]})
    refused = ""
except Exception as exc:
    refused = str(exc)
rows = [result_row(dummy=d, median_ms=float(d)) for d in (1, 2)]
print(json.dumps({
    "help": "--dummies" in help_text, "parsed": args.dummy,
    "sweep": list(config.axes["dummy"]), "default": list(load_sweep().axes["dummy"]),
    "refused": refused, "config_ids": [r["config_id"] for r in rows],
    "key": "dummy" in KEY, "column": "dummy" in FIELDS,
    "measured": len(measured(frame(rows))), "variant": variant(frame(rows).iloc[1]),
}))
'''


def test_a_dummy_axis_added_in_one_place_reaches_every_consumer(tmp_path):
    tree = tmp_path / "tree"
    for package in ("bench", "multinet", "tests/support"):
        shutil.copytree(ROOT / package, tree / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    (tree / "tests" / "__init__.py").write_text("")
    axes = tree / "bench" / "axes.py"
    source = axes.read_text()
    source, count = re.subn(r"(\nAXES: tuple\[Axis, \.\.\.\] = \()(.*?)(\))",
                            lambda m: f"{DUMMY}{m.group(1)}{m.group(2)}, DUMMY{m.group(3)}",
                            source, count=1, flags=re.DOTALL)
    assert count == 1
    axes.write_text(source)
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(PROBE)], cwd=tree,
                          capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    import json
    got = json.loads(proc.stdout)
    assert got["help"] and got["parsed"] == "3,4"
    assert got["sweep"] == [3, 4] and got["default"] == [1]
    assert "dummy 12 exceeds the limit of 9" in got["refused"]
    # at its default the axis stays out of the key, as the later axes do
    assert got["config_ids"] == ["sequential/seed/cpu/bs32/separate/adam/loop",
                                 "sequential/seed/cpu/bs32/separate/adam/loop/dummy2"]
    assert got["key"] and got["column"]
    # two configurations apart only in the dummy axis stay apart in the analysis
    assert got["measured"] == 2 and got["variant"] == "dummy2"


def test_the_reading_side_needs_no_torch():
    reading = [module_name(p) for folder in ("analyze", "present") for p in modules(BENCH / folder)]
    reading += ["bench.axes", "bench.schema", "bench.commands.report", "bench.commands.compare"]
    code = ("import importlib, sys\n"
            f"for name in {reading!r}:\n    importlib.import_module(name)\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_the_checkout_root_is_defined_once_and_is_the_checkout():
    """Subprocesses of the harness start in PROJECT_ROOT with it on PYTHONPATH, so that they
    import this checkout where it is not installed (a GPU machine's own Python)."""
    from bench import PROJECT_ROOT
    assert PROJECT_ROOT == ROOT and (PROJECT_ROOT / "pyproject.toml").is_file()
    computed = [str(p.relative_to(ROOT)) for p in modules(BENCH)
                if "Path(__file__)" in p.read_text()]
    # bench/sweep/config.py finds the sweep files beside the package
    assert computed == ["bench/__init__.py", "bench/sweep/config.py"]
