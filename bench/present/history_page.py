"""The history store as one offline HTML page: each configuration's time across torch
versions and devices, a device x version matrix, and each machine's latest run against its
previous one.

The charts are drawn in the browser from one table embedded once as JSON
(``bench/history/dashboard.py``'s ``compact``), by ``bench/present/assets/history.js``:
choosing another configuration redraws them without a server, and the page's size grows
with the number of measurements, not with the number of charts it can show. plotly.js is
inlined, as the report's page inlines it (``bench/present/page.py``), so nothing is fetched.
The verdicts of the latest runs are computed once in Python and written as plain tables.

The script is plain JavaScript over plotly.js. Every string that came from the data reaches
the page through ``textContent``, or through ``esc`` on its way into Plotly (whose labels
read a few HTML tags), so a device name holding markup is shown, never run. After each
drawing the body's ``data-draws`` counts up: the tests wait for it rather than for time to
pass.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from plotly.offline import get_plotlyjs

from bench.analyze.block_verdicts import common_shift, single_units
from bench.analyze.run_comparison import COMPARED, NOT_MEASURED, change_rows
from bench.analyze.judge import CONFIDENCE, DRIFT, IMPROVEMENT, REGRESSION
from bench.atomic import write_text_atomic
from bench.history.dashboard import Dashboard
from bench.history.latest import LatestComparison
from bench.present.comparison_page import SINGLE_UNIT_NOTE, unconfirmed_text
from bench.present.shifts_text import detectable_text, shift_text
from bench.present.labels import esc
from bench.present.page import STYLE, Table, asset, head_lines

TITLE = "multinet-bench history"
# A machine's table lists this many regressions (and as many improvements) at most; the
# count above it says how many there were.
MAX_CHANGE_ROWS = 100
MAX_RUN_ROWS = 500  # the newest runs, in the table of runs
HISTORY_STYLE = asset("history.css")  # after the report's own
# The page's script draws every chart and the matrix from the one table the page embeds, and
# draws them again when a control changes (see the module's docstring).
SCRIPT = asset("history.js")


def embedded_json(table: dict) -> str:
    """``table`` as JSON that can sit inside a <script> element: `<`, `>` and `&` occur only
    within its strings, where JSON may spell them as escapes, so no text from the data can
    close the element."""
    text = json.dumps(table, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _paragraph(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


def _run_text(run: dict) -> str:
    return (f"run {run['run_id']} (torch {run['torch_version'] or '?'}, "
            f"{run['date'] or 'no date'}, {run['device_name'] or 'no device name'})")


def _change_table(rows: pd.DataFrame, css: str) -> Table:
    shifted = single_units(rows)
    body = [[r["config"], r["phase"], f"{r['baseline_ms']:.4g}", f"{r['candidate_ms']:.4g}",
             f"{r['ratio']:.3f}",
             *([f"{r['departure']:.3f}" if r["method"] == DRIFT else "-"] if shifted else []),
             f"[{r['low']:.3f}, {r['high']:.3f}]", f"{r['q_value']:.2g}", r["verdict"]]
            for r in rows.to_dict("records")]
    header = ["configuration", "phase", "previous ms", "latest ms", "ratio",
              *(["vs common shift"] if shifted else []), f"{CONFIDENCE:.0%} interval", "q",
              "verdict"]
    numeric = frozenset(range(2, len(header) - 1))
    return Table(header, body, row_classes=[css] * len(body), numeric=numeric)


def _counts(table: pd.DataFrame | None) -> tuple[int, int, int]:
    if table is None:
        return 0, 0, 0
    compared = table[table["outcome"] == COMPARED]
    return (len(compared), int((compared["verdict"] == REGRESSION).sum()),
            int((compared["verdict"] == IMPROVEMENT).sum()))


def latest_summary(latest: list[LatestComparison], threshold: float) -> str:
    """A row per machine: which runs, how many measurements, how many changes."""
    rows = []
    for item in latest:
        compared, regressions, improvements = _counts(item.table)
        shift = common_shift(item.table, threshold) if item.table is not None else None
        rows.append([item.machine, item.previous["run_id"], item.latest["run_id"],
                     compared if item.table is not None else "not compared", regressions,
                     improvements, f"{shift.ratio:.3f}" if shift else "-"])
    return Table(["machine", "previous run", "latest run", "measurements compared",
                  "regressions", "improvements", "common shift"], rows,
                 numeric=frozenset({3, 4, 5, 6})).html()


def latest_blocks(item: LatestComparison, threshold: float) -> list[str]:
    """One machine's comparison: what was compared, the shift common to everything, and
    its regressions and improvements, as ``compare`` judges them."""
    out = [f"<h3>{esc(item.machine)}</h3>",
           _paragraph(f"Latest {_run_text(item.latest)} against the previous "
                      f"{_run_text(item.previous)}.")]
    if item.table is None:
        return out + [_paragraph(f"Not compared: {item.problem}")]
    table = item.table
    compared, regressions, improvements = _counts(table)
    out.append(_paragraph(f"{compared} measurements compared: {regressions} regression(s), "
                          f"{improvements} improvement(s) beyond {threshold:.0%}."))
    rows = table[table["outcome"] == COMPARED]
    notes = [*shift_text(common_shift(table, threshold), threshold).split("\n"),
             detectable_text(rows, threshold),
             f"Note: {SINGLE_UNIT_NOTE}." if single_units(rows) else "",
             (f"Note: {unconfirmed_text(rows)}." if unconfirmed_text(rows) else "")]
    out += [_paragraph(n) for n in notes if n]
    for verdict, css in ((REGRESSION, "regression"), (IMPROVEMENT, "improvement")):
        changes = change_rows(rows, verdict)
        if changes.empty:
            continue
        out.append(_paragraph(f"{verdict.capitalize()}s"
                              + (f" (the {MAX_CHANGE_ROWS} largest of {len(changes)})"
                                 if len(changes) > MAX_CHANGE_ROWS else "") + ":"))
        out.append(_change_table(changes.head(MAX_CHANGE_ROWS), css).html())
    missing = table[table["outcome"] != COMPARED]
    if len(missing):
        unmeasured = missing.loc[missing["outcome"] == NOT_MEASURED, "config"].nunique()
        out.append(_paragraph(
            f"{missing['config'].nunique()} configuration(s) not compared ({unmeasured} not "
            "measured in one of the runs, the rest in one run only); not counted as changes."))
    return out


def runs_table(dashboard: Dashboard) -> str:
    runs = dashboard.runs.sort_values(["started_at", "added_at"], ascending=False)
    shown = runs.head(MAX_RUN_ROWS)
    rows = [[r["run_id"], r["machine"], r["device_name"], r["torch_version"],
             r["cuda_version"], r["started_at"], r["project_commit"], r["configurations"]]
            for r in shown.to_dict("records")]
    note = (_paragraph(f"The newest {MAX_RUN_ROWS} of {len(runs)} runs.")
            if len(runs) > MAX_RUN_ROWS else "")
    return note + Table(["run", "machine", "device name", "torch", "CUDA", "started", "commit",
                         "configurations"], rows, numeric=frozenset({7})).html()


def _intro(dashboard: Dashboard) -> list[str]:
    runs = dashboard.runs
    table = dashboard.data.table
    dates = sorted(d for d in runs["date"] if d)
    span = f", from {dates[0]} to {dates[-1]}" if dates else ""
    return [_paragraph(
        f"{len(runs)} run(s) of {runs['machine'].nunique()} machine(s){span}; "
        f"{table['config_count']} configuration(s); torch {', '.join(table['versions'])}. "
        f"Store: {dashboard.store}."),
        _paragraph("Times are medians over each configuration's timed iterations (over its "
                   f"repeats too, when it has several), with the {CONFIDENCE:.0%} interval of "
                   "the median "
                   "(the widest of its repeats'). Choose a configuration below; every chart "
                   "and the matrix follow. Hover a point for its run."),
        *(_paragraph(n) for n in dashboard.notes)]


SECTIONS = (("configuration", "Time per configuration"),
            ("matrix-section", "Device × torch version"),
            ("latest", "Latest run of each machine against its previous"),
            ("runs", "Runs"))


def _body(dashboard: Dashboard) -> list[str]:
    latest = [block for item in dashboard.latest
              for block in latest_blocks(item, dashboard.threshold)]
    singles = sorted(set(dashboard.runs["machine"]) - {i.machine for i in dashboard.latest})
    if not dashboard.latest:
        latest.insert(0, _paragraph("No machine has two runs in the store yet: nothing to "
                                    "compare."))
    else:
        latest.insert(0, latest_summary(dashboard.latest, dashboard.threshold))
    if singles and dashboard.latest:
        latest.append(_paragraph(f"With one run only, not compared: {', '.join(singles)}."))
    heading = dict(SECTIONS)
    links = "".join(f'<a href="#{anchor}">{esc(title)}</a>' for anchor, title in SECTIONS)
    return [
        f"<nav>{links}</nav>",
        f'<h2 id="configuration">{esc(heading["configuration"])}</h2>',
        '<div id="controls"></div>', '<p class="note" id="fixed"></p>',
        '<p class="note" id="chosen"></p>',
        '<div class="chart plotly-graph-div" id="versions-chart"></div>',
        '<div class="chart plotly-graph-div" id="devices-chart"></div>',
        f'<h2 id="matrix-section">{esc(heading["matrix-section"])}</h2>',
        _paragraph("The median over the runs of each device and torch version, for the "
                   "configuration chosen above; or each cell's ratio to the column chosen "
                   "here, on the same device (red slower, blue faster). Hover a cell for its "
                   "number of runs."),
        '<div id="matrix-controls"></div>', '<p class="note" id="matrix-chosen"></p>',
        '<table id="matrix"></table>',
        f'<h2 id="latest">{esc(heading["latest"])}</h2>',
        _paragraph(f"Each machine's latest run against the one before it, judged as "
                   "python -m bench compare judges two run folders: the previous run is the "
                   f"baseline, the latest the candidate (threshold {dashboard.threshold:.0%})."),
        *latest,
        f'<h2 id="runs">{esc(heading["runs"])}</h2>', runs_table(dashboard)]


def render_history_page(dashboard: Dashboard) -> str:
    """The whole page; an empty store gives a page that says so, without plotly.js."""
    head = head_lines(TITLE, f"{STYLE}\n{HISTORY_STYLE}")
    if dashboard.empty:
        return "\n".join([
            *head, "</head>", "<body>", f"<h1>{esc(TITLE)}</h1>",
            _paragraph(f"The history store {dashboard.store} holds no runs yet. Add run "
                       "folders to it with: python -m bench history add RUN_DIR..."),
            "</body>", "</html>", ""])
    return "\n".join([
        *head, f'<script type="text/javascript">{get_plotlyjs()}</script>', "</head>",
        "<body>", f"<h1>{esc(TITLE)}</h1>", *_intro(dashboard), *_body(dashboard),
        '<script type="application/json" id="history-data">'
        f"{embedded_json(dashboard.data.table)}</script>",
        f'<script type="text/javascript">\n{SCRIPT}</script>', "</body>", "</html>", ""])


def write_history_page(path: Path, dashboard: Dashboard) -> Path:
    """Render the page and write it atomically: a reader never sees half a page."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, render_history_page(dashboard))
    return path
