"""The Runbook view's Doctor step through Pilot against the simulator: the findings, and enter
going to the view that fixes one."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from simdata import runbook_sim
from textual.widgets import DataTable, OptionList

from pdtui.cluster import load
from pdtui.settings import Settings
from pdtui.tui.app import PdTui
from pdtui.tui.screens.doctor import DoctorScreen
from pdtui.tui.screens.launch import LaunchScreen
from pdtui.tui.screens.overview import OverviewScreen
from tui.pilot_helpers import wait_for


@pytest.mark.slow
async def test_doctor_step_lists_live_findings_and_enter_goes_to_the_fix(tmp_path: Path) -> None:
    async with runbook_sim(tmp_path, "127.0.62") as sim:
        cluster = load(sim.cluster_file)
        app = PdTui(cluster, settings=Settings(), persist_settings=False)
        decode = next(i for i in cluster.instances if i.role == "decode")
        async with app.run_test(size=(140, 45)) as pilot:
            screen = app.screen
            assert isinstance(screen, OverviewScreen)
            steps = screen.query_one("#steps", DataTable)
            steps.focus()
            steps.move_cursor(row=steps.get_row_index("doctor"))
            await pilot.press("enter")  # before any run: the cluster file's own findings
            dialog = app.screen
            assert isinstance(dialog, DoctorScreen) and "cluster file only" in dialog.title_text
            assert [f.id for f in dialog.findings] == ["startup-timeout"]
            await pilot.press("escape")
            with socket.socket() as taken:
                taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                taken.bind((cluster.node(decode.node).host, decode.port))
                taken.listen()
                await pilot.press("d")
                await wait_for(pilot, lambda: isinstance(app.screen, DoctorScreen))
            dialog = app.screen
            assert isinstance(dialog, DoctorScreen)
            ids = [f.id for f in dialog.findings]
            assert ids[0] == "port-in-use"
            step = next(st for st in screen.steps if st.key == "doctor")
            assert step.state == "failed" and step.reason == "port-in-use: node decode-0"
            options = dialog.query_one("#doctor-list", OptionList)
            options.highlighted = 0
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, LaunchScreen))
