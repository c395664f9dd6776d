"""Pollers: own interval, never overlapping, paused while nobody needs them."""

from __future__ import annotations

import asyncio
import contextlib

from pdtui.live.poll import Poller, Scheduler


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Gate:
    """A poll body that waits until released, counting its runs."""

    def __init__(self) -> None:
        self.runs = 0
        self.open = asyncio.Event()

    async def __call__(self) -> None:
        self.runs += 1
        await self.open.wait()


async def test_a_poller_runs_only_while_needed_and_never_overlaps() -> None:
    clock = Clock()
    gate = Gate()
    sched = Scheduler(clock, [Poller("npu", 15.0, gate, frozenset({"npu"}))])
    assert sched.start_due() == []  # nobody needs the NPU topic: paused
    release = sched.need(["npu"])
    (task,) = sched.start_due()
    await asyncio.sleep(0)
    assert gate.runs == 1 and sched.start_due() == []  # still running: never a second one
    clock.now = 100.0
    assert sched.start_due() == []
    gate.open.set()
    await task
    poller = sched.pollers[0]
    assert poller.next_due == 115.0  # the interval counts from the end of the run
    clock.now = 114.0
    assert sched.start_due() == []
    clock.now = 115.0
    release()
    assert sched.start_due() == []  # hidden view: paused
    sched.need(["npu"])
    (task,) = sched.start_due()
    await task
    assert gate.runs == 2


async def test_a_failing_poll_is_kept_as_text_and_the_poller_goes_on() -> None:
    clock = Clock()

    async def boom() -> None:
        raise RuntimeError("hccn_tool timed out on prefill-0\x1b[2J")

    sched = Scheduler(clock, [Poller("npu", 5.0, boom, frozenset({"npu"}))])
    sched.need(["npu"])
    (task,) = sched.start_due()
    await task
    poller = sched.pollers[0]
    assert poller.last_error == "RuntimeError: hccn_tool timed out on prefill-0\\x1b[2J"
    assert poller.next_due == 5.0 and poller.runs == 1


async def test_refresh_makes_a_poller_due_now() -> None:
    clock = Clock()
    gate = Gate()
    gate.open.set()
    sched = Scheduler(clock, [Poller("proxy", 10.0, gate, frozenset({"proxy"}))])
    sched.need(["proxy", "proxy"])
    (task,) = sched.start_due()
    await task
    assert sched.start_due() == []
    sched.refresh("proxy")
    (task,) = sched.start_due()
    await task
    assert gate.runs == 2


async def test_run_loop_starts_due_pollers_and_stops_cleanly() -> None:
    clock = Clock()
    ran = asyncio.Event()

    async def body() -> None:
        ran.set()

    sched = Scheduler(clock, [Poller("processes", 3.0, body, frozenset({"processes"}))])
    sched.need(["processes"])
    loop = asyncio.create_task(sched.run(tick=0.01))
    await ran.wait()
    loop.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await loop
    assert sched.pollers[0].runs == 1
