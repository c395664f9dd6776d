"""The Runbook view renders from the live model: steps as true now, "as of" for what is only
known from the run, a reason on every failure, live state for instances and the proxy.

The app runs on the sample cluster without connecting (no poller runs, nothing leaves the
machine); the model is fed what pollers and a run would feed it."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable, Static

from pdtui.cluster import load
from pdtui.launch.control import ProcessStatus, State
from pdtui.launch.run import RunState, Status
from pdtui.live.model import Backend
from pdtui.settings import Settings
from pdtui.tui.app import PdTui
from pdtui.tui.screens.overview import OverviewScreen

ROOT = Path(__file__).resolve().parents[3]
RUNBOOK = ROOT / "sample_clusters" / "deepseek-v3.2-a3-1p1d.toml"


def proc(
    name: str, role: str, state: State, run: RunState = "running", stage: str | None = None
) -> ProcessStatus:
    status = Status("n", name, "/run", run, 7 if run == "running" else None, "rid", 1.0)
    return ProcessStatus(name, role, "n", "http://x", state, stage, status.pid, status)


def cell(app: PdTui, table: str, row: str, column: str) -> str:
    return str(app.screen.query_one(f"#{table}", DataTable).get_cell(row, column))


@pytest.mark.slow
async def test_a_decode_stopped_after_a_passing_run_shows_stopped_with_the_reason() -> None:
    app = PdTui(load(RUNBOOK), settings=Settings(), persist_settings=False, connect=False)
    async with app.run_test(size=(160, 50)) as pilot:
        screen = app.screen
        assert isinstance(screen, OverviewScreen)
        steps = screen.query_one("#steps", DataTable)
        assert app.focused is steps  # arrows (and j/k) work at once
        await pilot.press("j", "j", "k")
        assert steps.cursor_row == 1
        live = app.live
        keys = [(st.key, st.title) for st in screen.steps]
        live.apply_run_started(keys)
        for key, title in keys:
            live.apply_step(key, title, "passed", seconds=1.0)
        live.apply_run_finished()
        live.apply_processes(
            [
                proc("prefill-0", "prefill", "ready", stage="ready"),
                proc("decode-0", "decode", "ready", stage="ready"),
                proc("proxy", "proxy", "ready", stage="ready"),
            ]
        )
        await pilot.pause()
        assert cell(app, "steps", "decode", "state") == "ready"
        assert cell(app, "steps", "doctor", "state") == "passed"
        assert cell(app, "steps", "doctor", "as of") != ""  # only known from the run
        assert cell(app, "steps", "decode", "as of") == ""  # polled since: true now
        assert cell(app, "instances", "decode-0", "state") == "● ready"

        live.apply_processes([proc("decode-0", "decode", "stopped", run="stopped")])
        live.apply_proxy(
            [
                Backend("proxy", True, "answers /healthcheck"),
                Backend("decode-0", False, "cannot reach 172.22.0.155:8000"),
            ]
        )
        await pilot.pause()
        assert cell(app, "steps", "decode", "state") == "stopped"
        assert cell(app, "steps", "decode", "").startswith("✗")
        assert cell(app, "steps", "decode", "reason").startswith("decode-0 stopped")
        assert cell(app, "instances", "decode-0", "state") == "· stopped"
        proxy = str(screen.query_one("#proxy-state", Static).render())
        assert "not answering: decode-0 (not running: start them in Launch, F5, or R here)" in proxy
        live.apply_processes([proc("decode-0", "decode", "ready", stage="ready")])
        await pilot.pause()
        proxy = str(screen.query_one("#proxy-state", Static).render())
        assert (
            "not answering: decode-0; decode-0 runs but does not answer: cannot reach "
            "172.22.0.155:8000"
        ) in proxy


@pytest.mark.slow
async def test_a_failure_without_a_reason_still_says_something() -> None:
    app = PdTui(load(RUNBOOK), settings=Settings(), persist_settings=False, connect=False)
    async with app.run_test(size=(160, 50)) as pilot:
        app.live.apply_run_started([("verify", "Verification prompt through the proxy")])
        app.live.apply_step("verify", "Verification prompt through the proxy", "failed")
        await pilot.pause()
        assert cell(app, "steps", "verify", "state") == "failed"
        assert cell(app, "steps", "verify", "reason") != ""
