"""One SVG snapshot per mode and per dialog, on the sample cluster file without live nodes.

Nothing in the pictures depends on a clock, a path or a network: the app does not connect
(connect=False), the dialogs get fixed texts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Input

from pdtui.cluster import load
from pdtui.npu.model import DeviceHealth, NodeHealth, PingResult, Raw
from pdtui.settings import Settings
from pdtui.ssh import HostKeyUnknown
from pdtui.tui.app import PdTui
from pdtui.tui.screens.device_detail import DeviceDetailScreen
from pdtui.tui.screens.dialogs import ConfirmScreen, PickScreen, TextScreen
from pdtui.tui.screens.edit_cell import EditCellScreen
from pdtui.tui.screens.hostkey import HostKeyScreen
from pdtui.tui.screens.launch import LaunchScreen
from pdtui.tui.screens.ping_matrix import PingMatrixScreen

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = ROOT / "sample_clusters" / "deepseek-v3.2-a3-1p1d.toml"
SIZE = (110, 34)
Snap = Callable[..., bool]


def make_app() -> PdTui:
    return PdTui(load(RUNBOOK), settings=Settings(), persist_settings=False, connect=False)


@pytest.mark.parametrize(
    "keys",
    [(), ("f3",), ("f4",), ("f5",), ("f6",), ("f7",)],
    ids=["overview", "grid", "ranktable", "launch", "console", "log"],
)
@pytest.mark.slow
def test_mode(snap_compare: Snap, keys: tuple[str, ...], monkeypatch: pytest.MonkeyPatch) -> None:
    # The Launch view tails the highlighted process's log over SSH even without connect:
    # the sample's nodes are not ours, and what they answer (or when) is not the picture.
    monkeypatch.setattr(LaunchScreen, "follow_log", lambda self, item: None)

    async def steady_cursor(pilot: Pilot[None]) -> None:
        await pilot.press(*keys)
        for field in pilot.app.screen.query("TextArea, Input"):
            field.cursor_blink = False  # type: ignore[attr-defined]  # a blink is a clock
        await pilot.pause()

    assert snap_compare(make_app(), run_before=steady_cursor, terminal_size=SIZE)


@pytest.mark.parametrize(
    "keys",
    [(), ("f3",), ("f4",), ("f5",), ("f6",), ("f7",)],
    ids=["overview", "grid", "ranktable", "launch", "console", "log"],
)
@pytest.mark.slow
def test_mode_at_80x24(
    snap_compare: Snap, keys: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The smallest usual terminal: every mode in the mode bar (short names), F1 in the
    footer, and each view still usable."""
    monkeypatch.setattr(LaunchScreen, "follow_log", lambda self, item: None)

    async def steady_cursor(pilot: Pilot[None]) -> None:
        await pilot.press(*keys)
        for field in pilot.app.screen.query("TextArea, Input"):
            field.cursor_blink = False  # type: ignore[attr-defined]  # a blink is a clock
        await pilot.pause()

    assert snap_compare(make_app(), run_before=steady_cursor, terminal_size=(80, 24))


@pytest.mark.slow
def test_help(snap_compare: Snap) -> None:
    """F1 over the Runbook view: what it does and every key that works there."""
    assert snap_compare(make_app(), press=("f1",), terminal_size=SIZE)


def _ping(src: str, dst: str, dev: int, ok: bool) -> PingResult:
    return PingResult(
        src,
        dev,
        dst,
        dev,
        f"10.20.0.{dev + 1}",
        3,
        3 if ok else 0,
        0.0 if ok else 100.0,
        0.061 if ok else None,
        ok,
        None if ok else "100% packet loss",
        Raw("hccn_tool -ping", 0, "", ""),
    )


def _detail() -> DeviceDetailScreen:
    dev = DeviceHealth(
        3,
        "fail",
        ["link DOWN"],
        link="DOWN",
        net_health="Init",
        ip="10.20.0.4",
        netmask="255.255.0.0",
        tls_switch=0,
        raw={"link": Raw("hccn_tool -i 3 -link -g", 0, "link status: DOWN\n", "")},
    )
    node = NodeHealth("prefill-0", "Ascend910_9391", True, devices=[dev])
    return DeviceDetailScreen(node, dev)


def _host_key() -> HostKeyScreen:
    error = HostKeyUnknown(
        "decode-0",
        "unknown host key",
        host="172.22.0.219",
        port=22,
        algorithm="ssh-ed25519",
        fingerprint="SHA256:q3Zw0dZ1nKXc8mB2mY3bPpJqX9o4s6T1u7V8w9x0yZA",
        key=None,
    )
    return HostKeyScreen(error, "~/.config/pdtui/known_hosts")


DIALOGS: dict[str, Callable[[], Screen[Any]]] = {
    "confirm": lambda: ConfirmScreen(
        "Push deepseek-v3.2-a3-1p1d.ranktable.json to 2 nodes?",
        "prefill-0: different\n    decode_device_list[0].device_ip: 10.20.0.1 -> 10.20.0.9\n"
        "decode-0: missing",
    ),
    "text": lambda: TextScreen(
        "ranktable JSON (as written)", '{\n  "version": "1.0",\n  "status": "completed"\n}'
    ),
    "pick": lambda: PickScreen(
        "Presets",
        ["Runbook verification (the runbook's curl)", "Chat: hello", "Long answer (500 tokens)"],
    ),
    "edit-cell": lambda: EditCellScreen(
        "prefill_device_list[0].device_ip", "device_ip", "10.20.0.1"
    ),
    "host-key": _host_key,
    "device-detail": _detail,
    "ping-matrix": lambda: PingMatrixScreen(
        ["prefill-0", "decode-0"],
        [_ping("prefill-0", "decode-0", 0, True), _ping("decode-0", "prefill-0", 1, False)],
    ),
}


@pytest.mark.parametrize("name", list(DIALOGS))
@pytest.mark.slow
def test_dialog(snap_compare: Snap, name: str) -> None:
    """Each dialog over the Runbook view."""

    async def open_dialog(pilot: Pilot[None]) -> None:
        pilot.app.push_screen(DIALOGS[name]())
        await pilot.pause()
        # A text field's cursor blinks: on a loaded machine the picture could catch it off.
        for field in pilot.app.screen.query(Input):
            field.cursor_blink = False
        await pilot.pause()

    run_before: Callable[[Pilot[None]], Awaitable[None]] = open_dialog
    assert snap_compare(make_app(), run_before=run_before, terminal_size=SIZE)
