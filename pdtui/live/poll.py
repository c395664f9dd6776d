"""Pollers: each on its own interval, never overlapping itself, paused while nobody needs it.

A poller feeds some topics of the live model. A view (or a CLI ``--watch``) declares what it
shows with ``need(topics)`` and releases it when hidden; a poller runs only while one of its
topics is needed. The next run is due ``interval`` seconds after the previous one *ended*, so a
slow poll (a node timing out) never stacks up behind itself.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from pdtui.live.model import Clock, Topic
from pdtui.text import printable


@dataclass
class Poller:
    name: str
    interval: float
    run: Callable[[], Awaitable[None]]
    topics: frozenset[Topic]
    running: bool = False
    next_due: float = 0.0
    runs: int = 0
    last_error: str | None = None


@dataclass
class Scheduler:
    clock: Clock
    pollers: list[Poller] = field(default_factory=list)
    _demand: Counter[Topic] = field(default_factory=Counter)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _wake: asyncio.Event | None = None

    def need(self, topics: Iterable[Topic]) -> Callable[[], None]:
        """Declare that something shows ``topics``; call the result when it no longer does."""
        wanted = list(topics)
        self._demand.update(wanted)
        self._poke()
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._demand.subtract(wanted)

        return release

    def active(self, poller: Poller) -> bool:
        return any(self._demand[t] > 0 for t in poller.topics)

    def due(self, now: float | None = None) -> list[Poller]:
        t = self.clock() if now is None else now
        return [p for p in self.pollers if self.active(p) and not p.running and t >= p.next_due]

    def refresh(self, name: str) -> None:
        """Make one poller due now (it still never overlaps itself)."""
        for p in self.pollers:
            if p.name == name:
                p.next_due = 0.0
        self._poke()

    async def poll(self, poller: Poller) -> None:
        """One run of ``poller``; its failure is kept as text, never raised."""
        poller.running = True
        try:
            await poller.run()
            poller.last_error = None
        except Exception as exc:  # a poll's failure is shown, it never stops the others
            poller.last_error = printable(f"{type(exc).__name__}: {exc}")
        finally:
            poller.running = False
            poller.runs += 1
            poller.next_due = self.clock() + poller.interval
            self._poke()

    def start_due(self) -> list[asyncio.Task[None]]:
        started = []
        for p in self.due():
            p.running = True  # taken at once, so a second call never starts it again
            task = asyncio.create_task(self.poll(p), name=f"poll {p.name}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            started.append(task)
        return started

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def _sleep_for(self, tick: float) -> float:
        now = self.clock()
        waits = [p.next_due - now for p in self.pollers if self.active(p) and not p.running]
        return max(0.0, min([tick, *waits]))

    async def run(self, tick: float = 1.0) -> None:
        """Start due pollers until cancelled; wakes early on ``need``, ``refresh`` or an end."""
        self._wake = asyncio.Event()
        try:
            while True:
                self.start_due()
                self._wake.clear()
                waiter = asyncio.ensure_future(self._wake.wait())
                try:  # asyncio.wait, not wait_for: 3.11's wait_for can swallow a cancel
                    await asyncio.wait({waiter}, timeout=self._sleep_for(tick))
                finally:
                    waiter.cancel()
        finally:
            await self.close()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
