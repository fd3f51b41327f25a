"""The README's examples run as written."""

import re

import pytest

from tests.conftest import ROOT, run_cli

README = (ROOT / "README.md").read_text()


def code_block_after(heading: str) -> str:
    section = README.split(heading, 1)[1]
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


def test_the_readme_lists_every_axis_as_bench_axes_defines_it():
    from bench.axes import markdown_table
    assert markdown_table() in README
