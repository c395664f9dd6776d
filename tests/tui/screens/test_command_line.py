"""The : command line: parsing, and running a view's action from another view (Pilot)."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.command import CommandPalette
from textual.widgets import Input

from pdtui.cluster import load
from pdtui.settings import Settings
from pdtui.tui.app import PdTui
from pdtui.tui.screens.command_line import Command, CommandLineScreen, parse
from pdtui.tui.screens.dialogs import ConfirmScreen
from pdtui.tui.screens.launch import LaunchScreen
from tui.pilot_helpers import wait_for

RUNBOOK = Path(__file__).resolve().parents[3] / "sample_clusters" / "deepseek-v3.2-a3-1p1d.toml"


def test_parse() -> None:
    assert parse(":check") == Command("grid", "refresh_now")
    assert parse("launch decode-0") == Command("launch", "start", "decode-0")
    assert parse(":stop") == Command("launch", "stop")
    assert parse(":log") == Command("log")
    assert parse(":ping now") == ":ping takes no argument"
    assert str(parse(":frobnicate")).startswith("unknown command 'frobnicate': try check,")


@pytest.mark.slow
async def test_colon_launch_asks_on_the_launch_view_and_a_bad_line_says_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The sample's nodes are not ours: the Launch view must not tail their logs.
    monkeypatch.setattr(LaunchScreen, "follow_log", lambda self, item: None)
    app = PdTui(load(RUNBOOK), settings=Settings(), persist_settings=False, connect=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("colon")
        assert isinstance(app.screen, CommandLineScreen)
        await pilot.press(*"nope", "enter")
        await pilot.pause()
        assert isinstance(app.screen, CommandLineScreen)  # stays open, says why
        line = app.screen
        error = str(line.query_one("#command-line-error").render())
        assert error.startswith("unknown command 'nope'")
        field = line.query_one("#command-line", Input)
        await wait_for(pilot, lambda: field.value == "nope")
        field.value = "stop decode-0"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), timeout=60)
        assert app.current_mode == "launch"
        await pilot.press("n")
        assert isinstance(app.screen, LaunchScreen)


async def test_the_palette_offers_the_actions_of_every_view() -> None:
    app = PdTui(load(RUNBOOK), settings=Settings(), persist_settings=False, connect=False)
    async with app.run_test(size=(120, 40)):
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for wanted in (
            "NPU grid: Ping peers",
            "Launch: Stop all",
            "Runbook: Run all",
            "Command log: Filter",
        ):
            assert wanted in titles
        assert not isinstance(app.screen, CommandPalette)
