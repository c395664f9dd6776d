"""The grid's auto-refresh never starts a sweep while one is still running.

decode-0's tools are slow (``slow`` fault), so a sweep takes about a second, and the grid's
refresh interval is cut to 50 ms: far shorter than a sweep. While the grid polls, the test
also presses ``r`` (refresh now) and ``p`` (ping) in the middle of sweeps and toggles the
auto-refresh off and on, both during a sweep and between two.

Watched without mocks, from the outside, every few milliseconds: the app's workers (the
grid's "NPU sweep" workers, which are exclusive, so a second one would cancel the first) and
the app's health report (``PdTui.health``, replaced by every finished sweep with its start
time and duration).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from simdata import runbook_sim
from textual.pilot import Pilot
from textual.worker import Worker, WorkerState
from tui.pilot_helpers import wait_for

from pdtui.cluster import load
from pdtui.npu.health import CheckReport
from pdtui.settings import Settings
from pdtui.sim.rig import Simulator
from pdtui.tui.app import PdTui
from pdtui.tui.screens.grid import GridScreen, PingMatrixScreen

SLOW_MS = 250
SWEEP = "NPU sweep"


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[Simulator]:
    async with runbook_sim(tmp_path, "127.0.47", f"decode-0:slow={SLOW_MS}", inproc=True) as s:
        yield s


class Watch:
    """Samples the app's sweep workers and health report."""

    def __init__(self, app: PdTui) -> None:
        self.app = app
        self.workers: dict[int, Worker[object]] = {}
        self.most_running = 0
        self.reports: list[CheckReport] = []

    def sample(self) -> None:
        running = 0
        for w in list(self.app.workers):
            if w.name == SWEEP:
                self.workers.setdefault(id(w), w)
                running += w.state == WorkerState.RUNNING
        self.most_running = max(self.most_running, running)
        h = self.app.health
        if h is not None and (not self.reports or h is not self.reports[-1]):
            self.reports.append(h)

    async def run_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.sample()
            await asyncio.sleep(0.005)


@asynccontextmanager
async def grid_app(sim: Simulator) -> AsyncIterator[tuple[Watch, Pilot[None], GridScreen]]:
    """The app on the grid, auto-refreshing every 0.05 s (far shorter than a sweep)."""
    app = PdTui(load(sim.cluster_file), settings=Settings(), persist_settings=False)
    watch = Watch(app)
    async with app.run_test(size=(190, 40)) as pilot:
        app.switch_mode("grid")
        grid = app.screen
        assert isinstance(grid, GridScreen)
        grid.interval = 0.05
        yield watch, pilot, grid


@pytest.mark.slow
async def test_auto_refresh_never_overlaps_sweeps(sim: Simulator) -> None:
    async with grid_app(sim) as (watch, pilot, grid):
        await wait_for(pilot, lambda: grid.busy, timeout=10)  # connect_on_start: first sweep
        t0 = time.monotonic()
        await watch.run_for(1.5)
        # During a sweep: refresh now, ping, auto-refresh off and on again.
        await wait_for(pilot, lambda: grid.busy, timeout=5)
        await pilot.press("r", "p", "a", "a")
        assert grid.auto
        await watch.run_for(1.5)
        # Between two sweeps: auto-refresh off and on (arms a second timer) and refresh now.
        await wait_for(pilot, lambda: not grid.busy, timeout=5)
        await pilot.press("a", "a", "r")
        await watch.run_for(3.0)
        polled = time.monotonic() - t0
        grid.auto = False
        await wait_for(pilot, lambda: not grid.busy, timeout=10)
        watch.sample()

    assert watch.most_running == 1
    states = [w.state for w in watch.workers.values()]
    started = len(states)
    completed = states.count(WorkerState.SUCCESS)
    assert WorkerState.CANCELLED not in states and WorkerState.ERROR not in states, states
    assert started - completed in (0, 1), states  # at most one in flight at the end
    assert started >= 4, f"only {started} sweeps in {polled:.1f} s"
    # Every finished sweep published a report; none began before the previous one ended.
    sweeps = [r for r in watch.reports if r.seconds > 0]  # (pings publish with 0 s)
    assert len(sweeps) >= completed - 1
    for a, b in itertools.pairwise(sweeps):
        assert b.started_at >= a.started_at + a.seconds, (a.started_at, a.seconds, b.started_at)
    slow = [r.seconds for r in sweeps]
    assert min(slow) >= SLOW_MS / 1000, slow  # the slow node held every sweep up
    assert all(d.state == "ok" for r in sweeps for n in r.nodes for d in n.devices)


@pytest.mark.slow
async def test_auto_refresh_turned_on_during_a_ping_run_starts_when_it_ends(
    sim: Simulator,
) -> None:
    async with grid_app(sim) as (watch, pilot, grid):
        app = grid.app
        await wait_for(pilot, lambda: grid.last_seconds is not None, timeout=10)
        await pilot.press("a")  # auto-refresh off
        await wait_for(pilot, lambda: not grid.busy, timeout=5)
        await pilot.press("p")
        await wait_for(pilot, lambda: grid.busy, timeout=5)
        await pilot.press("a")  # on again while the ping run holds the grid
        await wait_for(pilot, lambda: isinstance(app.screen, PingMatrixScreen), timeout=10)
        await pilot.press("escape")
        assert app.screen is grid and grid.auto
        watch.sample()
        before = len(watch.workers)
        await watch.run_for(2.5)
        assert len(watch.workers) >= before + 2, "auto-refresh never started after the pings"
        assert watch.most_running == 1
