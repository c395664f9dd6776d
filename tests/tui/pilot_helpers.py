"""Shared helpers for Pilot tests."""

from __future__ import annotations

from collections.abc import Callable

from textual.pilot import Pilot


async def wait_for(pilot: Pilot[None], cond: Callable[[], bool], timeout: float = 30) -> None:
    """Let the app run until ``cond()`` holds (checked every 50 ms), or fail after ``timeout``."""
    for _ in range(int(timeout / 0.05)):
        if cond():
            return
        await pilot.pause(0.05)
    raise AssertionError("condition not reached")
