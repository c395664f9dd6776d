"""A node that takes the TCP connection and then says nothing, and one whose SSH server refuses
with hostile text: each is marked unreachable and the other node's results do not wait."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncssh
import pytest
from simdata import runbook_sim
from textual.widgets import DataTable, Static
from tui.pilot_helpers import wait_for

from pdtui import cluster as cl
from pdtui.settings import Settings
from pdtui.sim.rig import Simulator
from pdtui.ssh import NodeState
from pdtui.tui.app import PdTui
from pdtui.tui.screens.grid import GridScreen
from pdtui.tui.screens.modes import OverviewScreen

SILENT = "127.0.41.20"
HOSTILE = "127.0.41.21"
CONNECT_TIMEOUT = 6.0
#: What the hostile server says: Rich markup that does not parse, and terminal escapes.
REFUSAL = "\x1b[2J[/etc/nologin] node in maintenance \x1b]0;owned\x07 [error]ask ops[/]"


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[Simulator]:
    async with runbook_sim(tmp_path, "127.0.41") as s:
        yield s


@asynccontextmanager
async def silent_server(host: str) -> AsyncIterator[tuple[int, list[float]]]:
    """Accepts TCP connections and never sends a byte; yields (port, accept times)."""
    accepted: list[float] = []
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(time.monotonic())
        writers.append(writer)
        await reader.read()  # until the client gives up

    server = await asyncio.start_server(handle, host, 0)
    try:
        yield server.sockets[0].getsockname()[1], accepted
    finally:
        for w in writers:
            w.close()
        server.close()


class _Refuser(asyncssh.SSHServer):
    def begin_auth(self, username: str) -> bool:
        raise asyncssh.DisconnectError(asyncssh.DISC_HOST_NOT_ALLOWED_TO_CONNECT, REFUSAL)


def with_decode_at(sim: Simulator, host: str, port: int, name: str) -> cl.Cluster:
    """The simulator's cluster with decode-0 moved to ``host:port``."""
    spec = cl.load(sim.cluster_file).spec
    node = spec.nodes[1]
    assert node.name == "decode-0"
    node.host = host
    node.ssh = cl.SshSettings(port=port, connect_timeout=CONNECT_TIMEOUT)
    path = sim.cluster_file.with_name(name)
    cl.save(spec, path)
    return cl.load(path)


def cell(app: PdTui, table: str, row: str, col: str) -> str:
    return str(app.screen.query_one(table, DataTable).get_cell(row, col))


@pytest.mark.slow
async def test_a_silent_node_times_out_while_the_healthy_node_carries_on(
    sim: Simulator,
) -> None:
    async with silent_server(SILENT) as (port, accepted):
        app = PdTui(
            with_decode_at(sim, SILENT, port, "silent.toml"),
            settings=Settings(),
            persist_settings=False,
        )
        t0 = time.monotonic()
        async with app.run_test(size=(190, 45)) as pilot:
            # The healthy node is ready long before the silent one's timeout.
            await wait_for(pilot, lambda: app.status_of("prefill-0").state is NodeState.READY)
            ready_at = time.monotonic() - t0
            assert ready_at < CONNECT_TIMEOUT / 2
            assert app.status_of("decode-0").state is NodeState.CONNECTING
            assert accepted, "the silent server never saw the TCP connection"

            # Its NPU grid row lands too, while the silent node is still being waited for.
            await pilot.press("f3")
            grid = app.screen
            assert isinstance(grid, GridScreen)
            await wait_for(pilot, lambda: "prefill-0" in grid.nodes)
            grid_at = time.monotonic() - t0
            assert cell(app, "#grid", "prefill-0", "summary").startswith("✓ 16/16 ok")
            assert "decode-0" not in grid.nodes and grid.busy
            assert app.status_of("decode-0").state is NodeState.CONNECTING

            await pilot.press("f2")  # the app answers keys in the meantime
            assert isinstance(app.screen, OverviewScreen)
            assert cell(app, "#nodes", "decode-0", "connection") == "◌ connecting"

            # The silent node fails at its connect timeout, not before, and says why.
            await wait_for(
                pilot,
                lambda: app.status_of("decode-0").state is NodeState.FAILED,
                timeout=CONNECT_TIMEOUT + 15,
            )
            failed_at = time.monotonic() - t0
            assert failed_at >= CONNECT_TIMEOUT - 0.5  # it took the whole timeout
            assert grid_at < CONNECT_TIMEOUT - 0.5  # the healthy node did not wait for it
            why = f"no SSH answer from {SILENT}:{port} within {CONNECT_TIMEOUT:g}s"
            status = app.status_of("decode-0")
            assert status.error is not None and why in status.error.message
            assert cell(app, "#nodes", "decode-0", "connection").startswith(
                "✗ failed: no SSH answer"
            )
            await pilot.press("f3")
            await wait_for(pilot, lambda: not grid.busy)
            assert cell(app, "#grid", "decode-0", "summary") == "? unreachable"
            table = grid.query_one("#grid", DataTable)
            table.cursor_coordinate = table.get_cell_coordinate("decode-0", "node")
            await pilot.pause()  # why is in the detail pane
            detail = str(grid.query_one("#grid-detail-text", Static).render())
            assert "no SSH answer" in detail
            assert all(d.state == "unknown" for d in grid.nodes["decode-0"].devices)
            assert cell(app, "#grid", "prefill-0", "summary").startswith("✓ 16/16 ok")
            assert app.is_running


@pytest.mark.slow
async def test_a_refusal_in_hostile_words_is_shown_verbatim_and_breaks_nothing(
    sim: Simulator,
) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    server = await asyncssh.create_server(_Refuser, HOSTILE, 0, server_host_keys=[key])
    port = server.sockets[0].getsockname()[1]
    known = sim.dir / "known_hosts"  # the host key is known: the refusal comes after it
    known.write_text(
        known.read_text() + f"[{HOSTILE}]:{port} {key.export_public_key().decode().strip()}\n"
    )
    try:
        app = PdTui(
            with_decode_at(sim, HOSTILE, port, "hostile.toml"),
            settings=Settings(),
            persist_settings=False,
        )
        async with app.run_test(size=(190, 45)) as pilot:
            await wait_for(
                pilot,
                lambda: (
                    app.status_of("decode-0").state is NodeState.FAILED
                    and app.status_of("prefill-0").state is NodeState.READY
                ),
            )
            status = app.status_of("decode-0")
            assert status.error is not None and REFUSAL in status.error.message
            conn = cell(app, "#nodes", "decode-0", "connection")
            assert conn.startswith("✗ failed: ") and "\x1b" not in conn

            await pilot.press("f3")
            grid = app.screen
            assert isinstance(grid, GridScreen)
            await wait_for(pilot, lambda: not grid.busy and len(grid.nodes) == 2)
            table = grid.query_one("#grid", DataTable)
            table.cursor_coordinate = table.get_cell_coordinate("decode-0", "node")
            await pilot.pause()
            detail = str(grid.query_one("#grid-detail-text", Static).render())
            assert "[/etc/nologin] node in maintenance" in detail  # as said, not as markup
            assert "\\x1b[2J" in detail and "[error]ask ops[/]" in detail
            assert "\x1b" not in detail
            summary = cell(app, "#grid", "decode-0", "summary")
            assert summary == "? unreachable"  # the words are in the detail pane, above
            assert cell(app, "#grid", "prefill-0", "summary").startswith("✓ 16/16 ok")
            await pilot.press("f2")
            assert isinstance(app.screen, OverviewScreen) and app.is_running
    finally:
        server.close()
