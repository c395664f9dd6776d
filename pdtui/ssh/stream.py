"""Long-running remote commands read line by line, and local TCP port forwards."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import re
import shlex
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

import asyncssh

from pdtui.ssh.errors import CommandTimeout, SshError, map_runtime_error
from pdtui.ssh.target import SshTarget

Process = asyncssh.SSHClientProcess[bytes]
#: Opens a session channel under the node's channel budget: ``(process, release callback)``.
OpenProcess = Callable[
    [SshTarget, Callable[[asyncssh.SSHClientConnection], Awaitable[Process]]],
    Awaitable[tuple[Process, Callable[[], None]]],
]
#: Appends to the command log: ``(node, command, exit status, duration, started_at, error)``.
Record = Callable[[str, str, int | None, float, float, str | None], object]

_PGID = re.compile(rb"@@pdtui-pgid (\d+)\n")


def in_own_group(command: str) -> str:
    """``command`` run in a new session (``setsid``: its own process group), printing
    ``@@pdtui-pgid PGID`` first so that the group can be killed when the stream closes.
    Where ``setsid`` is missing the command runs as it is (and is not killed)."""
    inner = shlex.quote('echo "@@pdtui-pgid $$"; exec sh -c "$1"')
    return (
        f"if command -v setsid >/dev/null 2>&1; then exec setsid -w sh -c {inner} "
        f"pdtui-stream {shlex.quote(command)}; else {command}; fi"
    )


def kill_group_script(pgid: int) -> str:
    """TERM to process group ``pgid`` when it is still a session of its own (a group that
    ended and whose number was reused by another session is left alone)."""
    return (
        f'[ "$(ps -o sid= -p {pgid} 2>/dev/null | tr -d " ")" = {pgid} ] && '
        f"kill -TERM -{pgid} 2>/dev/null; true"
    )


class CommandStream:
    """Lines of a remote command's stdout, as they arrive.

    Use as ``async with pool.stream(t, cmd) as s: async for line in s: ...``; after the loop
    ``s.exit_status`` holds the exit status.  Cancelling the consuming task, ``break``-ing out of
    the ``async with`` block or calling :meth:`close` closes the channel.  The remote process is
    not killed by that (root ignores SSH signals): it gets SIGPIPE on its next write.  Lines are
    yielded without the trailing newline.  stderr is collected (last 64 KiB) in :attr:`stderr`
    unless ``merge_stderr=True``.  With ``kill_wrap`` the command was built with
    :func:`in_own_group` (its first line names its process group) and closing the stream
    also TERMs that group over a new channel, with the kill script passed through
    ``kill_wrap`` (to run where the command runs); a ``tail -F`` would otherwise run on until
    it next writes.
    """

    def __init__(
        self,
        open_channel: OpenProcess,
        record: Record,
        target: SshTarget,
        command: str,
        timeout: float | None,
        merge_stderr: bool,
        kill_wrap: Callable[[str], str] | None = None,
    ) -> None:
        self._open_channel = open_channel
        self._record = record
        self._target = target
        self.command = command
        self._timeout = timeout
        self._merge = merge_stderr
        self._kill_wrap = kill_wrap
        self._pgid: int | None = None
        self._first: bytes | None = None  # a first line that was not the pgid line
        self._lines: collections.deque[bytes] = collections.deque()  # read, not yet yielded
        self._rest: list[bytes] = []  # a partial line at the end of the last reads
        self._killer: asyncio.Task[None] | None = None
        self._proc: asyncssh.SSHClientProcess[bytes] | None = None
        self._release: Callable[[], None] | None = None
        self._stderr_task: asyncio.Task[None] | None = None
        self._stderr = bytearray()
        self._done = False
        self._deadline: float | None = None
        self.exit_status: int | None = None
        self.exit_signal: str | None = None
        self.started_at = time.time()
        self._t0 = time.monotonic()
        self.duration = 0.0
        self.error: SshError | None = None
        self.consumed = 0  # bytes of the lines handed out so far

    @property
    def node(self) -> str:
        return self._target.name

    @property
    def killer(self) -> asyncio.Task[None] | None:
        """The task killing the remote process group after a close, if one was started."""
        return self._killer

    @property
    def stderr(self) -> str:
        return self._stderr.decode(errors="replace")

    async def __aenter__(self) -> CommandStream:
        await self._open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> CommandStream:
        return self

    async def _open(self) -> None:
        if self._proc is not None or self._done:
            return
        self.started_at = time.time()
        self._t0 = time.monotonic()
        if self._timeout is not None:
            self._deadline = self._t0 + self._timeout
        stderr_target: Any = asyncssh.STDOUT if self._merge else asyncssh.PIPE

        command = self.command

        async def opener(conn: asyncssh.SSHClientConnection) -> asyncssh.SSHClientProcess[bytes]:
            proc: asyncssh.SSHClientProcess[bytes] = await conn.create_process(
                command, encoding=None, stderr=stderr_target
            )
            proc.stdin.write_eof()
            return proc

        try:
            proc, release = await self._open_channel(self._target, opener)
        except SshError as exc:
            self._finish_record(exc)
            raise
        self._proc = proc
        self._release = release
        if not self._merge:
            self._stderr_task = asyncio.get_running_loop().create_task(self._drain_stderr(proc))
        if self._kill_wrap is not None:
            first = await self._readline(proc)
            m = _PGID.fullmatch(first)
            if m is not None:
                self._pgid = int(m.group(1))
            else:
                self._first = first

    async def _readline(self, proc: Process) -> bytes:
        """The next line with its newline (the last one may lack it; ``b""`` at EOF). Reads
        64 KiB at a time and splits them here: one read per chunk, not one per line."""
        if self._first is not None:
            first, self._first = self._first, None
            return first
        while not self._lines:
            chunk = await self._read(proc)
            if not chunk:
                rest, self._rest = b"".join(self._rest), []
                return rest
            if b"\n" not in chunk:  # a long line: joined once, when it ends
                self._rest.append(chunk)
                continue
            parts = b"".join([*self._rest, chunk]).split(b"\n")
            self._rest = [parts.pop()]
            self._lines.extend(part + b"\n" for part in parts)
        return self._lines.popleft()

    async def _read(self, proc: Process) -> bytes:
        if self._deadline is None:
            return await proc.stdout.read(65536)
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        return await asyncio.wait_for(proc.stdout.read(65536), remaining)

    async def _drain_stderr(self, proc: asyncssh.SSHClientProcess[bytes]) -> None:
        with contextlib.suppress(Exception):
            while True:
                chunk = await proc.stderr.read(65536)
                if not chunk:
                    return
                self._stderr.extend(chunk)
                if len(self._stderr) > 65536:
                    del self._stderr[: len(self._stderr) - 65536]

    async def _next_raw(self) -> bytes:
        """The next line with its newline (``b""`` at the end); counted in :attr:`consumed`."""
        if self._proc is None and not self._done:
            await self._open()
        proc = self._proc
        if self._done or proc is None:
            return b""
        try:
            raw = await self._readline(proc)
        except asyncio.CancelledError:
            self._close(SshError(self.node, "stream cancelled"))
            raise
        except TimeoutError:
            tmo_err = CommandTimeout(self.node, self.command, self._timeout or 0.0, "", self.stderr)
            self._close(tmo_err)
            raise tmo_err from None
        except (asyncssh.Error, OSError) as exc:
            err = map_runtime_error(self.node, exc)
            self._close(err)
            raise err from None
        if not raw:
            await self._finish()
        self.consumed += len(raw)
        return raw

    async def __anext__(self) -> str:
        raw = await self._next_raw()
        if not raw:
            raise StopAsyncIteration
        line = raw.decode(errors="replace")
        return line[:-1] if line.endswith("\n") else line

    async def batch(self) -> list[str]:
        """Every line that has arrived, at least one (``[]`` at the end): one call and one
        decode per read chunk, not per line.  :attr:`consumed` counts their bytes."""
        raw = await self._next_raw()
        if not raw:
            return []
        more, self._lines = self._lines, collections.deque()
        tail = b"".join(more)
        self.consumed += len(tail)
        text = (raw + tail).decode(errors="replace")
        return (text[:-1] if text.endswith("\n") else text).split("\n")

    async def _finish(self) -> None:
        proc = self._proc
        if proc is None:
            return
        with contextlib.suppress(asyncio.TimeoutError, asyncssh.Error, OSError):
            await asyncio.wait_for(proc.wait_closed(), 5.0)
        if self._stderr_task is not None:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._stderr_task, 1.0)
        self.exit_status = proc.exit_status
        sig = proc.exit_signal
        self.exit_signal = sig[0] if sig else None
        self._close(None)

    def _finish_record(self, error: SshError | None) -> None:
        if self._done:
            return
        self._done = True
        self.duration = time.monotonic() - self._t0
        self.error = error
        self._record(
            self.node,
            self.command,
            self.exit_status,
            self.duration,
            self.started_at,
            None if error is None else str(error),
        )

    def _close(self, error: SshError | None) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            with contextlib.suppress(Exception):
                proc.close()
        if self._stderr_task is not None and not self._stderr_task.done() and error is not None:
            self._stderr_task.cancel()
        release, self._release = self._release, None
        if release is not None:
            release()
        pgid, self._pgid = self._pgid, None
        if pgid is not None and error is not None and self._kill_wrap is not None:
            script = self._kill_wrap(kill_group_script(pgid))
            with contextlib.suppress(RuntimeError):  # no running loop: nothing to kill with
                self._killer = asyncio.get_running_loop().create_task(self._kill(script))
        self._finish_record(error)
        self._proc = None

    async def _kill(self, script: str) -> None:
        """Run ``script`` (TERM to the command's process group) over a new channel; node
        trouble is ignored (a tail whose node is gone dies on its next write)."""

        async def opener(conn: asyncssh.SSHClientConnection) -> Process:
            proc: Process = await conn.create_process(script, encoding=None)
            proc.stdin.write_eof()
            return proc

        with contextlib.suppress(Exception):
            proc, release = await self._open_channel(self._target, opener)
            try:
                await asyncio.wait_for(proc.wait_closed(), 10.0)
            finally:
                proc.close()
                release()

    def close(self) -> None:
        """Close the channel now (synchronous; safe to call twice)."""
        if not self._done:
            self._close(SshError(self.node, "stream closed by caller"))

    async def aclose(self) -> None:
        proc = self._proc
        self.close()
        if proc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(proc.wait_closed(), 2.0)
        if self._killer is not None:
            # shielded: a cancelled consumer (ctrl+c, a closing app) still ends the remote group
            with contextlib.suppress(BaseException):
                await asyncio.shield(self._killer)

    def __del__(self) -> None:  # last-resort cleanup when a caller forgot to close
        if not self._done and self._proc is not None:
            with contextlib.suppress(Exception):
                self._close(SshError(self.node, "stream garbage-collected"))


class Forward:
    """A local TCP listener forwarding to ``remote_host:remote_port`` as seen from the node."""

    def __init__(
        self,
        node: str,
        listener: asyncssh.SSHListener,
        local_host: str,
        remote_host: str,
        remote_port: int,
    ) -> None:
        self.node = node
        self._listener = listener
        self.local_host = local_host
        self.local_port = listener.get_port()
        self.remote_host = remote_host
        self.remote_port = remote_port

    def close(self) -> None:
        self._listener.close()

    async def wait_closed(self) -> None:
        await self._listener.wait_closed()

    async def __aenter__(self) -> Forward:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
        await self.wait_closed()
