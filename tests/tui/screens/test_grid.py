"""The NPU grid driven through Pilot against the simulator over real SSH."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from simdata import runbook_sim
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from pdtui.cluster import load
from pdtui.settings import Settings
from pdtui.sim.faults import apply_fault
from pdtui.sim.rig import Simulator
from pdtui.sim.state import modify_state
from pdtui.tui.app import PdTui
from pdtui.tui.screens.device_detail import DeviceDetailScreen
from pdtui.tui.screens.grid import GridScreen
from pdtui.tui.screens.ping_matrix import PingMatrixScreen
from tui.pilot_helpers import wait_for


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[Simulator]:
    async with runbook_sim(tmp_path, "127.0.9", "decode-0:3:link-down") as s:
        yield s


def cell(app: PdTui, row: str, col: str) -> str:
    return str(app.screen.query_one("#grid", DataTable).get_cell(row, col))


async def open_grid(app: PdTui, pilot: Pilot[None]) -> GridScreen:
    await pilot.press("f3")
    screen = app.screen
    assert isinstance(screen, GridScreen)
    await wait_for(pilot, lambda: len(screen.nodes) == 2 and not screen.busy)
    return screen


@pytest.mark.slow
async def test_grid_fills_from_a_sweep_and_marks_the_faulty_device(sim: Simulator) -> None:
    app = PdTui(load(sim.cluster_file), settings=Settings(), persist_settings=False)
    async with app.run_test(size=(190, 40)) as pilot:
        await open_grid(app, pilot)
        assert cell(app, "decode-0", "d3") == "✗ FAIL"
        assert cell(app, "decode-0", "d2") == "✓ ok"
        assert cell(app, "prefill-0", "summary").startswith("✓ 16/16 ok")
        assert cell(app, "decode-0", "summary").startswith("✗ 15/16 ok  1 fail")


@pytest.mark.slow
async def test_refresh_picks_up_a_new_fault(sim: Simulator) -> None:
    app = PdTui(load(sim.cluster_file), settings=Settings(), persist_settings=False)
    async with app.run_test(size=(190, 40)) as pilot:
        screen = await open_grid(app, pilot)
        with modify_state(sim.state_path) as state:
            apply_fault(state, "prefill-0:5:net-health=Receive timeout")
        before = screen.last_seconds
        await pilot.press("r")
        await wait_for(
            pilot,
            lambda: (
                not screen.busy
                and screen.last_seconds is not before
                and cell(app, "prefill-0", "d5") == "✗ FAIL"
            ),
        )


@pytest.mark.slow
async def test_moving_over_a_cell_explains_it_and_enter_shows_raw_output(sim: Simulator) -> None:
    app = PdTui(load(sim.cluster_file), settings=Settings(), persist_settings=False)
    async with app.run_test(size=(190, 40)) as pilot:
        await open_grid(app, pilot)
        table = app.screen.query_one("#grid", DataTable)
        table.cursor_coordinate = table.get_cell_coordinate("decode-0", "d3")
        await pilot.pause()
        detail = str(app.screen.query_one("#grid-detail-text", Static).render())
        assert "decode-0:3" in detail and "link DOWN" in detail
        await pilot.press("enter")
        assert isinstance(app.screen, DeviceDetailScreen)
        text = str(app.screen.query_one("#detail-box Static", Static).render())
        assert "$ hccn_tool -i 3 -link -g   (rc 0)" in text and "link status: DOWN" in text
        await pilot.press("escape")
        assert isinstance(app.screen, GridScreen)


@pytest.mark.slow
async def test_failing_only_hides_healthy_nodes_and_cells(sim: Simulator) -> None:
    app = PdTui(load(sim.cluster_file), settings=Settings(), persist_settings=False)
    async with app.run_test(size=(190, 40)) as pilot:
        await open_grid(app, pilot)
        await pilot.press("f")
        table = app.screen.query_one("#grid", DataTable)
        assert [str(k.value) for k in table.rows] == ["decode-0"]
        assert cell(app, "decode-0", "d2") == "·" and cell(app, "decode-0", "d3") == "✗ FAIL"
        await pilot.press("f")
        assert table.row_count == 2


@pytest.mark.slow
async def test_ping_shows_the_matrix(sim: Simulator) -> None:
    app = PdTui(load(sim.cluster_file), settings=Settings(), persist_settings=False)
    async with app.run_test(size=(190, 40)) as pilot:
        await open_grid(app, pilot)
        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, PingMatrixScreen))
        matrix = app.screen.query_one("#ping-matrix", DataTable)
        assert str(matrix.get_row_at(0)[2]).startswith("✓ 16/16")


@pytest.mark.slow
async def test_the_ping_summary_goes_when_the_health_under_it_changes(sim: Simulator) -> None:
    app = PdTui(load(sim.cluster_file), settings=Settings(), persist_settings=False)
    async with app.run_test(size=(190, 40)) as pilot:
        screen = await open_grid(app, pilot)
        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, PingMatrixScreen))
        await pilot.press("escape")
        status = screen.query_one("#grid-status", Static)
        assert "pings " in str(status.render()) and app.live.pings
        await pilot.press("r")  # the same health: the pings still describe it
        await wait_for(pilot, lambda: not screen.busy)
        assert "pings " in str(status.render())
        with modify_state(sim.state_path) as state:
            apply_fault(state, "prefill-0:5:net-health=Receive timeout")
        await pilot.press("r")
        await wait_for(pilot, lambda: not screen.busy and cell(app, "prefill-0", "d5") == "✗ FAIL")
        assert "pings " not in str(status.render()) and app.live.pings == []


@pytest.mark.slow
async def test_the_runbooks_last_check_shows_at_once_and_its_age_moves() -> None:
    import time

    from pdtui.npu.model import DeviceHealth, NodeHealth

    root = Path(__file__).resolve().parents[3]
    cluster = load(root / "sample_clusters" / "deepseek-v3.2-a3-1p1d.toml")
    app = PdTui(cluster, settings=Settings(), persist_settings=False, connect=False)
    async with app.run_test(size=(190, 40)) as pilot:
        taken = time.time() - 30 * 60  # the run's check, half an hour ago
        app.live.apply_npu(
            [
                NodeHealth(
                    n.name,
                    "A3",
                    True,
                    devices=[DeviceHealth(i, state="ok") for i in range(16)],
                    taken_at=taken,
                    state="ok",
                )
                for n in cluster.nodes
            ],
            live=False,
        )
        await pilot.press("f3")
        await pilot.pause()
        summary = cell(app, "prefill-0", "summary")
        assert summary.startswith("✓ 16/16 ok") and summary.endswith("30m")
        screen = app.screen
        assert isinstance(screen, GridScreen)
        screen.nodes["prefill-0"].taken_at = taken - 60 * 60  # as if an hour went by
        await wait_for(pilot, lambda: cell(app, "prefill-0", "summary").endswith("2h"))


@pytest.mark.slow
async def test_compact_mode_for_a_narrow_terminal(sim: Simulator) -> None:
    app = PdTui(load(sim.cluster_file), settings=Settings(), persist_settings=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_grid(app, pilot)
        assert cell(app, "decode-0", "d3") == "✗"


async def test_at_80x24_a_nodes_devices_wrap_onto_two_rows(sim: Simulator) -> None:
    app = PdTui(load(sim.cluster_file), settings=Settings(), persist_settings=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_grid(app, pilot)
        table = app.screen.query_one("#grid", DataTable)
        assert [str(k.value) for k in table.rows] == [
            "prefill-0",
            "prefill-0\t8",
            "decode-0",
            "decode-0\t8",
        ]
        assert len(table.columns) == 2 + 8
        assert all(c.get_render_width(table) <= 80 for c in table.columns.values())
        assert sum(c.get_render_width(table) for c in table.columns.values()) <= 80
        assert cell(app, "decode-0", "d3") == "✗"  # device 3 on the first row
        assert str(table.get_row("decode-0\t8")[0]).strip() == "8-15"
        table.cursor_coordinate = table.get_cell_coordinate("decode-0\t8", "d1")
        await pilot.pause()
        detail = str(app.screen.query_one("#grid-detail-text", Static).render())
        assert detail.startswith("decode-0:9 ")  # the second row holds devices 8-15


async def test_slash_filters_the_nodes_and_a_sweep_counts_the_nodes_that_answered(
    sim: Simulator,
) -> None:
    app = PdTui(load(sim.cluster_file), settings=Settings(), persist_settings=False)
    async with app.run_test(size=(190, 40)) as pilot:
        screen = await open_grid(app, pilot)
        table = app.screen.query_one("#grid", DataTable)
        await pilot.press("slash", *"link")  # decode-0:3's reason: link down
        await wait_for(pilot, lambda: [str(k.value) for k in table.rows] == ["decode-0"])
        await pilot.press("enter")
        assert table.has_focus
        await pilot.press("escape")
        await wait_for(pilot, lambda: table.row_count == 2)

        status = screen.query_one("#grid-status", Static)
        seen: list[str] = []
        screen.set_interval(0.02, lambda: seen.append(str(status.render())))
        await pilot.press("r")
        await wait_for(pilot, lambda: not screen.busy)
        probing = [s for s in seen if s.startswith("probing:")]
        assert probing and all(" of 2 nodes answered, 0:0" in s for s in probing)
        assert screen.answered == 2
