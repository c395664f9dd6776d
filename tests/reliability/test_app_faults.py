"""The app stays up when the cluster misbehaves: a node down at start, the proxy down."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from simdata import runbook_sim
from textual.widgets import DataTable, Static
from tui.pilot_helpers import wait_for

from pdtui.cluster import load
from pdtui.settings import Settings
from pdtui.sim.rig import Simulator
from pdtui.ssh import NodeState
from pdtui.tui.app import PdTui


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[Simulator]:
    async with runbook_sim(tmp_path, "127.0.25", "decode-0:unreachable") as s:
        yield s


@pytest.mark.slow
async def test_a_node_down_at_start_and_the_proxy_down_leave_the_app_working(
    sim: Simulator,
) -> None:
    app = PdTui(load(sim.cluster_file), settings=Settings(), persist_settings=False)
    async with app.run_test(size=(150, 45)) as pilot:
        await wait_for(
            pilot,
            lambda: (
                app.status_of("decode-0").state is NodeState.FAILED
                and app.status_of("prefill-0").state is NodeState.READY
            ),
        )
        cell = str(app.screen.query_one("#nodes", DataTable).get_cell("decode-0", "connection"))
        assert cell.startswith("✗ failed") and "refused" in cell

        await pilot.press("f3")  # the grid marks it and carries on with the other node

        def summary(node: str) -> str:
            return str(app.screen.query_one("#grid", DataTable).get_cell(node, "summary"))

        await wait_for(
            pilot,
            lambda: (
                summary("decode-0").startswith("? unreachable")
                and summary("prefill-0").startswith("✓ 16/16 ok")
            ),
        )

        await pilot.press("f6", "ctrl+j")  # nothing was launched: the proxy is not there
        status = app.screen.query_one("#console-status", Static)
        await wait_for(
            pilot,
            lambda: "HTTP" in str(status.render()) or "no HTTP response" in str(status.render()),
        )
        assert "no HTTP response" in str(status.render())
        assert app.is_running
