"""F1: the view's title, what it does, its own keys first, then the keys that work everywhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from pdtui.cluster import load
from pdtui.settings import Settings
from pdtui.tui.app import PdTui
from pdtui.tui.screens.help import HelpScreen

RUNBOOK = Path(__file__).resolve().parents[3] / "sample_clusters" / "deepseek-v3.2-a3-1p1d.toml"


@pytest.mark.slow
async def test_help_lists_the_views_own_keys_first_under_its_title() -> None:
    app = PdTui(load(RUNBOOK), settings=Settings(), persist_settings=False, connect=False)
    async with app.run_test(size=(120, 50)) as pilot:
        await pilot.press("f3", "f1")
        assert isinstance(app.screen, HelpScreen)
        text = str(app.screen.query_one("#help-box Static").render())
        lines = text.splitlines()
        assert lines[0] == "NPU grid"
        own, everywhere = lines.index("NPU grid keys"), lines.index("Everywhere")
        assert own < everywhere
        ping = next(i for i, line in enumerate(lines) if line.split()[:2] == ["p", "Ping"])
        quit_ = next(i for i, line in enumerate(lines) if line.split()[-1:] == ["Quit"])
        assert own < ping < everywhere < quit_
