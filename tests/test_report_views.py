"""The report of the committed H100 axes run (precision x CUDA graph x size x scenario), as
a browser draws it: a view per varied axis, facet titles that name their axes, and a page
whose length follows the axes varied, not the product of their values."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import sys

import pandas as pd
import pytest

from bench.axes import AXES, CUDA_GRAPH, DEVICE, PRECISION, SCENARIO, SIZE
from bench.schema import OK, STEP
from tests.support.chromium import Chromium
from tests.conftest import ROOT, chromium_or_skip, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.chromium]
AXES_RUN = ROOT / "results" / "reference" / "nvidia-h100-80gb-hbm3" / "axes-check"
# The page this run's report drew before it had views: 27,198 px tall at 1400 px wide.
HEIGHT_BEFORE_PX = 27_198
ANNOTATIONS = """
[...document.querySelectorAll('div.plotly-graph-div')].map(div => ({
  title: (div.layout.title || {}).text || '',
  annotations: (div.layout.annotations || []).map(a => a.text || ''),
  markers: (div.data || []).reduce((n, t) => n + (t.mode === 'markers' ? t.x.length : 0), 0),
}))
"""


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    executable = chromium_or_skip()
    folder = tmp_path_factory.mktemp("views")
    run = folder / "axes-check"
    shutil.copytree(AXES_RUN, run)
    out = folder / "report.html"
    proc = run_cli("report", str(run), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    with Chromium(executable, timeout=180) as browser:
        check = browser.check_page(out)
        target, session, _ = browser.open(out, width=1400)
        charts = browser.evaluate(ANNOTATIONS, session)
        height = int(browser.evaluate("document.documentElement.scrollHeight", session))
        browser.send("Target.closeTarget", {"targetId": target})
    return check, charts, height


def expected_points(axis, reference) -> int:
    """Configurations away from ``reference`` with a time, counted in the CSV: the phases
    of a CUDA graph are not timed, so such a configuration has its step only."""
    d = pd.read_csv(AXES_RUN / "results.csv")
    d = d[(d["status"] == OK) & (d[axis.name].astype(str) != reference) & (d["median_ms"] > 0)]
    return len(d)


def test_each_varied_axis_has_a_view_that_draws_each_configuration(page):
    check, charts, _ = page
    assert check.errors == []
    assert "What each varied axis changes" in check.headings
    views = {c["title"].split(":")[0]: c for c in charts
             if re.match(r"^\w+: each value's time over", c["title"])}
    assert sorted(views) == sorted([SIZE.name, PRECISION.name, CUDA_GRAPH.name])
    # 2 scenarios x 2 sizes x 3 precisions x 2 (CUDA graph or not) configurations
    assert views[CUDA_GRAPH.name]["markers"] == expected_points(CUDA_GRAPH, "False") == 12
    assert views[PRECISION.name]["markers"] == expected_points(PRECISION, "fp32") == 40
    assert views[SIZE.name]["markers"] == expected_points(SIZE, "seed") == 30
    assert all(c["marks"] > 0 for c in check.charts), check.charts


def test_no_facet_title_names_a_value_without_its_axis(page):
    _, charts, _ = page
    d = pd.read_csv(AXES_RUN / "results.csv")
    values = {str(v) for axis in (SIZE, PRECISION, CUDA_GRAPH, SCENARIO, DEVICE)
              for v in d[axis.name].unique()}
    bare = []
    for chart in charts:
        for text in chart["annotations"]:
            for value in values:
                for found in re.finditer(rf"(?<![\w:]){re.escape(value)}(?![\w:])", text):
                    if not text[:found.start()].endswith(" = "):
                        bare.append((text, value))
    assert bare == []
    titles = [t for c in charts for t in c["annotations"]]
    assert "precision = bf16" not in titles  # values are in the legend, not in facets...
    assert any(t.startswith("phase = ") for t in titles)  # ...facets name theirs


def test_the_header_states_the_fixed_axes_once_and_the_page_is_a_quarter_as_tall(page):
    check, _, height = page
    fixed = [a.name for a in AXES if a not in (SIZE, PRECISION, CUDA_GRAPH, SCENARIO)]
    sentence = next(line for line in check.text.splitlines() if "Held at one value" in line)
    assert all(f"{name} = " in sentence for name in fixed), sentence
    # reference first (the default, then the axis's order), whatever order rows are in
    assert "Swept: size (seed, large); precision (fp32, bf16, fp16); cuda_graph (False, True)." \
        in sentence
    assert height < HEIGHT_BEFORE_PX / 4, height
    assert STEP in check.text


def test_the_screenshot_is_the_whole_page(tmp_path, page):
    """``report_shot`` draws the page whole: the PNG is as tall as the page it reports."""
    _, _, height = page
    report = tmp_path / "report.html"
    proc = run_cli("report", str(AXES_RUN), "--out", str(report))
    assert proc.returncode == 0, proc.stderr
    shot = subprocess.run([sys.executable, "-m", "tests.support.report_shot", str(report), "--png"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert shot.returncode == 0, shot.stderr
    png = report.with_suffix(".png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, tall = struct.unpack(">II", png[16:24])  # the IHDR chunk: width, height
    assert (width, tall) == (1400, height)
    assert f"{height} px tall at 1400 px wide" in shot.stdout
    missing = subprocess.run([sys.executable, "-m", "tests.support.report_shot",
                              str(tmp_path / "nothing.html")], cwd=ROOT, capture_output=True,
                             text=True, timeout=60)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    assert "no such page" in missing.stderr
