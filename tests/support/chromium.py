"""Headless Chromium driven over the DevTools protocol: to check pages as a browser sees
them, measure how tall they are and take their screenshots.

The protocol runs over a pair of pipes (``--remote-debugging-pipe``: commands on the
browser's fd 3, replies and events on its fd 4, each message JSON ending in a NUL byte), so
no port, websocket library or driver binary is needed.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-pipe", "--window-size=1400,1000"]

# Every Plotly chart on the page: whether its SVG exists, how many marks it drew (bars and
# markers are `.point`, lines `.js-line`, heatmaps an image in `.hm`) and how many error bars.
CHART_PROBE = """
[...document.querySelectorAll('div.plotly-graph-div')].map(div => ({
  id: div.id,
  svg: div.querySelectorAll('svg.main-svg').length,
  marks: div.querySelectorAll('.point, .js-line, .hm image').length,
  errorbars: div.querySelectorAll('.errorbar path').length,
}))
"""


# Where a section of a report starts and ends on the page, in px: from its heading to the
# next heading, or the page's end.
SECTION_PROBE = """(() => {
  const heading = document.getElementById(ID);
  const y = el => Math.round(el.getBoundingClientRect().top + window.scrollY);
  const next = [...document.querySelectorAll('h2')].find(h => y(h) > y(heading));
  return [y(heading), next ? y(next) : document.documentElement.scrollHeight];
})()"""


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageCheck:
    charts: list[dict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    text: str = ""
    headings: list[str] = field(default_factory=list)


class Chromium:
    def __init__(self, executable: str, timeout: float = 60):
        self.timeout = timeout
        self._profile = tempfile.TemporaryDirectory(prefix="chromium-profile-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def wire_pipes():  # runs in the child, before exec: the protocol's fixed fds
            os.dup2(to_browser_r, 3)
            os.dup2(from_browser_w, 4)

        self.proc = subprocess.Popen(
            [executable, *FLAGS, f"--user-data-dir={self._profile.name}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=wire_pipes, pass_fds=(3, 4))
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._receive()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float) -> dict:
        for i, event in enumerate(self.events):
            if event.get("method") == method:
                return self.events.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            event = self._receive(deadline)
            if event.get("method") == method:
                return event
            self.events.append(event)

    def _receive(self, deadline: float | None = None) -> dict:
        deadline = deadline or time.monotonic() + self.timeout
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise TimeoutError("no answer from chromium")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the protocol pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def open(self, path: Path, settle_s: float = 0.25,
             width: int | None = None) -> tuple[str, str, list[dict]]:
        """Load ``path`` in a new tab (``width`` px wide where given) and wait until its
        charts stop changing: (target, session, what the charts drew)."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget",
                            {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime.enable", "Log.enable", "Page.enable"):
            self.send(domain, session=session)
        if width:
            self.send("Emulation.setDeviceMetricsOverride",
                      {"width": width, "height": 1000, "deviceScaleFactor": 1,
                       "mobile": False}, session=session)
        self.send("Page.navigate", {"url": Path(path).resolve().as_uri()}, session=session)
        self.wait_for("Page.loadEventFired", self.timeout)
        previous, deadline = None, time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            time.sleep(settle_s)
            charts = self.evaluate(CHART_PROBE, session)
            if charts == previous:
                break
            previous = charts
        return target, session, previous or []

    def check_page(self, path: Path, settle_s: float = 0.25) -> PageCheck:
        """Load ``path``, wait until its charts stop changing, and report what was drawn
        and every script error or console error the page logged."""
        target, session, charts = self.open(path, settle_s)
        check = PageCheck(charts=charts)
        check.text = self.evaluate("document.body.innerText", session)
        check.headings = self.evaluate(
            "[...document.querySelectorAll('h2')].map(h => h.textContent)", session)
        check.errors = self.errors(session)
        self.send("Target.closeTarget", {"targetId": target})
        return check

    def screenshot(self, path: Path, out: Path, width: int = 1400,
                   section: str | None = None) -> int:
        """The whole of page ``path`` (or only its section whose heading has the id
        ``section``, down to the next heading), drawn ``width`` px wide, as a PNG at
        ``out``; returns the height shot in px."""
        target, session, _ = self.open(path, width=width)
        top, height = 0, int(self.evaluate("document.documentElement.scrollHeight", session))
        if section is not None:
            top, bottom = self.evaluate(SECTION_PROBE.replace("ID", json.dumps(section)),
                                        session)
            height = bottom - top
        shot = self.send("Page.captureScreenshot",
                         {"format": "png", "captureBeyondViewport": True,
                          "clip": {"x": 0, "y": top, "width": width, "height": height,
                                   "scale": 1}}, session=session)
        Path(out).write_bytes(base64.b64decode(shot["data"]))
        self.send("Target.closeTarget", {"targetId": target})
        return height

    def page_height(self, path: Path, width: int = 1400) -> int:
        """How tall page ``path`` is once drawn ``width`` px wide, in px."""
        target, session, _ = self.open(path, width=width)
        height = int(self.evaluate("document.documentElement.scrollHeight", session))
        self.send("Target.closeTarget", {"targetId": target})
        return height

    def evaluate(self, expression: str, session: str):
        result = self.send("Runtime.evaluate", {"expression": expression,
                                                "returnByValue": True}, session=session)
        if "exceptionDetails" in result:
            raise RuntimeError(f"evaluating the probe failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def errors(self, session: str) -> list[str]:
        out = []
        for event in self.events:
            if event.get("sessionId") != session:
                continue
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                out.append(details.get("exception", {}).get("description")
                           or details.get("text", "exception"))
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                out.append(" ".join(str(a.get("value", a.get("description", "")))
                                    for a in params.get("args", [])))
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                out.append(params["entry"].get("text", ""))
        return out

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)
        self._profile.cleanup()

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
