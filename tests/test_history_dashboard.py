"""The history dashboard (``python -m bench history report``), against both stores: DuckDB
in a temporary folder and a real PostgreSQL server (skipped, with the reason, where its
binaries are absent). The pages are opened in a real headless Chromium with every request
off the machine blocked, so a page that needed the network would log an error."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

from bench.history.add import ADDED, ALREADY, add_run
from bench.history.changes import Change
from bench.history.dashboard import build_dashboard
from bench.history.store import open_store
from bench.present.history_page import write_history_page
from bench.releases import version_key
from tests.support.synthetic import env_record, result_row, write_run
from tests.support.chromium import CHART_PROBE, Chromium
from tests.conftest import ROOT, chromium_or_skip

pytestmark = pytest.mark.slow
SHARE = {"forward": 0.3, "backward": 0.5, "optimizer": 0.2, "step": 1.0}
EVIL = "<script>alert('gpu')</script>"


@pytest.fixture(scope="module")
def browser():
    executable = chromium_or_skip()
    with Chromium(executable) as chromium:
        yield chromium


def history_run(root, run_id, *, host, gpu, torch, day, step_ms, repeats=1, noise=0.0,
                seed=0):
    """A run folder whose step of each (scenario, batch size) in ``step_ms`` takes that many
    ms (the other phases a share of it), 20 samples a phase, each row's interval +-2% of
    its median. Without noise every sample is the median: the medians are exact."""
    rng = np.random.default_rng(seed)
    started = f"2026-01-{day:02d}T08:00:00+00:00"
    rows, samples = [], {}
    for repeat in range(1, repeats + 1):
        for (scenario, batch), ms in step_ms.items():
            for phase, share in SHARE.items():
                values = ms * share * (rng.lognormal(0, noise, 20) if noise else np.ones(20))
                median = float(np.median(values))
                row = result_row(run_id=run_id, repeat=repeat, scenario=scenario,
                                 batch_size=batch, device="cuda:0", device_name=gpu,
                                 phase=phase, median_ms=median, ci_low_ms=median * 0.98,
                                 ci_high_ms=median * 1.02, torch_version=torch, hostname=host,
                                 started_at=started)
                rows.append(row)
                samples[(row["config_id"], phase, repeat)] = values.tolist()
    env = env_record(run_id, hostname=host, torch_version=torch, started_at=started)
    return write_run(root / run_id, rows, samples, env)


def report(url, out):
    proc = subprocess.run([sys.executable, "-m", "bench", "history", "report", "--store", url,
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


class Page:
    """A page open in the browser, offline, until closed."""

    def __init__(self, browser, path):
        self.browser = browser
        self.target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = browser.send("Target.attachToTarget",
                                    {"targetId": self.target, "flatten": True})["sessionId"]
        for domain in ("Runtime.enable", "Log.enable", "Page.enable", "Network.enable"):
            browser.send(domain, session=self.session)
        browser.send("Network.setBlockedURLs", {"urls": ["http://*", "https://*", "ws://*"]},
                     session=self.session)
        browser.send("Page.navigate", {"url": path.resolve().as_uri()}, session=self.session)
        browser.wait_for("Page.loadEventFired", browser.timeout)

    def js(self, expression):
        return self.browser.evaluate(expression, self.session)

    def draws(self) -> int:
        return int(self.js("document.body.dataset.draws || '0'"))

    def wait_for_draw(self, count: int) -> None:
        deadline = time.monotonic() + 30
        while self.draws() < count:
            assert time.monotonic() < deadline, "the page never finished drawing"
            time.sleep(0.05)

    def choose(self, select_id: str, label: str) -> None:
        """Pick the option showing ``label`` in a control, as a user would."""
        before = self.draws()
        found = self.js(f"""(() => {{
            const s = document.getElementById({select_id!r});
            const o = [...s.options].find(o => o.textContent === {label!r});
            if (!o) return false;
            s.value = o.value; s.dispatchEvent(new Event("change")); return true; }})()""")
        assert found, f"{select_id} has no option {label}"
        self.wait_for_draw(before + 1)

    def traces(self, chart: str) -> list[dict]:
        return self.js(f"document.getElementById({chart!r}).data.map(t => "
                       "({name: t.name, x: t.x, y: t.y}))")

    def matrix(self) -> list[list[str]]:
        return self.js("[...document.querySelectorAll('#matrix tr')]"
                       ".map(r => [...r.cells].map(c => c.textContent))")

    def requests_off_file(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.browser.events
                if e.get("sessionId") == self.session
                and e.get("method") == "Network.requestWillBeSent"
                and not e["params"]["request"]["url"].startswith(("file:", "data:"))]

    def errors(self) -> list[str]:
        return self.browser.errors(self.session)

    def close(self) -> None:
        self.browser.send("Target.closeTarget", {"targetId": self.target})


@pytest.fixture
def open_page(browser):
    pages = []

    def opener(path):
        pages.append(Page(browser, path))
        return pages[-1]

    yield opener
    for page in pages:
        page.close()


def test_two_runs_added_twice_draw_offline_and_redraw_on_a_choice(tmp_path, store_url,
                                                                   open_page):
    steps = {("sequential", 1): 2.0, ("sequential", 8): 3.0, ("gan", 1): 4.0}
    a = history_run(tmp_path, "run-a", host="host-a", gpu=EVIL, torch="2.5.1", day=1,
                    step_ms=steps)
    b = history_run(tmp_path, "run-b", host="host-a", gpu=EVIL, torch="2.6.0", day=2,
                    step_ms={k: v * 1.5 for k, v in steps.items()})
    with open_store(store_url, write=True) as store:
        outcomes = [add_run(store, folder) for folder in (a, b, a, b)]
    assert [o.what for o in outcomes] == [ADDED, ADDED, ALREADY, ALREADY]
    out = tmp_path / "page" / "history.html"
    assert "(2 runs, 3 configurations" in report(store_url, out)
    assert "<script src" not in out.read_text()

    page = open_page(out)
    page.wait_for_draw(1)
    charts = {c["id"]: c for c in page.js(CHART_PROBE)}
    assert set(charts) == {"versions-chart", "devices-chart"}
    assert all(c["svg"] > 0 and c["errorbars"] == 2 for c in charts.values())
    # 2 runs x 3 configurations x 4 phases, each once although added twice
    assert page.js("JSON.parse(document.getElementById('history-data').textContent)"
                   ".points.run.length") == 24
    # the first configuration (gan, batch 1), step: a point per run, 4.0 then 6.0 ms
    (line,) = page.traces("versions-chart")
    assert line["x"] == ["2.5.1 · 2026-01-01", "2.6.0 · 2026-01-02"]
    assert line["y"] == [4.0, 6.0]
    assert page.js("document.querySelectorAll('#versions-chart .point').length") == 2

    page.choose("pick-scenario", "sequential")
    assert page.traces("versions-chart")[0]["y"] == [2.0, 3.0]
    page.choose("pick-batch_size", "batch 8")
    assert page.traces("versions-chart")[0]["y"] == [3.0, 4.5]
    page.choose("pick-scenario", "gan")  # gan has batch 1 only: the choice follows
    assert page.traces("versions-chart")[0]["y"] == [4.0, 6.0]
    assert page.js("document.getElementById('pick-batch_size').selectedOptions[0]"
                   ".textContent") == "batch 1"
    page.choose("pick-phase", "backward")
    assert page.traces("devices-chart")[0]["y"] == [2.0]  # torch 2.5.1's: 0.5 x 4.0

    assert EVIL in page.js("document.body.innerText")  # the device's name, shown as text
    assert page.errors() == [] and page.requests_off_file() == []


def matrix_store(tmp_path, url):
    """Two GPUs, three torch versions; the median step times of (sequential, batch 1):

    GPU-A  2.5.1: 2.0 and 3.0 (two runs)  2.6.0: 2.0
    GPU-B  2.5.1: 4.0                     2.10.0: 5.0
    and of batch 8 twice those, but GPU-A's 2.5.1 runs: 6.0 both."""
    runs = [("a1", "host-a", "GPU-A", "2.5.1", 1, 2.0, 6.0),
            ("a2", "host-a", "GPU-A", "2.5.1", 2, 3.0, 6.0),
            ("a3", "host-a", "GPU-A", "2.6.0", 3, 2.0, 4.0),
            ("b1", "host-b", "GPU-B", "2.5.1", 4, 4.0, 8.0),
            ("b2", "host-b", "GPU-B", "2.10.0", 5, 5.0, 10.0)]
    with open_store(url, write=True) as store:
        for run_id, host, gpu, torch, day, one, eight in runs:
            add_run(store, history_run(tmp_path, run_id, host=host, gpu=gpu, torch=torch,
                                       day=day, step_ms={("sequential", 1): one,
                                                         ("sequential", 8): eight}))


