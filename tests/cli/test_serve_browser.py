"""`pdtui serve` end to end in headless Chromium: the page loads, a key press reaches the app.

A simulated cluster on 127.0.44.x, `pdtui serve` on a free 127.0.0.1 port (both real
processes), and Debian's Chromium driven by Playwright. textual-serve draws the terminal with
xterm.js on a canvas, so there is no text in the DOM to read; an init script catches the page's
xterm ``Terminal`` when textual-serve creates it, and the test reads the screen through xterm's
public buffer API: the text that xterm parsed from the app's output and paints on the canvas.

Chromium is skipped when /usr/bin/chromium is missing, unless PDTUI_REQUIRE_BROWSER=1 (as in
CI), which turns the skip into a failure. The browser only talks to 127.0.0.1: every other
request (the page links a web font) is aborted and host names resolve to nothing.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from procs import free_port, sim_up_argv

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Nothing but loopback: any host name fails to resolve.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
SIM_PREFIX = "127.0.44"

# textual-serve 1.1.3's textual.js does `this.terminal = new Terminal(...)` in the constructor
# of its session object and keeps it nowhere global. A setter on Object.prototype sees that
# assignment, stores the value as the object's own property (what the plain assignment would
# have done), keeps the Terminal for the test and removes itself.
CATCH_TERMINAL = """
Object.defineProperty(Object.prototype, "terminal", {
  configurable: true,
  set(value) {
    Object.defineProperty(this, "terminal",
                          {value, writable: true, configurable: true, enumerable: true});
    if (value && value.buffer && value.buffer.active && typeof value.onData === "function") {
      window.__pdtuiTerminal = value;
      delete Object.prototype.terminal;
    }
  },
});
"""

SCREEN_TEXT = """() => {
  const term = window.__pdtuiTerminal;
  if (!term) return "";
  const buf = term.buffer.active;
  const rows = [];
  for (let y = 0; y < term.rows; y++) {
    const line = buf.getLine(buf.viewportY + y);
    rows.push(line ? line.translateToString(true) : "");
  }
  return rows.join("\\n");
}"""


def _browser_unavailable_reason() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (python3 -m pip install -e '.[test]')"
    try:
        import textual_serve  # noqa: F401
    except ImportError:
        return "textual-serve is not installed (python3 -m pip install -e '.[test]')"
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is missing (apt-get install -y chromium)"
    return None


@pytest.fixture
def browser_available() -> None:
    reason = _browser_unavailable_reason()
    if reason is None:
        return
    if os.environ.get("PDTUI_REQUIRE_BROWSER") == "1":
        pytest.fail(f"PDTUI_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


def _stop_group(proc: subprocess.Popen[Any], sig: int = signal.SIGTERM) -> None:
    """Stop ``proc``'s whole process group (it leads one), then make sure nothing is left."""
    pgid = proc.pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)
    # Stragglers: the app processes textual-serve started for each browser share the group.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    proc.wait(timeout=10)


@pytest.fixture
def sim_cluster(tmp_path: Path) -> Iterator[Path]:
    """`pdtui sim up` as a real process on 127.0.44.x; yields the cluster file it wrote."""
    cluster = tmp_path / "c.toml"
    log = tmp_path / "sim.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            sim_up_argv(cluster, SIM_PREFIX),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while "running;" not in log.read_text() and proc.poll() is None:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        assert proc.poll() is None and cluster.exists(), log.read_text()
        yield cluster
    finally:
        _stop_group(proc, signal.SIGINT)


@pytest.fixture
def served(sim_cluster: Path, tmp_path: Path) -> Iterator[str]:
    """`pdtui serve CLUSTER` on a free loopback port, in its own process group; yields the
    tokenised URL it prints (the page refuses any other)."""
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pdtui", "serve", str(sim_cluster), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    printed = re.compile(rf"serving pdtui on (http://127\.0\.0\.1:{port}/\?token=\S+) \(ctrl")
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, f"pdtui serve exited:\n{log.read_text()}"
            found = printed.search(log.read_text())
            try:
                if found:
                    httpx.get(found[1], timeout=2, trust_env=False)
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"no page at port {port}:\n{log.read_text()}"
            time.sleep(0.1)
        assert found is not None
        yield found[1]
    finally:
        _stop_group(proc)


@pytest.mark.slow
def test_page_loads_and_a_key_press_reaches_the_app(
    browser_available: None, served: str, tmp_path: Path
) -> None:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import Route, sync_playwright

    blocked: list[str] = []

    def loopback_only(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    def screen() -> str:
        return str(page.evaluate(SCREEN_TEXT))

    def wait_for_screen(*texts: str, timeout_ms: int = 30_000) -> None:
        try:
            page.wait_for_function(
                f"texts => texts.every(t => ({SCREEN_TEXT})().includes(t))",
                arg=list(texts),
                timeout=timeout_ms,
                polling=100,
            )
        except PlaywrightError as exc:
            page.screenshot(path=str(tmp_path / "failure.png"))
            pytest.fail(
                f"{texts} never appeared in the browser's terminal ({exc.message}); "
                f"screenshot in {tmp_path / 'failure.png'}; screen:\n{screen()}"
            )

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.route("**/*", loopback_only)
            page.add_init_script(CATCH_TERMINAL)
            page.goto(served)

            # The page loaded and textual-serve connected its terminal to a pdtui process: the
            # runbook overview of the simulated cluster is on the screen.
            wait_for_screen(
                "pdtui — deepseek-v3.2-a3-1p1d",
                "Runbook  (R runs every step",
                f"root@{SIM_PREFIX}.1:",
                "R Run all",
            )
            before = screen()
            assert "Ping peers" not in before and "summary" not in before, before

            # F3 switches to the NPU grid: its column header and its own footer keys show.
            page.focus(".xterm-helper-textarea")
            page.keyboard.press("F3")
            wait_for_screen("summary", "p Ping peers", "f Failing only")
            assert "Runbook  (R runs every step" not in screen()
            assert all(urlsplit(u).hostname != "127.0.0.1" for u in blocked)
        finally:
            browser.close()
