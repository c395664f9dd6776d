"""The prompt console driven through Pilot against the simulated PD deployment."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from simdata import runbook_sim
from textual.widgets import Static, TextArea

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
from pdtui.tui.screens.dialogs import PickScreen, TextScreen
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
            assert {p.state for p in await wait_ready(pool, cluster, timeout=60,
                                                      interval=0.3)} == {"ready"}
            yield s
            await stop_all(pool, cluster, grace=5)



def status(app: PdTui) -> str:
    return str(app.screen.query_one("#console-status", Static).render())


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
        await wait_for(pilot, lambda: isinstance(app.screen, TextScreen))
        report = str(app.screen.query("#text-box Static").last(Static).render())
        assert "prefill-0 (prefill-0" in report and "decode-0 (decode-0" in report
        assert report.count("/health 200") == 2 and "max_model_len 32768: ok" in report
        await pilot.press("escape")
        assert screen.max_model_len == 32768
        before = status(app)
        await pilot.press("ctrl+j")  # now refused before sending: it cannot fit
        await pilot.pause(0.3)
        assert status(app) == before
        assert any("> max_model_len 32768" in str(n.message) for n in app._notifications)