def test_the_device_by_version_matrix_shows_the_medians_and_ratios(tmp_path, store_url,
                                                                  open_page):
    matrix_store(tmp_path, store_url)
    out = tmp_path / "history.html"
    report(store_url, out)
    page = open_page(out)
    page.wait_for_draw(1)
    header = ["device", "torch 2.5.1", "torch 2.6.0", "torch 2.10.0"]  # 2.10 after 2.6
    assert page.matrix() == [header, ["GPU-A", "2.500", "2.000", ""],
                             ["GPU-B", "4.000", "", "5.000"]]
    page.choose("matrix-mode", "ratio to torch 2.5.1")
    assert page.matrix() == [header, ["GPU-A", "1.000", "0.800", ""],
                             ["GPU-B", "1.000", "", "1.250"]]
    page.choose("pick-batch_size", "batch 8")
    assert page.matrix()[1:] == [["GPU-A", "1.000", "0.667", ""],
                                 ["GPU-B", "1.000", "", "1.250"]]
    page.choose("matrix-mode", "median time (ms)")
    assert page.matrix()[1:] == [["GPU-A", "6.000", "4.000", ""],
                                 ["GPU-B", "8.000", "", "10.00"]]
    # the runs in version, then date order: the two 2.5.1 runs of GPU-A before GPU-B's
    assert page.js("document.getElementById('versions-chart').layout.xaxis.categoryarray") \
        == ["2.5.1 · 2026-01-01", "2.5.1 · 2026-01-02", "2.5.1 · 2026-01-04",
            "2.6.0 · 2026-01-03", "2.10.0 · 2026-01-05"]
    assert page.errors() == []


