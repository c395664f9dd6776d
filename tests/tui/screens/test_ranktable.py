"""The ranktable editor driven through Pilot against the simulator."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from simdata import runbook_sim
from textual.coordinate import Coordinate
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static

from pdtui.cluster import load
from pdtui.settings import Settings
from pdtui.sim.rig import Simulator
from pdtui.tui.app import PdTui
from pdtui.tui.screens.dialogs import ConfirmScreen
from pdtui.tui.screens.edit_cell import EditCellScreen
from pdtui.tui.screens.ranktable import RanktableScreen
from tui.pilot_helpers import wait_for


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[Simulator]:
    async with runbook_sim(tmp_path, "127.0.12") as s:
        yield s


async def generated(app: PdTui, pilot: Pilot[None]) -> RanktableScreen:
    await pilot.press("f4")
    screen = app.screen
    assert isinstance(screen, RanktableScreen)
    await pilot.press("g")
    await wait_for(pilot, lambda: screen.rt is not None and not screen.busy)
    return screen


@pytest.mark.slow
async def test_generate_edit_save_and_push(sim: Simulator) -> None:
    app = PdTui(load(sim.cluster_file), settings=Settings(), persist_settings=False)
    async with app.run_test(size=(160, 50)) as pilot:
        screen = await generated(app, pilot)
        assert screen.rt is not None
        assert len(screen.rt["prefill_device_list"]) == 16
        table = screen.query_one("#prefill_device_list", DataTable)
        table.focus()
        table.cursor_coordinate = Coordinate(2, 2)  # device_ip of entry 2
        await pilot.press("e")
        assert isinstance(app.screen, EditCellScreen)
        field = app.screen.query_one("#edit-input", Input)
        field.value = "not-an-ip"
        await pilot.press("enter")
        assert isinstance(app.screen, EditCellScreen)  # refused
        assert "IPv4" in str(app.screen.query_one("#edit-error", Static).render())
        field.value = "192.25.2.199"  # a duplicate of entry 0
        await pilot.press("enter")
        assert not isinstance(app.screen, EditCellScreen)
        assert screen.rt["prefill_device_list"][2]["device_ip"] == "192.25.2.199"
        assert any(f.field == "device_ip" and f.severity == "error" for f in screen.findings)

        # Selecting the finding jumps to its cell.
        findings = screen.query_one("#rt-findings", DataTable)
        findings.focus()
        row = next(
            i
            for i, f in enumerate(screen.findings)
            if f.list == "prefill_device_list" and f.field == "device_ip"
        )
        findings.move_cursor(row=row)
        await pilot.press("enter")
        assert app.focused is table and table.cursor_coordinate.column == 2

        await pilot.press("p")  # refused: lint errors
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)

        table.cursor_coordinate = (2, 2)
        await pilot.press("e")
        app.screen.query_one("#edit-input", Input).value = "192.25.2.197"
        await pilot.press("enter")
        await pilot.press("s")
        assert screen.path is not None and screen.path.exists()
        saved = json.loads(screen.path.read_text())
        assert saved["prefill_device_list"][2]["device_ip"] == "192.25.2.197"

        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(
            pilot,
            lambda: (
                not screen.busy and screen.copies and all(c.state == "same" for c in screen.copies)
            ),
        )
    cluster = load(sim.cluster_file)
    for n in cluster.nodes:
        assert Path(cluster.ranktable_path(n)).read_text() == screen.path.read_text()


@pytest.mark.slow
async def test_add_remove_and_move_renumber_cluster_ids(sim: Simulator) -> None:
    app = PdTui(load(sim.cluster_file), settings=Settings(), persist_settings=False)
    async with app.run_test(size=(160, 50)) as pilot:
        screen = await generated(app, pilot)
        assert screen.rt is not None
        table = screen.query_one("#decode_device_list", DataTable)
        table.focus()
        table.cursor_coordinate = Coordinate(0, 0)
        await pilot.press("x")
        ids = [
            e["cluster_id"]
            for lst in ("prefill_device_list", "decode_device_list")
            for e in screen.rt[lst]
        ]
        assert ids == [str(i) for i in range(1, 32)]
        first = screen.rt["decode_device_list"][0]["device_id"]
        await pilot.press("right_square_bracket")
        assert screen.rt["decode_device_list"][1]["device_id"] == first
        await pilot.press("a")
        assert len(screen.rt["decode_device_list"]) == 16
        assert screen.rt["decode_device_list"][-1]["cluster_id"] == "32"


async def test_the_view_knows_what_the_runbook_generated_and_pushed(tmp_path: Path) -> None:
    from pdtui.ranktable.sync import NodeCopy

    root = Path(__file__).resolve().parents[3]
    cluster_file = tmp_path / "c.toml"
    cluster_file.write_text((root / "sample_clusters" / "deepseek-v3.2-a3-1p1d.toml").read_text())
    app = PdTui(load(cluster_file), settings=Settings(), persist_settings=False, connect=False)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.press("f4")
        screen = app.screen
        assert isinstance(screen, RanktableScreen) and screen.rt is None
        await pilot.press("f2")
        # What a runbook run leaves: the file beside the cluster file, the model's record.
        text = (root / "tests" / "fixtures" / "ranktable" / "example_a3.json").read_text()
        (tmp_path / "c.ranktable.json").write_text(text)
        app.live.apply_generated(text, pushed_to=["prefill-0", "decode-0"])
        app.live.apply_copies(
            [
                NodeCopy("prefill-0", "/rt", text, "same"),
                NodeCopy("decode-0", "/rt", None, "missing"),
            ]
        )
        await pilot.press("f4")
        await pilot.pause()
        assert screen.rt is not None and screen.saved_text == text
        status = str(screen.query_one("#rt-status", Static).render())
        assert "nodes: ✓ prefill-0 same  ✗ decode-0 missing" in status
        assert "the runbook generated it at " in status and "pushed it to 2 nodes" in status


@pytest.mark.slow
async def test_generate_shows_how_many_nodes_answered(sim: Simulator) -> None:
    app = PdTui(load(sim.cluster_file), settings=Settings(), persist_settings=False)
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.press("f4")
        screen = app.screen
        assert isinstance(screen, RanktableScreen)
        seen: list[str] = []
        show = screen._render_status

        def record() -> None:
            seen.append(screen.busy)
            show()

        screen._render_status = record  # type: ignore[method-assign]
        await pilot.press("g")
        await wait_for(pilot, lambda: screen.rt is not None and not screen.busy)
    assert any("2 of 2 nodes answered, 0:0" in s for s in seen), seen
