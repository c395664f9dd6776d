"""The app against a simulated cluster: connection states and the trust-on-first-use prompt."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncssh
import pytest
from simdata import runbook_sim
from textual.widgets import DataTable

from pdtui.cluster import load
from pdtui.settings import Settings
from pdtui.sim.rig import Simulator
from pdtui.ssh import NodeState
from pdtui.tui.app import PdTui
from pdtui.tui.screens.hostkey import HostKeyScreen
from tui.pilot_helpers import wait_for


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[Simulator]:
    async with runbook_sim(tmp_path, "127.0.7") as s:
        yield s


def host_key(sim: Simulator, node: str) -> asyncssh.SSHKey:
    return asyncssh.read_private_key(sim.dir / "keys" / f"ssh_host_{node}_ed25519_key")


@pytest.mark.slow
async def test_nodes_with_known_keys_connect_and_show_as_connected(sim: Simulator) -> None:
    app = PdTui(load(sim.cluster_file), settings=Settings(), persist_settings=False)
    async with app.run_test(size=(130, 40)) as pilot:
        await wait_for(
            pilot,
            lambda: all(
                app.status_of(n).state is NodeState.READY for n in ("prefill-0", "decode-0")
            ),
        )
        await pilot.pause()
        table = app.screen.query_one("#nodes", DataTable)
        assert str(table.get_cell("decode-0", "connection")).startswith("● connected")


@pytest.mark.slow
async def test_unknown_host_keys_are_asked_about_with_their_fingerprint(sim: Simulator) -> None:
    known = sim.dir / "known_hosts"
    known.write_text("")
    app = PdTui(load(sim.cluster_file), settings=Settings(), persist_settings=False)
    async with app.run_test(size=(130, 40)) as pilot:
        # pushed, then composed: its details exist once it is mounted
        await wait_for(
            pilot,
            lambda: (
                isinstance(app.screen, HostKeyScreen) and bool(app.screen.query("#hostkey-details"))
            ),
        )
        screen = app.screen
        assert isinstance(screen, HostKeyScreen)
        first = screen.error.node
        fp = host_key(sim, first).get_fingerprint("sha256")
        assert fp in str(screen.query_one("#hostkey-details").render())
        await pilot.press("s")  # trust and save
        await wait_for(
            pilot, lambda: isinstance(app.screen, HostKeyScreen) and app.screen.error.node != first
        )
        second = app.screen.error.node  # type: ignore[attr-defined]
        await pilot.press("o")  # trust once
        await wait_for(
            pilot,
            lambda: all(
                app.status_of(n).state is NodeState.READY for n in ("prefill-0", "decode-0")
            ),
        )
    saved = known.read_text()
    first_key = host_key(sim, first).export_public_key().decode().split()[1]
    second_key = host_key(sim, second).export_public_key().decode().split()[1]
    assert first_key in saved and second_key not in saved
    assert (known.stat().st_mode & 0o777) == 0o600


@pytest.mark.slow
async def test_refused_key_leaves_the_node_disconnected(sim: Simulator) -> None:
    (sim.dir / "known_hosts").write_text("")
    app = PdTui(load(sim.cluster_file), settings=Settings(), persist_settings=False)
    async with app.run_test(size=(130, 40)) as pilot:
        for _ in range(2):
            await wait_for(pilot, lambda: isinstance(app.screen, HostKeyScreen))
            await pilot.press("r")
            await pilot.pause(0.1)
        await pilot.pause(0.3)
        assert not isinstance(app.screen, HostKeyScreen)
        assert all(app.status_of(n).state is not NodeState.READY for n in ("prefill-0", "decode-0"))
    assert (sim.dir / "known_hosts").read_text() == ""


@pytest.mark.slow
async def test_a_changed_host_key_is_refused_loudly_and_never_offered(sim: Simulator) -> None:
    known = sim.dir / "known_hosts"
    lines = known.read_text().splitlines()
    impostor = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    pattern = lines[1].split()[0]  # decode-0's [host]:port
    known.write_text(f"{lines[0]}\n{pattern} {impostor}\n")
    app = PdTui(load(sim.cluster_file), settings=Settings(), persist_settings=False)
    async with app.run_test(size=(130, 40)) as pilot:
        await wait_for(
            pilot,
            lambda: (
                app.status_of("decode-0").state is NodeState.FAILED
                and app.status_of("prefill-0").state is NodeState.READY
            ),
        )
        await pilot.pause(0.2)
        assert not isinstance(app.screen, HostKeyScreen)
        titles = [n.title for n in app._notifications]
        assert "HOST KEY CHANGED" in titles
        cell = str(app.screen.query_one("#nodes", DataTable).get_cell("decode-0", "connection"))
        assert cell.startswith("✗ failed")


@pytest.mark.slow
async def test_run_all_from_the_overview_passes_every_step(
    sim: Simulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from textual.widgets import DataTable as _Table

    from pdtui.launch.control import stop_all
    from pdtui.tui.screens.dialogs import ConfirmScreen

    monkeypatch.setenv("PDTUI_SIM_VLLM_SPEED", "0.2")
    cluster = load(sim.cluster_file)
    app = PdTui(cluster, settings=Settings(), persist_settings=False)
    try:
        async with app.run_test(size=(140, 45)) as pilot:
            await pilot.press("R")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("y")
            table = app.screen.query_one("#steps", _Table)
            await wait_for(
                pilot,
                lambda: str(table.get_cell("answer", "state")) in ("passed", "failed"),
                timeout=60,
            )
            states = [
                str(table.get_cell(k, "state"))
                for k in (
                    "network",
                    "ranktable",
                    "doctor",
                    "prefill",
                    "decode",
                    "proxy",
                    "verify",
                    "answer",
                )
            ]
            # the doctor warns that a model this large may need a longer start-up timeout;
            # a launch step shows its processes' state once the pollers have seen them
            assert states[:3] == ["passed", "passed", "warning"]
            assert all(st in ("passed", "ready") for st in states[3:6]), states
            assert states[6:] == ["passed", "passed"]
            table.focus()
            table.move_cursor(row=0)
            await pilot.press("enter")  # enter on a step opens its view
            assert app.current_mode == "grid"
    finally:
        from pdtui.ssh.remote import pool_for

        async with pool_for(cluster) as pool:
            await stop_all(pool, cluster, grace=5)