def test_a_machine_whose_latest_run_is_slower_in_one_configuration_shows_the_regression(
        tmp_path, store_url, open_page):
    steps = {("sequential", 1): 2.0, ("sequential", 8): 3.0, ("gan", 1): 4.0, ("gan", 8): 5.0}
    slower = {**steps, ("gan", 8): 5.0 * 1.3}
    with open_store(store_url, write=True) as store:
        for run_id, day, step_ms, seed in (("c1", 1, steps, 1), ("c2", 2, slower, 2)):
            add_run(store, history_run(tmp_path, run_id, host="host-c", gpu="GPU-C",
                                       torch="2.6.0", day=day, step_ms=step_ms, repeats=3,
                                       noise=0.02, seed=seed))
    out = tmp_path / "history.html"
    report(store_url, out)
    page = open_page(out)
    page.wait_for_draw(1)
    rows = page.js("[...document.querySelectorAll('tr.regression, tr.improvement')]"
                   ".map(r => [...r.cells].map(c => c.textContent))")
    # the four phases of gan at batch 8, and nothing else
    assert sorted(r[1] for r in rows) == ["backward", "forward", "optimizer", "step"]
    for config, _, previous, latest, ratio, interval, q, verdict in rows:
        assert config.startswith("gan/") and "/bs8/" in config
        assert verdict == "regression" and float(ratio) == pytest.approx(1.3, abs=0.03)
        assert float(latest) / float(previous) == pytest.approx(1.3, abs=0.03)
    summary = page.js("[...document.querySelectorAll('#latest ~ table')][0].rows[1].innerText")
    assert summary.split("\t")[:6] == ["host-c", "c1", "c2", "16", "4", "0"]
    assert page.errors() == []


