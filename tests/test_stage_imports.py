"""The stages of bench/ import only downward: a package may use what lies below it in
``STAGES``, never what lies beside or above it. The module-level cycle test
(tests/test_structure.py) sees a circle of modules; this one sees an arrow between packages
that points the wrong way before any circle closes (measure reaching into sweep, the schema
into analyze), which is how the stages start to blur.

Bottom to top: the shared definitions at bench/'s top level (axes, schema, errors...), then
measuring one configuration and checking its arithmetic, reading runs back and judging them
(the sweep reads its own folder back to resume and to stop a group, so analysis lies below
it), the sweep, what builds on a sweep (cluster submission, the history store, the
pytest-benchmark suite), presenting, the command line, and last what only runs the product
(tools, the project's own self-checks)."""

import ast
from pathlib import Path

from tests.conftest import ROOT

SHARED = {"atomic", "axes", "errors", "output_path", "releases", "schema", "seal", "secrets"}
STAGES = (
    SHARED,
    {"measure", "correctness"},
    {"analyze"},
    {"sweep"},
    {"cluster", "history", "suite"},
    {"present"},
    {"cli"},
    {"commands"},
    {"tools"},
    {"selfcheck", "__main__"},
)
LEVEL = {unit: level for level, units in enumerate(STAGES) for unit in units}


def unit_of(module: str) -> str:
    """The stage unit of a dotted module under bench: its package, or a top-level module."""
    return module.split(".")[1]


def imported(tree: ast.AST) -> set[str]:
    """Every bench module a parsed module imports, wherever in it (a function's imports too)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m.startswith("bench.")}


def wrong_way(root: Path) -> list[str]:
    """Each import under ``root``/bench that points sideways or up, as "file: unit -> unit";
    a unit missing from STAGES counts as wrong until it is placed."""
    found = []
    for path in sorted((root / "bench").rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        mine = parts[1]
        for module in sorted(imported(ast.parse(path.read_text()))):
            theirs = unit_of(module)
            if theirs == mine or (mine in SHARED and theirs in SHARED):
                continue
            if LEVEL.get(theirs, len(STAGES)) >= LEVEL.get(mine, -1):
                found.append(f"{path.relative_to(root)}: {mine} -> {theirs}")
    return found


def test_every_stage_imports_only_downward():
    assert wrong_way(ROOT) == []


def test_every_unit_of_bench_has_a_stage():
    units = {p.stem for p in (ROOT / "bench").glob("*.py")} - {"__init__"}
    units |= {p.parent.name for p in (ROOT / "bench").glob("*/__init__.py")}
    assert units - set(LEVEL) == set()


def plant(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_a_back_edge_is_found(tmp_path):
    root = plant(tmp_path, {
        "bench/measure/timers.py": "from bench.sweep.turns import take_turn\n",
        "bench/sweep/turns.py": "from bench.schema import TURNS_VARIABLE\n",
        "bench/schema.py": "def f():\n    import bench.analyze.phase_bounds\n",
        "bench/analyze/phase_bounds.py": "from bench.schema import MIB\n",
    })
    assert wrong_way(root) == ["bench/measure/timers.py: measure -> sweep",
                               "bench/schema.py: schema -> analyze"]


def test_peers_may_not_import_each_other_but_may_import_below(tmp_path):
    root = plant(tmp_path, {
        "bench/history/store.py": "from bench.cluster import node\nfrom bench.analyze import x\n",
        "bench/present/page.py": "from bench.history.store import Store\nimport bench.axes\n",
        "bench/newstage/thing.py": "from bench.axes import AXES\n",
    })
    assert wrong_way(root) == ["bench/history/store.py: history -> cluster",
                               "bench/newstage/thing.py: newstage -> axes"]
