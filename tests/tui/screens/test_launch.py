"""The Launch view driven through Pilot against the simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from simdata import runbook_sim
from textual.widgets import DataTable, Log, Static

from pdtui.cluster import load
from pdtui.launch.control import stop_all
from pdtui.npu.health import sweep
from pdtui.ranktable import dumps, generate
from pdtui.ranktable.sync import push
from pdtui.settings import Settings
from pdtui.sim.faults import apply_fault
from pdtui.sim.rig import Simulator
from pdtui.sim.state import modify_state
from pdtui.ssh.remote import pool_for
from pdtui.tui.app import PdTui
from pdtui.tui.screens.dialogs import ConfirmScreen, TextScreen
from pdtui.tui.screens.launch import LaunchScreen
from pdtui.tui.widgets.filtered_log import FilteredLog
from tui.pilot_helpers import wait_for


@pytest.fixture
async def sim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Simulator]:
    monkeypatch.setenv("PDTUI_SIM_VLLM_SPEED", "0.2")
    async with runbook_sim(tmp_path, "127.0.15") as s:
        cluster = load(s.cluster_file)
        async with pool_for(cluster) as pool:
            live = {n.name: n for n in await sweep(pool, cluster)}
            await push(pool, cluster, dumps(generate(cluster, live)))
            yield s
            await stop_all(pool, cluster, grace=5)


def state(app: PdTui, name: str) -> str:
    return str(app.screen.query_one("#processes", DataTable).get_cell(name, "state"))


@pytest.mark.slow
async def test_start_all_follow_a_log_and_stop_all(sim: Simulator) -> None:
    app = PdTui(load(sim.cluster_file), settings=Settings(), persist_settings=False)
    async with app.run_test(size=(150, 45)) as pilot:
        await pilot.press("f5")
        screen = app.screen
        assert isinstance(screen, LaunchScreen)
        screen.interval = 0.3
        await wait_for(pilot, lambda: state(app, "proxy") == "· stopped")
        await pilot.press("S")
        await wait_for(
            pilot,
            lambda: all(state(app, n) == "✓ ready" for n in ("prefill-0", "decode-0", "proxy")),
        )
        await pilot.press("down")  # decode-0: its log follows in the pane below
        log = screen.query_one("#launch-log", Log)
        await wait_for(
            pilot, lambda: any("Application startup complete." in line for line in log.lines)
        )
        assert "decode-0" in str(log.border_title)
        # / keeps only the matching lines; esc shows them all again; long lines wrap, w
        # switches to scrolling sideways
        everything = len(log.lines)
        width = log.scrollable_content_region.width
        assert all(len(line) <= width for line in log.lines)
        await pilot.press("slash", *"startup complete")
        await wait_for(pilot, lambda: 0 < len(log.lines) < everything)
        assert all("startup complete" in line.lower() for line in log.lines)
        await pilot.press("enter", "escape")
        await wait_for(pilot, lambda: len(log.lines) >= everything)
        await pilot.press("w")
        assert isinstance(log, FilteredLog) and not log.wrap
        assert len(log.lines) == len(log.all_lines)
        await pilot.press("w")
        await pilot.press("X")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(
            pilot,
            lambda: all(state(app, n) == "· stopped" for n in ("prefill-0", "decode-0", "proxy")),
        )


@pytest.mark.slow
async def test_a_failure_only_the_plog_has_names_its_file_and_p_opens_the_cann_log(
    sim: Simulator,
) -> None:
    with modify_state(sim.state_path) as st:
        apply_fault(st, "decode-0:crash-on-start=port")
    app = PdTui(load(sim.cluster_file), settings=Settings(), persist_settings=False)
    async with app.run_test(size=(150, 45)) as pilot:
        await pilot.press("f5")
        screen = app.screen
        assert isinstance(screen, LaunchScreen)
        screen.interval = 0.3
        await wait_for(pilot, lambda: state(app, "decode-0") == "· stopped")
        await pilot.press("down")  # decode-0
        await pilot.press("s")
        await wait_for(pilot, lambda: state(app, "decode-0") == "✗ failed")
        finding = str(screen.query_one("#launch-finding", Static).render())
        assert "device port 16666 is in use (plog-" in finding
        assert "P shows the CANN log" in finding
        await pilot.press("P")
        await wait_for(pilot, lambda: isinstance(app.screen, TextScreen))
        shown = app.screen
        assert isinstance(shown, TextScreen) and "specific port[16666] fail" in shown.text


def cells(app: PdTui, name: str) -> tuple[str, str, str]:
    table = app.screen.query_one("#processes", DataTable)
    return tuple(str(table.get_cell(name, c)) for c in ("state", "stage", "pid"))  # type: ignore[return-value]


@pytest.mark.slow
async def test_a_restart_never_shows_failed_a_stop_clears_stage_and_pid_and_hidden_polls_nothing(
    sim: Simulator,
) -> None:
    app = PdTui(load(sim.cluster_file), settings=Settings(), persist_settings=False)
    seen: list[str] = []
    async with app.run_test(size=(150, 45)) as pilot:
        await pilot.press("f5")
        screen = app.screen
        assert isinstance(screen, LaunchScreen)
        screen.interval = 0.3
        await wait_for(pilot, lambda: state(app, "proxy") == "· stopped")
        await pilot.press("S")
        await wait_for(pilot, lambda: state(app, "decode-0") == "✓ ready")
        await pilot.press("down", "R")  # restart decode-0
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")

        def ready_again() -> bool:
            seen.append(state(app, "decode-0"))
            return len(seen) > 3 and seen[-1] == "✓ ready"

        await wait_for(pilot, ready_again)
        assert "✗ failed" not in seen and "◌ starting" in seen
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: state(app, "decode-0") == "· stopped")
        assert cells(app, "decode-0") == ("· stopped", "-", "-")

        await pilot.press("f7")  # hidden (and no view shown needs processes): no polls
        await wait_for(pilot, lambda: not screen._armed)
        pool = app.pool
        assert pool is not None
        polls = [r for r in pool.command_log if "# status of" in r.command]
        await pilot.pause(1.0)
        assert [r for r in pool.command_log if "# status of" in r.command] == polls