def test_an_empty_store_gives_a_page_that_says_so(tmp_path, store_url, open_page):
    open_store(store_url, write=True).close()
    out = tmp_path / "history.html"
    assert "(0 runs" in report(store_url, out)
    page = open_page(out)
    assert "holds no runs yet" in page.js("document.body.innerText")
    assert page.js(CHART_PROBE) == [] and page.errors() == []
    assert out.stat().st_size < 10_000  # no plotly.js where there is nothing to draw


def a_change(before, after, ratio, attributed_to=()):
    """A change of (sequential, batch 1)'s step on host-a, as ``find_changes`` reports one."""
    return Change(machine="host-a", config_id="sequential/seed/cuda:0/bs1/separate/adam/loop",
                  phase="step", before_run=before, before_started_at="", after_run=after,
                  after_started_at="", ratio=ratio, ratio_low=ratio * 0.9,
                  ratio_high=ratio * 1.1, direction="faster" if ratio < 1 else "slower",
                  before_ms=1.0, after_ms=ratio, runs_before=2, runs_after=2, q_value=0.01,
                  attributed_to=attributed_to)


def change_marks(page):
    """The versions chart's one trace of change markers, once drawn, and its first hover."""
    page.wait_for_draw(1)
    (marks,) = [t for t in page.traces("versions-chart") if t["name"] == "change"]
    hover = page.js("document.getElementById('versions-chart').data.find(t => "
                    "t.name === 'change').text[0]")
    return marks, hover


def test_changes_are_marked_where_they_happened(tmp_path, open_page):
    url = str(tmp_path / "history.duckdb")
    matrix_store(tmp_path, url)
    changes = [a_change("a2", "a3", 2 / 3, ("torch 2.5.1 -> 2.6.0",)),
               a_change("a1", "gone", 1.5)]
    with open_store(url, write=True) as store:
        dashboard = build_dashboard(store, changes=changes)
    assert "1 change(s) name a run or configuration not drawn here." in dashboard.notes
    out = write_history_page(tmp_path / "history.html", dashboard)
    page = open_page(out)
    marks, hover = change_marks(page)
    assert marks["x"] == ["2.6.0 · 2026-01-03"] and marks["y"] == [2.0]
    assert "faster: x0.6667 against run a2" in hover and "torch 2.5.1 -&gt; 2.6.0" in hover
    page.choose("pick-batch_size", "batch 8")
    assert [t["name"] for t in page.traces("versions-chart")] == ["GPU-A", "GPU-B"]
    assert page.errors() == []


def test_the_report_marks_the_changes_the_store_holds(tmp_path, store_url, open_page):
    """Three runs at 2 ms under torch 2.5.1, then three at 2.6 ms under 2.6.0: the report
    finds the step itself (``history changes``'s method) and marks it at the first 2.6.0 run,
    against the last 2.5.1 one."""
    with open_store(store_url, write=True) as store:
        for day in range(1, 7):
            add_run(store, history_run(tmp_path, f"r{day}", host="host-a", gpu="GPU-A",
                                       torch="2.5.1" if day <= 3 else "2.6.0", day=day,
                                       step_ms={("sequential", 1): 2.0 if day <= 3 else 2.6}))
    out = tmp_path / "history.html"
    report(store_url, out)
    page = open_page(out)
    marks, hover = change_marks(page)
    assert marks["x"] == ["2.6.0 · 2026-01-04"] and marks["y"] == [2.6]
    assert "slower: x1.300 against run r3" in hover and "torch 2.5.1 -&gt; 2.6.0" in hover
    assert page.errors() == []


def test_torch_versions_are_in_release_order():
    versions = ["2.10.0", "2.9.1", "2.6.0+cu124", "2.6.0.dev20250101+cu124", "2.6.0rc1",
                "2.6.0.post1", "unknown"]
    assert sorted(versions, key=version_key) == [
        "2.6.0.dev20250101+cu124", "2.6.0rc1", "2.6.0+cu124", "2.6.0.post1", "2.9.1",
        "2.10.0", "unknown"]
