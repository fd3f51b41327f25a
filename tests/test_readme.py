"""The examples of the README and of the pages it links run as written."""

import re
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli

README = (ROOT / "README.md").read_text()
LIBRARY = (ROOT / "multinet" / "README.md").read_text()
SWEEP = (ROOT / "bench" / "sweep" / "README.md").read_text()
README_LINES = 250


def code_block_after(heading: str, page: str = LIBRARY) -> str:
    section = page.split(heading, 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


@pytest.mark.slow
def test_adding_a_scenario_example_runs_through_the_cli(tmp_path):
    path = tmp_path / "two_heads.py"
    path.write_text(code_block_after("## Adding a scenario"))
    proc = run_cli("--load", str(path), "verify", "--scenarios", "two_heads", "--steps", "2")
    assert proc.returncode == 0, proc.stderr
    assert "two_heads         loss                left, right            left, right            ok" in proc.stdout
    proc = run_cli("--load", str(path), "run", "--scenarios", "two_heads", "--devices", "cpu",
                   "--batch-sizes", "4", "--optimizer-setups", "single", "--min-samples", "3",
                   "--budget-s", "0", "--warmup-s", "0", "--out-dir", str(tmp_path / "run"),
                   "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "run" / "results.csv").read_text().count("two_heads/seed/cpu/bs4") == 4


def test_load_of_a_missing_file_is_a_usage_error(tmp_path):
    proc = run_cli("--load", str(tmp_path / "nope.py"), "verify")
    assert proc.returncode == 2 and proc.stderr.startswith("error: --load: no such file")


def test_library_example_runs():
    namespace = {}
    exec(code_block_after("## Using the library").replace("budget_s=2", "budget_s=0.1"), namespace)
    assert namespace["timing"].summary("step").median > 0


def test_the_sweep_page_lists_every_axis_as_bench_axes_defines_it():
    from bench.axes import markdown_table
    assert markdown_table() in SWEEP


def test_the_readme_is_short_and_reaches_every_page():
    """A newcomer's page: at most README_LINES lines, and every other page of the checkout
    reached from it through links, directly or from a page it links."""
    assert len(README.splitlines()) <= README_LINES
    pages = {path for path in ROOT.rglob("*.md") if not ignored(path)}
    reached, todo = set(), [ROOT / "README.md"]
    while todo:
        page = todo.pop()
        if page in reached:
            continue
        reached.add(page)
        todo += [target for target in linked_pages(page) if target.suffix == ".md"]
    assert pages - reached == set()


def ignored(path: Path) -> bool:
    return any(part.startswith(".") or part in ("htmlcov", "build") for part in
               path.relative_to(ROOT).parts) or "egg-info" in str(path) \
        or (path.relative_to(ROOT).parts[0] == "results" and "reference" not in path.parts
            and path.name != "README.md")


def linked_pages(page: Path) -> list[Path]:
    """The files a page's markdown links name (outside code blocks), each one existing; a
    folder stands for its README."""
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)
    targets = []
    for link in re.findall(r"\]\(([^)\s#]+)[^)]*\)", text):
        if re.match(r"[a-z]+:", link):
            continue
        target = (page.parent / link).resolve()
        assert target.exists(), f"{page.relative_to(ROOT)} links to a missing {link}"
        targets.append(target / "README.md" if target.is_dir() else target)
    return targets
