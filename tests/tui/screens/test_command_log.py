"""The Command log view through Pilot against the simulator: it keeps up after the bounded
log is full, follows the bottom, filters with / and shows a whole command with enter."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest
from simdata import runbook_sim
from textual.widgets import DataTable, Input

from pdtui.cluster import load
from pdtui.settings import Settings
from pdtui.ssh.remote import target
from pdtui.tui.app import PdTui
from pdtui.tui.screens.command_log import CommandLogScreen
from pdtui.tui.screens.dialogs import TextScreen
from tui.pilot_helpers import wait_for


def focused(app: PdTui) -> object:
    return app.focused


def rows(app: PdTui) -> list[str]:
    table = app.screen.query_one("#command-log", DataTable)
    return [str(table.get_row_at(i)[-1]) for i in range(table.row_count)]


@pytest.mark.slow
async def test_the_log_keeps_up_after_it_is_full_and_filters(tmp_path: Path) -> None:
    async with runbook_sim(tmp_path, "127.0.48") as sim:
        cluster = load(sim.cluster_file)
        app = PdTui(cluster, settings=Settings(), persist_settings=False, connect=False)
        async with app.run_test(size=(120, 30)) as pilot:
            pool = await app.ready_pool()
            assert pool is not None
            pool.command_log = collections.deque(maxlen=5)  # a small log fills quickly
            node = target(cluster.nodes[0])
            for i in range(8):
                await pool.run(node, f"echo first-{i}")
            await pilot.press("f7")
            assert isinstance(app.screen, CommandLogScreen)
            await wait_for(pilot, lambda: len(rows(app)) == 5)
            assert rows(app) == [f"echo first-{i}" for i in range(3, 8)]
            table = app.screen.query_one("#command-log", DataTable)
            assert focused(app) is table and table.cursor_row == 4
            # Full: new commands still appear, the oldest go, the cursor follows the bottom.
            for i in range(3):
                await pool.run(node, f"echo later-{i}")
            await wait_for(pilot, lambda: rows(app)[-1] == "echo later-2")
            assert rows(app) == [
                "echo first-6",
                "echo first-7",
                "echo later-0",
                "echo later-1",
                "echo later-2",
            ]
            assert table.cursor_row == 4

            await pilot.press("slash")
            box = app.screen.query_one("#command-log-filter", Input)
            assert focused(app) is box
            await pilot.press(*"later-1", "enter")
            assert rows(app) == ["echo later-1"] and focused(app) is table
            await pilot.press("enter")
            assert isinstance(app.screen, TextScreen)
            assert app.screen.text.endswith("\n\necho later-1")
            assert "exit status 0" in app.screen.text and f"on {cluster.nodes[0].name}" in (
                app.screen.text
            )
            await pilot.press("escape", "escape")
            assert len(rows(app)) == 5 and not box.display
            await pilot.press("k", "k")
            assert table.cursor_row == 2
            await pool.run(node, "echo while-reading")
            await wait_for(pilot, lambda: rows(app)[-1] == "echo while-reading")
            assert table.cursor_row in (1, 2)  # reading above: the view does not jump
