"""hccn_tool printing garbage, printing nothing or hanging: the grid says so, the app carries on.

prefill-0's hccn_tool is a wrapper around the simulator's fake whose device 3 prints garbage
and whose device 5 prints nothing. (The simulator's ``tool-output=garbage|empty`` fault goes
through a bash wrapper that cannot carry NUL bytes; this wrapper prints NUL, 0xff and a fake
probe frame as well.) decode-0's
hccn_tool hangs on every call (the simulator's ``tool-hang=hccn_tool`` fault). The probe's
per-call timeout is cut to 4 s so that the hang ends inside the test's budget.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from simdata import runbook_sim
from textual.widgets import DataTable, Static
from tui.pilot_helpers import wait_for

from pdtui import cluster as cl
from pdtui.settings import Settings
from pdtui.sim.rig import Simulator
from pdtui.tui.app import PdTui
from pdtui.tui.screens.grid import DeviceDetailScreen, GridScreen
from pdtui.tui.screens.modes import OverviewScreen

PROBE_TIMEOUT = 4
#: A printf format for bytes no parser expects: binary, an escape sequence, a fake probe
#: frame, half a table.
GARBAGE = (
    r"\x00\xff\xfe#@!%%%%garbage\n\x1b[31mRED\x1b[0m\n"
    r"@@PDTUI:0000000000000000 d4.link 0 out\n| link status | "
)


def _current(app: PdTui) -> object:
    """The screen on top (a plain object: mypy keeps an earlier isinstance narrowing)."""
    return app.screen


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[Simulator]:
    async with runbook_sim(tmp_path, "127.0.42", "decode-0:tool-hang=hccn_tool") as s:
        yield s


def flaky_cluster(sim: Simulator, tmp_path: Path) -> cl.Cluster:
    """The simulator's cluster with prefill-0's hccn_tool wrapped (device 3 garbage, 5 empty)."""
    real = sim.dir / "nodes" / "prefill-0" / "bin" / "hccn_tool"
    wrapper = tmp_path / "flaky-bin" / "hccn_tool"
    wrapper.parent.mkdir()
    wrapper.write_text(
        "#!/bin/bash\n"
        'case " $* " in\n'
        f"  *' -i 3 '*) printf '{GARBAGE}'; exit 0 ;;\n"
        "  *' -i 5 '*) exit 0 ;;\n"
        "esac\n"
        f'exec {shlex.quote(str(real))} "$@"\n'
    )
    wrapper.chmod(0o755)
    spec = cl.load(sim.cluster_file).spec
    spec.nodes[0].tools = cl.ToolPaths(hccn_tool=str(wrapper))
    assert spec.nodes[0].name == "prefill-0"
    path = tmp_path / "flaky.toml"
    cl.save(spec, path)
    return cl.load(path)


@pytest.mark.slow
async def test_garbage_empty_and_hanging_hccn_tool_are_marked_with_a_reason(
    sim: Simulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(GridScreen, "probe_timeout", PROBE_TIMEOUT)
    app = PdTui(flaky_cluster(sim, tmp_path), settings=Settings(), persist_settings=False)
    async with app.run_test(size=(190, 40)) as pilot:
        t0 = time.monotonic()
        await pilot.press("f3")
        grid = app.screen
        assert isinstance(grid, GridScreen)
        table = grid.query_one("#grid", DataTable)

        def cell(row: str, col: str) -> str:
            return str(table.get_cell(row, col))

        async def detail(row: str, col: str) -> str:
            table.cursor_coordinate = table.get_cell_coordinate(row, col)
            await pilot.pause()
            return str(grid.query_one("#grid-detail-text", Static).render())

        # prefill-0 lands while decode-0's hung tools are still running.
        await wait_for(pilot, lambda: "prefill-0" in grid.nodes)
        assert "decode-0" not in grid.nodes and grid.busy
        # On A3 an answer without a vNIC IP fails the device; every reason names the output.
        assert cell("prefill-0", "d3") == "✗ FAIL" and cell("prefill-0", "d5") == "✗ FAIL"
        assert all(cell("prefill-0", f"d{i}") == "✓ ok" for i in range(16) if i not in (3, 5))
        assert cell("prefill-0", "summary").startswith("✗ 14/16 ok  2 fail")
        assert cell("decode-0", "summary").startswith("? no data")
        garbage = await detail("prefill-0", "d3")
        assert "missing vNIC IP (unparsable output: " in garbage
        assert "no data: link (unparsable output: " in garbage and "garbage" in garbage
        empty = await detail("prefill-0", "d5")
        assert "missing vNIC IP (hccn_tool printed nothing)" in empty
        assert "no data: link (hccn_tool printed nothing)" in empty

        # The app answers keys while the probe hangs: other modes, refresh, filter.
        await pilot.press("f2")
        assert isinstance(app.screen, OverviewScreen)
        await pilot.press("f3")
        assert _current(app) is grid and grid.busy
        await pilot.press("f")  # failing only: the healthy cells fold away
        assert cell("prefill-0", "d0") == "·" and cell("prefill-0", "d3") == "✗ FAIL"
        await pilot.press("f")
        assert cell("prefill-0", "d0") == "✓ ok"

        # The hang ends at the probe's timeout: every decode-0 device unknown, saying why.
        await wait_for(pilot, lambda: not grid.busy and "decode-0" in grid.nodes, timeout=20)
        assert time.monotonic() - t0 >= PROBE_TIMEOUT
        assert cell("decode-0", "summary").startswith("? 0/16 ok  16 ?")
        assert all(cell("decode-0", f"d{i}") == "? ?" for i in range(16))
        assert "no data: link (hccn_tool timed out (rc 124))" in await detail("decode-0", "d7")
        assert cell("prefill-0", "summary").startswith("✗ 14/16 ok  2 fail")

        # The raw output behind the garbage cell is shown as text, never interpreted.
        table.cursor_coordinate = table.get_cell_coordinate("prefill-0", "d3")
        await pilot.press("enter")
        assert isinstance(app.screen, DeviceDetailScreen)
        raw = str(app.screen.query_one("#detail-box Static", Static).render())
        assert "hccn_tool -i 3 -link -g   (rc 0)" in raw and "garbage" in raw
        # Control characters are shown, not sent to the operator's terminal.
        assert "\\x1b[31mRED" in raw and "\\x00" in raw
        assert "\x1b" not in raw and "\x00" not in raw
        await pilot.press("escape")
        assert _current(app) is grid and app.is_running
