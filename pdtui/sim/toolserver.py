"""Answers fake-tool calls inside the simulator process, so a call costs no Python start-up.

A fake node's ``hccn_tool`` is a small bash wrapper. While the simulator runs, the wrapper
sends its arguments over loopback TCP (``/dev/tcp``) to this server, which answers from the
state file with the same code as ``python -m pdtui.sim.tools`` and sleeps the configured
latency without holding a CPU. When no server is listening the wrapper falls back to
``python -m pdtui.sim.tools``. Measured: a 2-node A3 probe (151 tool calls) took 12-14 s with
one Python process per call on 2 cores; see ``benchmarks/`` for the numbers with this server.

Protocol: the request is NUL-terminated fields ``argc node tool arg...``; the reply is one line
``rc stdout-bytes stderr-bytes`` followed by those bytes. A hanging tool never replies.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from pdtui.sim.faults import TOOL_NAMES, extra_latency_ms, tool_hangs, tool_missing
from pdtui.sim.state import SimState, StateError, load_state
from pdtui.sim.tools import run

PORT_FILE = "toolserver.port"


class ToolServer:
    """One server for every node of a simulator; the state file says who is who."""

    def __init__(self, state_path: Path) -> None:
        self.state_path = Path(state_path)
        self.port_file = self.state_path.parent / PORT_FILE
        self.calls = 0
        self._server: asyncio.Server | None = None
        self._cache: tuple[tuple[int, int], SimState] | None = None
        self._checked = 0.0
        self._answers: tuple[SimState | None, dict[tuple[str, ...], Call]] = (None, {})
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        tmp = self.port_file.with_suffix(".tmp")
        tmp.write_text(f"{port}\n")
        os.replace(tmp, self.port_file)

    async def stop(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.port_file.unlink()
        if self._server is not None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    def current_state(self) -> SimState | None:
        """The state answers come from now (a new object whenever the file changed)."""
        try:
            return self._state()
        except (StateError, OSError):
            return None

    def _state(self) -> SimState:
        """The state file, re-read when it changes (checked at most every 20 ms)."""
        now = time.monotonic()
        if self._cache is not None and now - self._checked < 0.02:
            return self._cache[1]
        self._checked = now
        st = self.state_path.stat()
        key = (st.st_mtime_ns, st.st_size)
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, load_state(self.state_path))
        return self._cache[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            fields = [
                (await reader.readuntil(b"\0"))[:-1].decode(errors="replace") for _ in range(3)
            ]
            argc = int(fields[0])
            node_name, tool = fields[1], fields[2]
            args = [
                (await reader.readuntil(b"\0"))[:-1].decode(errors="replace") for _ in range(argc)
            ]
            rc, out, err = await self._answer(node_name, tool, args, reader)
            writer.write(f"{rc} {len(out)} {len(err)}\n".encode() + out + err)
            await writer.drain()
        except (asyncio.IncompleteReadError, ValueError, ConnectionError):
            pass
        except asyncio.CancelledError:  # stop() while a hung call waits: end quietly
            pass
        finally:
            writer.close()
            if task is not None:
                self._tasks.discard(task)

    async def _answer(
        self, node_name: str, tool: str, args: list[str], reader: asyncio.StreamReader
    ) -> tuple[int, bytes, bytes]:
        async def hang() -> None:
            await reader.read()  # until the caller gives up (timeout kills the wrapper)
            raise ConnectionError("hung tool abandoned")

        return await self.answer(node_name, tool, args, hang)

    async def answer(
        self,
        node_name: str,
        tool: str,
        args: list[str],
        hang: Callable[[], Awaitable[None]],
    ) -> tuple[int, bytes, bytes]:
        """``(rc, stdout, stderr)`` of one fake tool call; a hanging tool awaits ``hang()``."""
        call = self.prepare(node_name, tool, args)
        if call.delay_ms:
            await asyncio.sleep(call.delay_ms / 1000)
        if call.hangs:
            await hang()
        return call.result

    def prepare(self, node_name: str, tool: str, args: list[str]) -> Call:
        """One fake tool call, answered now: what it prints, how long it takes, if it hangs.

        The fake tools are a function of the state, so answers are kept until it changes.
        """
        self.calls += 1
        try:
            state = self._state()
        except (StateError, OSError) as exc:
            return Call(0, False, (2, b"", f"{tool}: {exc}\n".encode()))
        key = (node_name, tool, *args)
        if self._answers[0] is not state:
            self._answers = (state, {})
        memo = self._answers[1]
        found = memo.get(key)
        if found is None:
            found = self._prepare(state, node_name, tool, args)
            if not (tool == "hccn_tool" and "-s" in args):
                memo[key] = found
        return found

    def _prepare(self, state: SimState, node_name: str, tool: str, args: list[str]) -> Call:
        try:
            node = state.node(node_name)
        except StateError as exc:
            return Call(0, False, (2, b"", f"{tool}: {exc}\n".encode()))
        if tool not in TOOL_NAMES or tool_missing(node, tool):
            return Call(0, False, (127, b"", f"{tool}: command not found\n".encode()))
        delay = max(0, state.latency_ms) + extra_latency_ms(node)
        if tool_hangs(node, tool):
            return Call(delay, True, (0, b"", b""))
        o = run(tool, args, state, node)
        if tool == "hccn_tool" and "-s" in args:
            self._cache = None  # a set command may have written the state
        return Call(delay, False, (o.rc, "".join(o.out).encode(), "".join(o.err).encode()))


@dataclass(frozen=True)
class Call:
    """A fake tool call: its answer, after ``delay_ms``; or, if ``hangs``, never."""

    delay_ms: int
    hangs: bool
    result: tuple[int, bytes, bytes]
