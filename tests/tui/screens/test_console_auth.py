"""The console screen keeps the API key out of the curl view and the history file.

The cluster is the 1P1D sample moved onto loopback addresses with an SSH port nothing listens
on, so the app's background connects fail at once and never leave 127.0.0.0/8."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from textual.widgets import Static, TextArea

from pdtui.cluster import load
from pdtui.settings import Settings
from pdtui.tui.app import PdTui
from pdtui.tui.screens.console import ConsoleScreen, history_path
from pdtui.tui.screens.dialogs import TextScreen
from tui.pilot_helpers import wait_for

KEY = "pdtui-test-screen-0a1b2c3d4e5f"
SAMPLE = Path(__file__).resolve().parents[3] / "pdtui" / "samples" / "deepseek-v3.2-a3-1p1d.toml"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def cluster_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("PDTUI_API_KEY", KEY)
    monkeypatch.setenv("PDTUI_CONFIG_DIR", str(tmp_path / "config"))
    text = (
        SAMPLE.read_text()
        .replace("172.22.0.218", "127.0.78.1")
        .replace("172.22.0.155", "127.0.78.2")
        .replace(
            '[defaults.ssh]\nuser = "root"',
            f'[defaults.ssh]\nuser = "root"\nport = {_closed_port()}\nconnect_timeout = 2',
        )
    )
    assert "172.22." not in text.split("[proxy]")[1]
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


@pytest.mark.slow
async def test_curl_view_and_history_hide_the_key(cluster_file: Path) -> None:
    # The proxy's node does not answer SSH (a closed loopback port): the send fails, after
    # the prompt went into the history.
    app = PdTui(load(cluster_file), settings=Settings(), persist_settings=False)
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("f6")
        screen = app.screen
        assert isinstance(screen, ConsoleScreen)
        screen.query_one("#console-prompt", TextArea).text = f"is {KEY} my key?"
        await pilot.press("ctrl+y")
        await wait_for(pilot, lambda: isinstance(app.screen, TextScreen))
        curl = str(app.screen.query("#text-box Static").last(Static).render())
        assert '-H "Authorization: Bearer $PDTUI_API_KEY"' in curl
        assert "is *** my key?" in curl and KEY not in curl
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen)
        await pilot.press("ctrl+j")
        await wait_for(pilot, lambda: history_path().exists(), timeout=10)
    saved = history_path().read_text()
    assert "is *** my key?" in saved and KEY not in saved
