"""The prompt console driven through Pilot against the simulated PD deployment."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from simdata import runbook_sim
from textual.widgets import DataTable, Static, TextArea

from pdtui.cluster import load
from pdtui.launch.control import launch, stop_all, wait_ready
from pdtui.npu.health import sweep
from pdtui.ranktable import dumps, generate
from pdtui.ranktable.sync import push
from pdtui.settings import Settings
from pdtui.sim.rig import Simulator
from pdtui.ssh.remote import pool_for
from pdtui.tui.app import PdTui
from pdtui.tui.screens.console import ConsoleScreen, load_history
from pdtui.tui.screens.dialogs import PickScreen, TableScreen
from tui.pilot_helpers import wait_for


@pytest.fixture
async def sim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Simulator]:
    monkeypatch.setenv("PDTUI_SIM_VLLM_SPEED", "0.2")
    async with runbook_sim(tmp_path, "127.0.22") as s:
        cluster = load(s.cluster_file)
        async with pool_for(cluster) as pool:
            live = {n.name: n for n in await sweep(pool, cluster)}
            await push(pool, cluster, dumps(generate(cluster, live)))
            await launch(pool, cluster)
            assert {p.state for p in await wait_ready(pool, cluster, timeout=60, interval=0.3)} == {
                "ready"
            }
            yield s
            await stop_all(pool, cluster, grace=5)


def table_rows(app: PdTui) -> list[list[str]]:
    table = app.screen.query_one("#table-screen-table", DataTable)
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


def status(app: PdTui) -> str:
    return str(app.screen.query_one("#console-status", Static).render())


@pytest.mark.slow
async def test_send_streams_the_answer_and_shows_timings(sim: Simulator) -> None:
    app = PdTui(load(sim.cluster_file), settings=Settings(), persist_settings=False)
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("f6")
        screen = app.screen
        assert isinstance(screen, ConsoleScreen)
        await pilot.press("ctrl+j")  # works while the prompt editor has focus
        await wait_for(pilot, lambda: "HTTP 200" in status(app))
        assert status(app).startswith("TTFT ") and "tok/s" in status(app)
        assert screen.answer.strip() and screen.last is not None
        assert screen.last.completion_tokens and screen.last.raw_events[-1] == "[DONE]"
        assert load_history()[-1]["prompt"] == "Who are you?"

        await pilot.press("ctrl+o")  # presets
        assert isinstance(app.screen, PickScreen)
        app.screen.query_one("#pick-list").highlighted = 1  # type: ignore[attr-defined]
        await pilot.press("enter")
        assert screen.query_one("#console-prompt", TextArea).text.startswith("Hello!")

        screen.query_one("#console-max-tokens").value = "100000"  # type: ignore[attr-defined]
        await pilot.press("ctrl+j")
        await wait_for(pilot, lambda: "HTTP 400" in status(app))
        assert "max_model_len" in status(app) or "maximum context" in status(app).lower()

        await pilot.press("ctrl+k")  # ask every backend directly
        await wait_for(pilot, lambda: isinstance(app.screen, TableScreen))
        rows = table_rows(app)
        assert [r[0] for r in rows] == ["proxy", "prefill-0", "decode-0"]
        assert [r[2] for r in rows] == ["ok", "ok", "ok"]
        assert "max_model_len 32768" in rows[2][3] and "{" not in rows[0][3]
        await pilot.press("escape")
        assert screen.max_model_len == 32768
        before = status(app)
        await pilot.press("ctrl+j")  # now refused before sending: it cannot fit
        await pilot.pause(0.3)
        assert status(app) == before
        assert any("> max_model_len 32768" in str(n.message) for n in app._notifications)


async def test_a_failure_says_which_part_is_down(sim: Simulator) -> None:
    """Decode stopped: the 5xx names decode-0; the proxy stopped too: the proxy is not
    running (not "Server disconnected" on a local tunnel port)."""
    cluster = load(sim.cluster_file)
    app = PdTui(cluster, settings=Settings(), persist_settings=False)
    async with app.run_test(size=(140, 40)) as pilot, pool_for(cluster) as pool:
        await pilot.press("f6")
        await stop_all(pool, cluster, ["decode"], grace=5)
        await pilot.press("ctrl+j")
        await wait_for(pilot, lambda: "is down" in status(app), timeout=30)
        assert "HTTP 5" in status(app) and "decode-0 (decode-0" in status(app)
        assert "prefill-0 (" not in status(app)

        await stop_all(pool, cluster, ["proxy"], grace=5)
        await pilot.press("ctrl+j")
        await wait_for(pilot, lambda: "not running" in status(app), timeout=30)
        assert "the proxy is not running (start it in Launch, F5)" in status(app)
        assert "disconnected" not in status(app).lower()
        await pilot.press("ctrl+k")
        await wait_for(pilot, lambda: isinstance(app.screen, TableScreen))
        assert [r[2] for r in table_rows(app)] == ["DOWN", "ok", "DOWN"]
