"""The app on a cluster whose nodes serve from containers (real podman): the NPU grid's summary
shows each node's container, the Launch view where each process runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable, Static
from tui.pilot_helpers import wait_for

from pdtui.cluster import load
from pdtui.settings import Settings
from pdtui.sim.rig import Simulator, runbook_spec
from pdtui.tui.app import PdTui
from pdtui.tui.screens.grid import GridScreen
from pdtui.tui.screens.launch import LaunchScreen

PREFIX = "127.0.96"


@pytest.mark.slow
async def test_grid_and_launch_view_show_the_containers(tmp_path: Path, podman_conf: Path) -> None:
    sim = Simulator(
        runbook_spec(),
        tmp_path / "c.toml",
        latency_ms=0,
        address_prefix=PREFIX,
        port=0,
        containers=True,
        faults=["decode-0:container-missing-mount=/etc/hccn.conf"],
    )
    async with sim:
        cluster = load(sim.cluster_file)
        names = {n.name: n.container.name for n in cluster.nodes}  # type: ignore[union-attr]
        app = PdTui(cluster, settings=Settings(), persist_settings=False)
        async with app.run_test(size=(200, 40)) as pilot:
            await pilot.press("f3")
            grid = app.screen
            assert isinstance(grid, GridScreen)
            await wait_for(pilot, lambda: len(grid.boxes) == 2 and not grid.busy)
            table = grid.query_one("#grid", DataTable)
            pre = str(table.get_cell("prefill-0", "summary"))
            dec = str(table.get_cell("decode-0", "summary"))
            # the summary keeps to the state; why, and vLLM's version, are in the detail pane
            assert pre.endswith("container running") and "✗ container running" in dec, dec
            detail = grid.query_one("#grid-detail-text", Static)
            table.focus()
            table.cursor_coordinate = table.get_cell_coordinate("prefill-0", "node")
            await pilot.pause()
            assert "container running, vllm-ascend 0.11.0rc0" in str(detail.render())
            table.cursor_coordinate = table.get_cell_coordinate("decode-0", "node")
            await pilot.pause()
            assert "✗ container running: 1 missing inside" in str(detail.render())
            await pilot.press("f5")
            launch = app.screen
            assert isinstance(launch, LaunchScreen)
            rows = launch.query_one("#processes", DataTable)
            assert str(rows.get_cell("decode-0", "runs in")) == f"container {names['decode-0']}"
            assert str(rows.get_cell("proxy", "runs in")) == f"container {names['prefill-0']}"


@pytest.mark.slow
async def test_c_in_the_runbook_view_starts_a_stopped_container(
    tmp_path: Path, podman_conf: Path
) -> None:
    import subprocess

    from pdtui.sim.podman import runtime_env
    from pdtui.tui.screens.overview import OverviewScreen

    sim = Simulator(
        runbook_spec(),
        tmp_path / "c.toml",
        latency_ms=0,
        address_prefix=PREFIX,
        port=0,
        containers=True,
        faults=["prefill-0:container-stopped"],
    )
    async with sim:
        cluster = load(sim.cluster_file)
        name = cluster.node("prefill-0").container.name  # type: ignore[union-attr]
        app = PdTui(cluster, settings=Settings(), persist_settings=False)
        async with app.run_test(size=(200, 40)) as pilot:
            await pilot.press("f2")
            view = app.screen
            assert isinstance(view, OverviewScreen)
            assert [st.key for st in view.steps][:2] == ["containers", "network"]
            await pilot.press("c")
            await pilot.press("y")

            def done() -> bool:
                return next(st for st in view.steps if st.key == "containers").state in (
                    "passed",
                    "failed",
                )

            await wait_for(pilot, done)
            step = next(st for st in view.steps if st.key == "containers")
            assert step.state == "passed", (step.reason, step.details)
            assert "prefill-0: " + name + " started" in step.details
        state = subprocess.run(
            ["podman", "inspect", "--format", "{{.State.Status}}", name],
            env=runtime_env(podman_conf),
            capture_output=True,
            text=True,
        )
        assert state.stdout.strip() == "running"
