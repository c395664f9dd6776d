"""SSH connection pool for pdtui (core; no Textual import).

Design (see ``reference/ssh.md`` §3.1):

* one persistent asyncssh connection per node, opened lazily and reused by every call;
* one shared connection per jump-host chain, passed to asyncssh as ``tunnel=`` (multi-hop chains
  build on each other), so direct-tcpip channels - which sshd does not count against
  ``MaxSessions`` - carry every node behind a bastion;
* a global semaphore caps connects in flight (sshd ``MaxStartups`` drops bursts);
* a per-node semaphore caps concurrent session channels (sshd ``MaxSessions`` is 10 and frees
  slots late); a refused channel open is retried with a short jittered backoff so work queues
  instead of failing;
* a lost connection is reconnected on next use; failed connects back off exponentially
  (1, 2, 4 ... 30 s).  Authentication and host-key failures are never retried automatically:
  they stay until the operator acts (``trust_host_key`` / ``reset``);
* host keys are checked against the user's known_hosts plus pdtui's own file; unknown keys raise
  :class:`HostKeyUnknown` (the UI prompts, then calls :meth:`SshPool.trust_host_key`), changed
  keys raise :class:`HostKeyChanged` and are never accepted;
* every remote command is recorded (redacted) in :attr:`SshPool.command_log`.

Timeouts: ``connect_timeout`` covers TCP connect, key exchange and authentication.
``command_timeout`` only stops *waiting*: asyncssh closes the channel but the remote process is
not killed (and root sessions ignore SSH signal requests anyway).  Remote scripts that may hang
must carry their own ``timeout N ...``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import getpass
import hashlib
import os
import posixpath
import random
import re
import secrets
import shlex
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import asyncssh
from asyncssh.constants import (
    OPEN_REQUEST_PTY_FAILED,
    OPEN_REQUEST_SESSION_FAILED,
    OPEN_REQUEST_X11_FORWARDING_FAILED,
)

__all__ = [
    "AuthFailed",
    "ChannelRefused",
    "CommandRecord",
    "CommandResult",
    "CommandStream",
    "CommandTimeout",
    "ConnectionLostError",
    "EffectiveTarget",
    "Forward",
    "HostKeyChanged",
    "HostKeyError",
    "HostKeyStore",
    "HostKeyUnknown",
    "NodeState",
    "NodeStatus",
    "PoolStats",
    "PutResult",
    "RemoteCommandError",
    "SshError",
    "SshPool",
    "SshTarget",
    "Unreachable",
    "backoff_delay",
    "redact",
]

T = TypeVar("T")

# ---------------------------------------------------------------------------------------------
# Targets
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SshTarget:
    """One node as the operator configured it.  Explicit fields win over ``~/.ssh/config``.

    ``jump``: hops ``[user@]host[:port]`` (or ssh_config aliases), first hop first; when empty the
    ssh config's ``ProxyJump`` applies.  ``ssh_config``: ``()`` = ``~/.ssh/config`` if readable,
    ``None`` = do not read any config, otherwise the paths to read.
    """

    name: str
    host: str
    port: int | None = None
    user: str | None = None
    identity_files: tuple[str, ...] = ()
    jump: tuple[str, ...] = ()
    connect_timeout: float = 10.0
    command_timeout: float = 60.0
    ssh_config: tuple[str, ...] | None = ()


@dataclass(frozen=True)
class EffectiveTarget:
    """Settings a connect would use, resolved without connecting."""

    name: str
    host: str
    port: int
    user: str
    jump: tuple[str, ...]
    identity_files: tuple[str, ...]
    host_key_alias: str | None = None

    @property
    def known_hosts_name(self) -> str:
        """The name host keys are recorded under (``HostKeyAlias`` or the real host name)."""
        return self.host_key_alias or self.host


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


class SshError(Exception):
    """Base class: every failure of a pool operation, always naming the node.

    ``str()`` is one line: ``"<node>: <what happened> - <what to do>"``.
    """

    def __init__(self, node: str, message: str) -> None:
        super().__init__(node, message)
        self.node = node
        self.message = " ".join(message.split())

    def __str__(self) -> str:
        return f"{self.node}: {self.message}"


class Unreachable(SshError):
    """TCP connect refused / timed out / no route / no SSH answer."""


class AuthFailed(SshError):
    """The server refused every key we offered (never retried automatically)."""


class HostKeyError(SshError):
    """Common base of host-key failures (never retried automatically)."""

    def __init__(
        self,
        node: str,
        message: str,
        *,
        host: str,
        port: int,
        algorithm: str,
        fingerprint: str,
        key: asyncssh.SSHKey | None,
        target: SshTarget | None = None,
    ) -> None:
        super().__init__(node, message)
        self.host = host
        self.port = port
        self.algorithm = algorithm
        self.fingerprint = fingerprint
        self.key = key
        #: The target to pass to ``fetch_host_key``/``trust_host_key`` (a jump host's own target
        #: when the failing key belongs to a bastion).
        self.target = target


class HostKeyUnknown(HostKeyError):
    """No key is recorded for this host: the UI may offer to trust the shown fingerprint."""


class HostKeyChanged(HostKeyError):
    """The host presented a key different from the recorded one.  Never accepted."""

    def __init__(
        self,
        node: str,
        message: str,
        *,
        host: str,
        port: int,
        algorithm: str,
        fingerprint: str,
        key: asyncssh.SSHKey | None,
        target: SshTarget | None = None,
        known_hosts_file: str | None = None,
        known_hosts_line: int | None = None,
    ) -> None:
        super().__init__(
            node,
            message,
            host=host,
            port=port,
            algorithm=algorithm,
            fingerprint=fingerprint,
            key=key,
            target=target,
        )
        self.known_hosts_file = known_hosts_file
        self.known_hosts_line = known_hosts_line


class CommandTimeout(SshError):
    """The command did not finish in time.  The remote process was NOT killed."""

    def __init__(
        self, node: str, command: str, timeout: float, stdout: str = "", stderr: str = ""
    ) -> None:
        super().__init__(
            node,
            f"command timed out after {timeout:g}s: {_short(command)} - the remote process may "
            "still be running; embed `timeout N` in remote scripts",
        )
        self.command = command
        self.timeout = timeout
        self.stdout = stdout
        self.stderr = stderr


class ConnectionLostError(SshError):
    """The SSH connection dropped; it is re-established on next use."""


class ChannelRefused(SshError):
    """The server kept refusing to open a channel (session or port forward)."""


class RemoteCommandError(SshError):
    """A command that had to succeed exited non-zero (``check=True``, put verification)."""

    def __init__(
        self, node: str, command: str, exit_status: int | None, stderr: str = ""
    ) -> None:
        tail = " ".join(stderr.strip().splitlines()[-2:])[:200]
        super().__init__(
            node,
            f"command failed (exit {exit_status}): {_short(command)}"
            + (f" - {tail}" if tail else ""),
        )
        self.command = command
        self.exit_status = exit_status
        self.stderr = stderr


def _short(text: str, limit: int = 120) -> str:
    text = " ".join(redact(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---------------------------------------------------------------------------------------------
# Redaction
# ---------------------------------------------------------------------------------------------

_SECRET_WORD = r"(?:token|secret|pass(?:word)?|key|auth|cookie|credential)"
_ENV_NAME = rf"(?=[A-Za-z_])[A-Za-z0-9_]*?{_SECRET_WORD}[A-Za-z0-9_]*"
_UNQUOTED_VALUE = r"""(?:'[^']*'|"(?:[^"\\]|\\.)*"|[^\s;&|'"<>()])+"""
# In a shlex-quoted pair ('KEY=v a l'), the value runs to the closing quote; an embedded quote is
# encoded by shlex.quote as '"'"'.
_IN_QUOTE_VALUE = r"""[^']*(?:'"'"'[^']*)*"""
_ENV_RE = re.compile(
    rf"(?i)(?P<q>')?(?P<k>\b{_ENV_NAME})=(?P<v>(?(q){_IN_QUOTE_VALUE}|{_UNQUOTED_VALUE}))"
)
_OPT_RE = re.compile(
    rf"(?i)(?P<k>--[A-Za-z0-9-]*{_SECRET_WORD}[A-Za-z0-9-]*)(?P<sep>=|\s+)(?P<v>{_UNQUOTED_VALUE})"
)
_JSON_RE = re.compile(rf'(?i)(?P<k>"[A-Za-z0-9_-]*{_SECRET_WORD}[A-Za-z0-9_-]*"\s*:\s*)"[^"]*"')
_TOKEN_RES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bhf_[A-Za-z0-9]{8,}"), "hf_***"),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{8,}"), "sk-***"),
    (re.compile(r"(?i)\bBearer\s+(?!\*\*\*)[^\s'\"]+"), "Bearer ***"),
    (re.compile(r"(?i)\bBasic\s+(?!\*\*\*)[A-Za-z0-9+/=]{8,}"), "Basic ***"),
)
_MASK = "***"


def redact(text: str) -> str:
    """Mask secrets in a command line or log text.

    Masks the values of ``KEY=VALUE`` pairs (env style, also inside shlex quoting) and of
    ``--some-key VALUE`` options whose name matches
    ``(?i)(token|secret|pass(word)?|key|auth|cookie|credential)``, JSON ``"api_key": "..."``
    members, and token shapes ``hf_...``, ``sk-...``, ``Bearer X``, ``Basic X``.  Idempotent.
    """

    def env_sub(m: re.Match[str]) -> str:
        return f"{m.group('q') or ''}{m.group('k')}={_MASK}"

    text = _ENV_RE.sub(env_sub, text)
    text = _OPT_RE.sub(lambda m: f"{m.group('k')}{m.group('sep')}{_MASK}", text)
    text = _JSON_RE.sub(lambda m: f'{m.group("k")}"{_MASK}"', text)
    for pattern, replacement in _TOKEN_RES:
        text = pattern.sub(replacement, text)
    return text


# ---------------------------------------------------------------------------------------------
# Results and the command log
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CommandResult:
    """Outcome of :meth:`SshPool.run`.  ``command`` is redacted."""

    node: str
    command: str
    stdout: str
    stderr: str
    exit_status: int | None
    duration: float
    started_at: float
    exit_signal: str | None = None

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


@dataclass(frozen=True)
class CommandRecord:
    """One entry of the command log (redacted command, no output)."""

    node: str
    command: str
    exit_status: int | None
    duration: float
    started_at: float
    error: str | None = None


@dataclass(frozen=True)
class PutResult:
    node: str
    path: str
    size: int
    sha256: str
    method: str  # "sftp" or "shell"
    duration: float


@dataclass
class PoolStats:
    """Counters, mostly for tests and the debug pane."""

    connects: int = 0
    connect_failures: int = 0
    channel_open_retries: int = 0
    commands: int = 0
    max_channels_in_use: int = 0


class NodeState(enum.Enum):
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    READY = "ready"
    FAILED = "failed"


@dataclass(frozen=True)
class NodeStatus:
    name: str
    state: NodeState
    error: SshError | None = None
    since: float = 0.0
    failures: int = 0
    retry_at: float | None = None  # clock() time of the next automatic attempt (None = manual)


def backoff_delay(failures: int, base: float = 1.0, cap: float = 30.0) -> float:
    """Reconnect delay after ``failures`` consecutive failed connects: 1, 2, 4 ... 30 s."""
    if failures <= 0:
        return 0.0
    return float(min(cap, base * (2 ** (failures - 1))))


# ---------------------------------------------------------------------------------------------
# Host keys
# ---------------------------------------------------------------------------------------------


def _known_hosts_pattern(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


def _key_line(key: asyncssh.SSHKey) -> str:
    parts = key.export_public_key("openssh").decode().split()
    return f"{parts[0]} {parts[1]}"


_MatchResult = tuple[list[asyncssh.SSHKey], list[asyncssh.SSHKey], list[asyncssh.SSHKey]]


class HostKeyStore:
    """Trusted host keys: the user's known_hosts files, pdtui's own file and in-memory trust.

    ``accept_new=True`` behaves like OpenSSH ``StrictHostKeyChecking=accept-new``: an unknown
    key is saved to ``save_to`` and accepted, a changed key is still refused.
    """

    def __init__(self, known_hosts: Sequence[Path], save_to: Path, accept_new: bool = False):
        self.save_to = Path(save_to)
        files = [Path(p) for p in known_hosts]
        if self.save_to not in files:
            files.append(self.save_to)
        self.files: tuple[Path, ...] = tuple(files)
        self.accept_new = accept_new
        self._cache: dict[Path, tuple[tuple[int, int], asyncssh.SSHKnownHosts | None]] = {}
        self._memory_lines: list[str] = []
        self._memory: asyncssh.SSHKnownHosts | None = None

    @classmethod
    def default(cls, save_to: Path, accept_new: bool = False) -> HostKeyStore:
        """``~/.ssh/known_hosts`` (read only) plus ``save_to``."""
        return cls([Path("~/.ssh/known_hosts").expanduser()], save_to, accept_new)

    # -- loading --------------------------------------------------------------------------

    def _load(self, path: Path) -> asyncssh.SSHKnownHosts | None:
        try:
            st = path.stat()
        except OSError:
            return None
        stamp = (st.st_mtime_ns, st.st_size)
        cached = self._cache.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        parsed: asyncssh.SSHKnownHosts | None
        try:
            text = path.read_text(errors="replace")
        except OSError:
            parsed = None
        else:
            parsed = _import_known_hosts_lenient(text)
        self._cache[path] = (stamp, parsed)
        return parsed

    def _sources(self) -> list[asyncssh.SSHKnownHosts]:
        out = [kh for kh in (self._load(p) for p in self.files) if kh is not None]
        if self._memory is not None:
            out.append(self._memory)
        return out

    # -- queries --------------------------------------------------------------------------

    def match(self, host: str, addr: str, port: int | None) -> _MatchResult:
        """Trusted keys, CA keys and revoked keys for a host (asyncssh ``known_hosts`` callable)."""
        keys: list[asyncssh.SSHKey] = []
        cas: list[asyncssh.SSHKey] = []
        revoked: list[asyncssh.SSHKey] = []
        for kh in self._sources():
            result = kh.match(host, addr, port)
            keys.extend(result[0])
            cas.extend(result[1])
            revoked.extend(result[2])
        return keys, cas, revoked

    def locate(self, host: str, addr: str, port: int | None) -> list[tuple[str, int]]:
        """``(file, line number)`` of every recorded entry that matches the host."""
        found: list[tuple[str, int]] = []
        for path in self.files:
            try:
                lines = path.read_text(errors="replace").splitlines()
            except OSError:
                continue
            for lineno, line in enumerate(lines, 1):
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                try:
                    kh = asyncssh.import_known_hosts(line + "\n")
                except (ValueError, asyncssh.KeyImportError):
                    continue
                res = kh.match(host, addr, port)
                if res[0] or res[2]:
                    found.append((str(path), lineno))
        for line in self._memory_lines:
            kh = asyncssh.import_known_hosts(line + "\n")
            if kh.match(host, addr, port)[0]:
                found.append(("<trusted in memory>", 0))
        return found

    # -- trust ----------------------------------------------------------------------------

    def trust(self, host: str, port: int, key: asyncssh.SSHKey, save: bool) -> None:
        """Trust ``key`` for host:port, in memory only or appended to ``save_to`` (mode 0600)."""
        line = f"{_known_hosts_pattern(host, port)} {_key_line(key)}"
        if save:
            self.save_to.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.save_to, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.fchmod(fd, 0o600)
                os.write(fd, (line + "\n").encode())
            finally:
                os.close(fd)
            self._cache.pop(self.save_to, None)
        else:
            self._memory_lines.append(line)
            self._memory = asyncssh.import_known_hosts("\n".join(self._memory_lines) + "\n")


def _import_known_hosts_lenient(text: str) -> asyncssh.SSHKnownHosts | None:
    try:
        return asyncssh.import_known_hosts(text)
    except (ValueError, asyncssh.KeyImportError):
        pass
    good: list[str] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            asyncssh.import_known_hosts(line + "\n")
        except (ValueError, asyncssh.KeyImportError):
            continue
        good.append(line)
    return asyncssh.import_known_hosts("\n".join(good) + "\n") if good else None


# ---------------------------------------------------------------------------------------------
# Streams and forwards
# ---------------------------------------------------------------------------------------------


class CommandStream:
    """Lines of a remote command's stdout, as they arrive.

    Use as ``async with pool.stream(t, cmd) as s: async for line in s: ...``; after the loop
    ``s.exit_status`` holds the exit status.  Cancelling the consuming task, ``break``-ing out of
    the ``async with`` block or calling :meth:`close` closes the channel.  The remote process is
    not killed by that (root ignores SSH signals): it gets SIGPIPE on its next write.  Lines are
    yielded without the trailing newline.  stderr is collected (last 64 KiB) in :attr:`stderr`
    unless ``merge_stderr=True``.
    """

    def __init__(
        self,
        pool: SshPool,
        target: SshTarget,
        command: str,
        timeout: float | None,
        merge_stderr: bool,
    ) -> None:
        self._pool = pool
        self._target = target
        self.command = command
        self._timeout = timeout
        self._merge = merge_stderr
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

    @property
    def node(self) -> str:
        return self._target.name

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

        async def opener(conn: asyncssh.SSHClientConnection) -> asyncssh.SSHClientProcess[bytes]:
            proc: asyncssh.SSHClientProcess[bytes] = await conn.create_process(
                self.command, encoding=None, stderr=stderr_target
            )
            proc.stdin.write_eof()
            return proc

        try:
            proc, release = await self._pool._open_channel(self._target, opener)
        except SshError as exc:
            self._finish_record(exc)
            raise
        self._proc = proc
        self._release = release
        if not self._merge:
            self._stderr_task = asyncio.get_running_loop().create_task(self._drain_stderr(proc))

    async def _drain_stderr(self, proc: asyncssh.SSHClientProcess[bytes]) -> None:
        with contextlib.suppress(Exception):
            while True:
                chunk = await proc.stderr.read(65536)
                if not chunk:
                    return
                self._stderr.extend(chunk)
                if len(self._stderr) > 65536:
                    del self._stderr[: len(self._stderr) - 65536]

    async def __anext__(self) -> str:
        if self._proc is None and not self._done:
            await self._open()
        proc = self._proc
        if self._done or proc is None:
            raise StopAsyncIteration
        try:
            if self._deadline is not None:
                remaining = self._deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                raw = await asyncio.wait_for(proc.stdout.readline(), remaining)
            else:
                raw = await proc.stdout.readline()
        except asyncio.CancelledError:
            self._close(SshError(self.node, "stream cancelled"))
            raise
        except TimeoutError:
            tmo_err = CommandTimeout(self.node, self.command, self._timeout or 0.0, "", self.stderr)
            self._close(tmo_err)
            raise tmo_err from None
        except (asyncssh.Error, OSError) as exc:
            err = _map_runtime_error(self.node, exc)
            self._close(err)
            raise err from None
        if not raw:
            await self._finish()
            raise StopAsyncIteration
        line = raw.decode(errors="replace")
        return line[:-1] if line.endswith("\n") else line

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
        self._pool._record(
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
        self._finish_record(error)
        self._proc = None

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


# ---------------------------------------------------------------------------------------------
# Error mapping
# ---------------------------------------------------------------------------------------------


def _map_runtime_error(node: str, exc: BaseException) -> SshError:
    """Map an exception raised while using an established connection."""
    if isinstance(exc, SshError):
        return exc
    if isinstance(exc, asyncssh.ChannelOpenError):
        return ChannelRefused(node, f"server refused a channel ({exc.reason or exc.code})")
    if isinstance(exc, asyncssh.DisconnectError | asyncssh.ConnectionLost):
        reason = getattr(exc, "reason", "") or type(exc).__name__
        return ConnectionLostError(
            node, f"SSH connection lost ({reason}) - it is re-established on next use"
        )
    if isinstance(exc, asyncssh.SFTPError):
        return RemoteCommandError(node, "sftp", None, f"SFTP error: {exc.reason}")
    if isinstance(exc, OSError):
        return ConnectionLostError(node, f"SSH connection lost ({exc.strerror or exc})")
    return SshError(node, f"unexpected SSH error: {type(exc).__name__}: {exc}")


def _map_connect_error(
    node: str, eff: EffectiveTarget, timeout: float, exc: BaseException
) -> SshError:
    where = f"{eff.user}@{eff.host}:{eff.port}"
    if isinstance(exc, SshError):
        return exc
    if isinstance(exc, asyncssh.PermissionDenied):
        return AuthFailed(
            node,
            f"authentication failed for {where} - check the user, IdentityFile/ssh-agent and "
            "the node's authorized_keys",
        )
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return Unreachable(
            node,
            f"no SSH answer from {eff.host}:{eff.port} within {timeout:g}s - check the node is "
            "up and the address/port/firewall",
        )
    if isinstance(exc, ConnectionRefusedError):
        return Unreachable(
            node, f"connection refused by {eff.host}:{eff.port} - is sshd running on that port?"
        )
    if isinstance(exc, socket.gaierror):
        return Unreachable(node, f"cannot resolve host {eff.host!r} - check the hostname")
    if isinstance(exc, asyncssh.ChannelOpenError):
        return Unreachable(
            node,
            f"jump host could not reach {eff.host}:{eff.port} ({exc.reason}) - check the "
            "address and the bastion's AllowTcpForwarding/PermitOpen",
        )
    if isinstance(exc, asyncssh.ConnectionLost | asyncssh.DisconnectError):
        reason = getattr(exc, "reason", "") or type(exc).__name__
        return Unreachable(
            node, f"{where} closed the connection during login ({reason}) - retry later"
        )
    if isinstance(exc, OSError):
        return Unreachable(node, f"cannot connect to {eff.host}:{eff.port}: {exc.strerror or exc}")
    if isinstance(exc, asyncssh.Error):
        return Unreachable(node, f"SSH handshake with {where} failed: {exc}")
    if isinstance(exc, ValueError | asyncssh.KeyImportError):
        return AuthFailed(node, f"cannot load SSH keys or config: {exc} - check IdentityFile")
    return SshError(node, f"unexpected error connecting to {where}: {type(exc).__name__}: {exc}")


def _is_capacity_refusal(exc: asyncssh.ChannelOpenError) -> bool:
    return exc.code not in (
        OPEN_REQUEST_SESSION_FAILED,
        OPEN_REQUEST_PTY_FAILED,
        OPEN_REQUEST_X11_FORWARDING_FAILED,
    )


def _parse_hop(spec: str) -> tuple[str | None, str, int | None]:
    user: str | None = None
    hostport = spec.strip()
    if "@" in hostport:
        user, hostport = hostport.rsplit("@", 1)
    port: int | None = None
    if hostport.startswith("["):
        host, _, rest = hostport[1:].partition("]")
        if rest.startswith(":"):
            port = int(rest[1:])
    elif hostport.count(":") == 1:
        host, port_s = hostport.split(":")
        port = int(port_s)
    else:
        host = hostport
    return user, host, port


# ---------------------------------------------------------------------------------------------
# The pool
# ---------------------------------------------------------------------------------------------


class _Client(asyncssh.SSHClient):
    """Records the host key offered (never accepts it) and reports connection loss."""

    def __init__(self, on_lost: Callable[[_Client, Exception | None], None]) -> None:
        self.offered: tuple[str, str, int, asyncssh.SSHKey] | None = None
        self.conn: asyncssh.SSHClientConnection | None = None
        self._on_lost = on_lost

    def connection_made(self, conn: asyncssh.SSHClientConnection) -> None:
        self.conn = conn

    def connection_lost(self, exc: Exception | None) -> None:
        self._on_lost(self, exc)

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        self.offered = (host, addr, port, key)
        return False  # never accept here: see reference/ssh.md §4 pitfall


class _Node:
    def __init__(self, key: str, target: SshTarget, channels: int, now: float) -> None:
        self.key = key
        self.target = target
        self.conn: asyncssh.SSHClientConnection | None = None
        self.client: _Client | None = None
        self.lock = asyncio.Lock()
        self.channels = asyncio.Semaphore(channels)
        self.in_use = 0
        self.state = NodeState.DISCONNECTED
        self.error: SshError | None = None
        self.failures = 0
        self.retry_at: float | None = None
        self.terminal = False
        self.since = now

    def usable(self) -> asyncssh.SSHClientConnection | None:
        conn = self.conn
        if conn is not None and not conn.is_closed():
            return conn
        return None


_TERMINAL = (AuthFailed, HostKeyError)

Command = str | Sequence[str]


def _command_text(command: Command) -> str:
    if isinstance(command, str):
        return command
    return shlex.join(list(command))


class SshPool:
    """Persistent SSH connections to many nodes.  Use as ``async with SshPool(store) as pool``."""

    def __init__(
        self,
        store: HostKeyStore,
        *,
        max_connecting: int = 8,
        channels_per_node: int = 4,
        keepalive_interval: float = 15,
        keepalive_count_max: int = 3,
        clock: Callable[[], float] = time.monotonic,
        command_log_size: int = 2000,
        max_open_retries: int = 200,
    ) -> None:
        self.store = store
        self.channels_per_node = channels_per_node
        self.keepalive_interval = keepalive_interval
        self.keepalive_count_max = keepalive_count_max
        self.clock = clock
        self.max_open_retries = max_open_retries
        self.command_log: collections.deque[CommandRecord] = collections.deque(
            maxlen=command_log_size
        )
        #: Called with every new :class:`CommandRecord` (exceptions are swallowed).
        self.listeners: list[Callable[[CommandRecord], None]] = []
        #: Called with every node state change.
        self.state_listeners: list[Callable[[NodeStatus], None]] = []
        self.stats = PoolStats()
        self._max_connecting = max_connecting
        self._connect_sem: asyncio.Semaphore | None = None
        self._nodes: dict[str, _Node] = {}
        self._effective: dict[SshTarget, EffectiveTarget] = {}
        self._closed = False

    # -- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> SshPool:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close every connection (nodes first, then jump hosts)."""
        self._closed = True
        nodes = sorted(self._nodes.values(), key=lambda n: n.key.startswith("jump:"))
        for hop_pass in (False, True):
            conns = []
            for node in nodes:
                if node.key.startswith("jump:") != hop_pass or node.conn is None:
                    continue
                conns.append(node.conn)
                node.conn.close()
                node.conn = None
            for conn in conns:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.wait_closed(), 2.0)

    # -- observation ----------------------------------------------------------------------

    def add_listener(self, callback: Callable[[CommandRecord], None]) -> None:
        self.listeners.append(callback)

    def remove_listener(self, callback: Callable[[CommandRecord], None]) -> None:
        with contextlib.suppress(ValueError):
            self.listeners.remove(callback)

    def state(self, name: str) -> NodeStatus:
        """Connection state of a node (or a jump host, ``"jump:<spec>"``)."""
        node = self._nodes.get(name)
        if node is None:
            return NodeStatus(name, NodeState.DISCONNECTED)
        return self._status(node)

    def states(self) -> dict[str, NodeStatus]:
        return {key: self._status(node) for key, node in self._nodes.items()}

    def _status(self, node: _Node) -> NodeStatus:
        return NodeStatus(
            node.key, node.state, node.error, node.since, node.failures, node.retry_at
        )

    def _set_state(self, node: _Node, state: NodeState, error: SshError | None = None) -> None:
        node.state = state
        node.error = error
        node.since = self.clock()
        status = self._status(node)
        for cb in list(self.state_listeners):
            with contextlib.suppress(Exception):
                cb(status)

    def _record(
        self,
        node: str,
        command: str,
        exit_status: int | None,
        duration: float,
        started_at: float,
        error: str | None,
    ) -> CommandRecord:
        rec = CommandRecord(node, redact(command), exit_status, duration, started_at, error)
        self.command_log.append(rec)
        self.stats.commands += 1
        for cb in list(self.listeners):
            with contextlib.suppress(Exception):
                cb(rec)
        return rec

    # -- settings -------------------------------------------------------------------------

    @staticmethod
    def _config_arg(target: SshTarget) -> Any:
        if target.ssh_config is None:
            return None
        if target.ssh_config == ():
            return ()
        return [str(Path(p).expanduser()) for p in target.ssh_config]

    def effective(self, target: SshTarget) -> EffectiveTarget:
        """Resolve host/port/user/jump/identity files from the target and ssh config."""
        cached = self._effective.get(target)
        if cached is not None:
            return cached
        try:
            opts = asyncssh.SSHClientConnectionOptions(
                host=target.host,
                port=target.port if target.port is not None else (),
                username=target.user if target.user else (),
                config=self._config_arg(target),
                known_hosts=None,
                client_keys=None,
                agent_path=None,
                agent_forwarding=False,
            )
        except (OSError, ValueError, asyncssh.Error) as exc:
            raise SshError(target.name, f"bad ssh config: {exc} - fix ~/.ssh/config") from None
        if target.jump:
            jump = tuple(target.jump)
        elif isinstance(opts.tunnel, str) and opts.tunnel.strip().lower() != "none":
            jump = tuple(h.strip() for h in opts.tunnel.split(",") if h.strip())
        else:
            jump = ()
        if target.identity_files:
            identities = tuple(target.identity_files)
        else:
            raw = opts.config.get("IdentityFile") or ()
            identities = tuple(str(p) for p in raw) if isinstance(raw, list | tuple) else ()
        eff = EffectiveTarget(
            name=target.name,
            host=str(opts.host),
            port=int(opts.port),
            user=str(opts.username or getpass.getuser()),
            jump=jump,
            identity_files=identities,
            host_key_alias=opts.host_key_alias or None,
        )
        self._effective[target] = eff
        return eff

    def _hop_targets(self, target: SshTarget) -> list[SshTarget]:
        eff = self.effective(target)
        hops: list[SshTarget] = []
        for i, spec in enumerate(eff.jump):
            try:
                user, host, port = _parse_hop(spec)
            except ValueError:
                raise SshError(
                    target.name, f"bad jump host {spec!r} - use [user@]host[:port]"
                ) from None
            hops.append(
                SshTarget(
                    name="jump:" + ",".join(eff.jump[: i + 1]),
                    host=host,
                    port=port,
                    user=user,
                    identity_files=target.identity_files,
                    jump=tuple(eff.jump[:i]),
                    connect_timeout=target.connect_timeout,
                    command_timeout=target.command_timeout,
                    ssh_config=target.ssh_config,
                )
            )
        return hops

    # -- connections ----------------------------------------------------------------------

    def _node(self, target: SshTarget) -> _Node:
        node = self._nodes.get(target.name)
        if node is None:
            node = _Node(target.name, target, self.channels_per_node, self.clock())
            self._nodes[target.name] = node
        elif node.target != target:
            # The operator edited the node: drop the old connection and any failure.
            if node.conn is not None:
                node.conn.close()
                node.conn = None
            node.target = target
            node.failures = 0
            node.retry_at = None
            node.terminal = False
            self._set_state(node, NodeState.DISCONNECTED)
        return node

    def reset(self, target: SshTarget | str) -> None:
        """Forget a node's failure/backoff so the next call connects at once ("retry now")."""
        name = target if isinstance(target, str) else target.name
        node = self._nodes.get(name)
        if node is None:
            return
        node.failures = 0
        node.retry_at = None
        node.terminal = False
        self._effective = {t: e for t, e in self._effective.items() if t.name != name}
        if node.usable() is None:
            node.conn = None
            self._set_state(node, NodeState.DISCONNECTED)

    def _on_lost(self, node: _Node, client: _Client, exc: Exception | None) -> None:
        if node.client is not client:
            return
        node.conn = None
        node.client = None
        if self._closed or exc is None:
            self._set_state(node, NodeState.DISCONNECTED)
        else:
            err = _map_runtime_error(node.key, exc)
            self._set_state(node, NodeState.DISCONNECTED, err)

    async def connect(self, target: SshTarget) -> None:
        """Make sure the node is connected (raises the node's :class:`SshError`)."""
        await self._connection(target)

    async def connect_all(self, targets: Iterable[SshTarget]) -> dict[str, SshError | None]:
        targets = list(targets)

        async def one(t: SshTarget) -> SshError | None:
            try:
                await self._connection(t)
            except SshError as exc:
                return exc
            except Exception as exc:
                return SshError(t.name, f"internal error: {type(exc).__name__}: {exc}")
            return None

        results = await asyncio.gather(*(one(t) for t in targets))
        return {t.name: r for t, r in zip(targets, results, strict=True)}

    async def _connection(self, target: SshTarget, depth: int = 0) -> asyncssh.SSHClientConnection:
        if self._closed:
            raise SshError(target.name, "the SSH pool is closed")
        node = self._node(target)
        conn = node.usable()
        if conn is not None:
            return conn
        async with node.lock:
            conn = node.usable()
            if conn is not None:
                return conn
            if node.error is not None and node.state is NodeState.FAILED:
                if node.terminal:
                    raise node.error
                if node.retry_at is not None and self.clock() < node.retry_at:
                    raise node.error
            self._set_state(node, NodeState.CONNECTING, node.error)
            try:
                if depth > 8:
                    raise SshError(target.name, "jump host chain too long or looping")
                hops = self._hop_targets(target)
                tunnel = await self._connection(hops[-1], depth + 1) if hops else None
                conn, client = await self._connect(node, target, tunnel)
            except asyncio.CancelledError:
                self._set_state(node, NodeState.DISCONNECTED, node.error)
                raise
            except SshError as exc:
                node.failures += 1
                self.stats.connect_failures += 1
                node.terminal = isinstance(exc, _TERMINAL)
                node.retry_at = (
                    None if node.terminal else self.clock() + backoff_delay(node.failures)
                )
                self._set_state(node, NodeState.FAILED, exc)
                raise
            node.conn = conn
            node.client = client
            node.failures = 0
            node.retry_at = None
            node.terminal = False
            self._set_state(node, NodeState.READY)
            return conn

    def _semaphore(self) -> asyncio.Semaphore:
        if self._connect_sem is None:
            self._connect_sem = asyncio.Semaphore(self._max_connecting)
        return self._connect_sem

    async def _connect(
        self,
        node: _Node,
        target: SshTarget,
        tunnel: asyncssh.SSHClientConnection | None,
    ) -> tuple[asyncssh.SSHClientConnection, _Client]:
        eff = self.effective(target)
        lost_retries = 0
        accepted_new = False
        while True:
            client = _Client(lambda c, e: self._on_lost(node, c, e))
            kwargs: dict[str, Any] = {
                "port": eff.port,
                "username": eff.user,
                "tunnel": tunnel,
                "config": self._config_arg(target),
                "known_hosts": self.store.match,
                "client_factory": lambda c=client: c,
                "connect_timeout": target.connect_timeout,
                "keepalive_interval": self.keepalive_interval,
                "keepalive_count_max": self.keepalive_count_max,
                "agent_forwarding": False,
                "proxy_command": None if tunnel is not None else (),
            }
            if target.identity_files:
                kwargs["client_keys"] = [str(Path(p).expanduser()) for p in target.identity_files]
            try:
                async with self._semaphore():
                    self.stats.connects += 1
                    conn = await asyncio.wait_for(
                        asyncssh.connect(target.host, **kwargs), target.connect_timeout + 2.0
                    )
                return conn, client
            except asyncssh.HostKeyNotVerifiable:
                err = self._host_key_error(target, eff, client)
                if (
                    isinstance(err, HostKeyUnknown)
                    and self.store.accept_new
                    and not accepted_new
                    and err.key is not None
                ):
                    self.store.trust(eff.known_hosts_name, eff.port, err.key, save=True)
                    accepted_new = True
                    continue
                raise err from None
            except (asyncssh.ConnectionLost, ConnectionResetError) as exc:
                # sshd MaxStartups drops bursts of unauthenticated connections: retry briefly.
                lost_retries += 1
                if lost_retries > 2:
                    raise _map_connect_error(
                        target.name, eff, target.connect_timeout, exc
                    ) from None
                await asyncio.sleep(random.uniform(0.1, 0.3))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                raise _map_connect_error(target.name, eff, target.connect_timeout, exc) from None

    def _host_key_error(
        self, target: SshTarget, eff: EffectiveTarget, client: _Client
    ) -> HostKeyError:
        host = eff.known_hosts_name
        pattern = _known_hosts_pattern(host, eff.port)
        offered = client.offered
        if offered is None:
            return HostKeyChanged(
                target.name,
                f"host key for {pattern} is revoked or unusable - ask the node's admin; "
                f"see {self.store.save_to}",
                host=host,
                port=eff.port,
                algorithm="",
                fingerprint="",
                key=None,
                target=target,
            )
        m_host, m_addr, m_port, key = offered
        algorithm = key.get_algorithm()
        fingerprint = key.get_fingerprint("sha256")
        lookup_port = None if m_port == 22 else m_port
        trusted, _cas, _revoked = self.store.match(m_host, m_addr, lookup_port)
        if trusted:
            where = self.store.locate(m_host, m_addr, lookup_port)
            file, line = where[0] if where else (str(self.store.save_to), 0)
            return HostKeyChanged(
                target.name,
                f"HOST KEY CHANGED for {pattern} (now {algorithm} {fingerprint}) - possible "
                f"man-in-the-middle; refused. If the change is expected remove line {line} of "
                f"{file} (ssh-keygen -R '{pattern}' -f {file}) and reconnect",
                host=host,
                port=eff.port,
                algorithm=algorithm,
                fingerprint=fingerprint,
                key=key,
                target=target,
                known_hosts_file=file,
                known_hosts_line=line,
            )
        return HostKeyUnknown(
            target.name,
            f"unknown host key for {pattern}: {algorithm} {fingerprint} - verify the fingerprint "
            "and trust it",
            host=host,
            port=eff.port,
            algorithm=algorithm,
            fingerprint=fingerprint,
            key=key,
            target=target,
        )

    # -- host keys ------------------------------------------------------------------------

    async def fetch_host_key(self, target: SshTarget) -> tuple[str, str, asyncssh.SSHKey]:
        """Fetch the node's host key without authenticating (through its jump hosts).

        Returns ``(algorithm, "SHA256:..." fingerprint, key)`` for the trust prompt.
        """
        eff = self.effective(target)
        hops = self._hop_targets(target)
        tunnel = await self._connection(hops[-1]) if hops else None
        try:
            async with self._semaphore():
                key = await asyncio.wait_for(
                    asyncssh.get_server_host_key(
                        eff.host, eff.port, tunnel=tunnel, config=None, proxy_command=None
                    ),
                    target.connect_timeout,
                )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise _map_connect_error(target.name, eff, target.connect_timeout, exc) from None
        if key is None:
            raise SshError(target.name, "the server presented no host key")
        return key.get_algorithm(), key.get_fingerprint("sha256"), key

    def trust_host_key(self, target: SshTarget, key: asyncssh.SSHKey, save: bool) -> None:
        """Trust ``key`` for the target (in memory, or saved to the store's file with 0600)."""
        eff = self.effective(target)
        self.store.trust(eff.known_hosts_name, eff.port, key, save)
        for node in self._nodes.values():
            err = node.error
            if node.key == target.name or (
                isinstance(err, HostKeyError)
                and err.host == eff.known_hosts_name
                and err.port == eff.port
            ):
                self.reset(node.key)

    # -- channels -------------------------------------------------------------------------

    async def _open_channel(
        self,
        target: SshTarget,
        opener: Callable[[asyncssh.SSHClientConnection], Awaitable[T]],
    ) -> tuple[T, Callable[[], None]]:
        """Open a session channel under the node's budget, retrying refused opens.

        Returns the opened resource and a release callback the caller must call once.
        """
        node = self._node(target)
        attempts = 0
        reconnected = False
        while True:
            conn = await self._connection(target)
            await node.channels.acquire()
            node.in_use += 1
            self.stats.max_channels_in_use = max(self.stats.max_channels_in_use, node.in_use)
            released = False

            def release(node: _Node = node) -> None:
                nonlocal released
                if not released:
                    released = True
                    node.in_use -= 1
                    node.channels.release()

            try:
                res = await opener(conn)
            except asyncssh.ChannelOpenError as exc:
                release()
                if conn.is_closed():
                    if reconnected:
                        raise _map_runtime_error(target.name, exc) from None
                    reconnected = True
                    continue
                if not _is_capacity_refusal(exc):
                    raise ChannelRefused(
                        target.name, f"session request refused ({exc.reason})"
                    ) from None
                attempts += 1
                self.stats.channel_open_retries += 1
                if attempts > self.max_open_retries:
                    raise ChannelRefused(
                        target.name,
                        f"server kept refusing channels ({exc.reason}) - check sshd MaxSessions",
                    ) from None
                await asyncio.sleep(random.uniform(0.02, 0.1))
                continue
            except BaseException as exc:
                release()
                if isinstance(exc, asyncio.CancelledError | SshError):
                    raise
                if isinstance(exc, Exception):
                    raise _map_runtime_error(target.name, exc) from None
                raise
            return res, release

    # -- operations -----------------------------------------------------------------------

    async def run(
        self,
        target: SshTarget,
        command: Command,
        *,
        input: str | bytes | None = None,
        timeout: float | None = None,
        check: bool = False,
        label: str | None = None,
    ) -> CommandResult:
        """Run one command (argv list → ``shlex.join``; str used as-is) and collect its output.

        Raises :class:`CommandTimeout` after ``timeout`` (default ``target.command_timeout``)
        seconds of execution - the remote process keeps running.  With ``check=True`` a non-zero
        exit raises :class:`RemoteCommandError`.  ``label`` says in the command log what a
        script sent on stdin does (``bash -s  # probe 16 devices``).
        """
        cmd = _command_text(command)
        shown = cmd if "\n" not in cmd.strip() else cmd.strip().splitlines()[0] + " …"
        logged = f"{shown}  # {label}" if label else cmd
        tmo = target.command_timeout if timeout is None else timeout
        data = input.encode() if isinstance(input, str) else input
        started_at = time.time()
        t0 = time.monotonic()
        try:
            result = await self._run(target, cmd, data, tmo, started_at, t0)
        except asyncio.CancelledError:
            self._record(target.name, logged, None, time.monotonic() - t0, started_at,
                         "cancelled")
            raise
        except SshError as exc:
            self._record(target.name, logged, None, time.monotonic() - t0, started_at, str(exc))
            raise
        self._record(target.name, logged, result.exit_status, result.duration, started_at, None)
        if check and result.exit_status != 0:
            raise RemoteCommandError(target.name, cmd, result.exit_status, result.stderr)
        return result

    async def _run(
        self,
        target: SshTarget,
        cmd: str,
        data: bytes | None,
        tmo: float | None,
        started_at: float,
        t0: float,
    ) -> CommandResult:
        async def opener(conn: asyncssh.SSHClientConnection) -> asyncssh.SSHClientProcess[bytes]:
            proc: asyncssh.SSHClientProcess[bytes] = await conn.create_process(
                cmd, encoding=None
            )
            if data:
                proc.stdin.write(data)
            proc.stdin.write_eof()
            return proc

        proc, release = await self._open_channel(target, opener)
        try:
            try:
                done = await proc.wait(check=False, timeout=tmo if tmo and tmo > 0 else None)
            except asyncssh.TimeoutError as exc:
                out = _decode(exc.stdout)
                errs = _decode(exc.stderr)
                raise CommandTimeout(target.name, cmd, tmo or 0.0, out, errs) from None
            except (asyncssh.Error, OSError) as exc:
                raise _map_runtime_error(target.name, exc) from None
        finally:
            proc.close()
            release()
        sig = done.exit_signal
        return CommandResult(
            node=target.name,
            command=redact(cmd),
            stdout=_decode(done.stdout),
            stderr=_decode(done.stderr),
            exit_status=done.exit_status,
            duration=time.monotonic() - t0,
            started_at=started_at,
            exit_signal=sig[0] if sig else None,
        )

    async def run_all(
        self,
        targets: Iterable[SshTarget],
        command: Command | Callable[[SshTarget], Command],
        *,
        input: str | bytes | None = None,
        timeout: float | None = None,
    ) -> dict[str, CommandResult | SshError]:
        """Run on every target concurrently; each node's failure is captured, never raised."""
        targets = list(targets)

        async def one(t: SshTarget) -> CommandResult | SshError:
            try:
                cmd = command(t) if callable(command) else command
                return await self.run(t, cmd, input=input, timeout=timeout)
            except SshError as exc:
                return exc
            except Exception as exc:
                return SshError(t.name, f"internal error: {type(exc).__name__}: {exc}")

        results = await asyncio.gather(*(one(t) for t in targets))
        return {t.name: r for t, r in zip(targets, results, strict=True)}

    def stream(
        self,
        target: SshTarget,
        command: Command,
        *,
        timeout: float | None = None,
        merge_stderr: bool = False,
    ) -> CommandStream:
        """Stream stdout line by line (see :class:`CommandStream`).  No timeout by default."""
        return CommandStream(self, target, _command_text(command), timeout, merge_stderr)

    async def put(
        self,
        target: SshTarget,
        remote_path: str,
        data: bytes,
        mode: int = 0o640,
        *,
        makedirs: bool = False,
        use_sftp: bool | None = None,
    ) -> PutResult:
        """Atomically write ``data`` to ``remote_path`` and verify its sha256 remotely.

        SFTP: write ``<dir>/.<name>.tmp.<random>``, fsync, chmod, ``posix_rename`` onto the
        final name.  Without SFTP (``use_sftp=False`` or the subsystem is refused) the shell
        recipe ``mktemp && cat > && mv -f`` is used.  A reader never sees a partial file.
        """
        t0 = time.monotonic()
        started_at = time.time()
        digest = hashlib.sha256(data).hexdigest()
        label = f"put {remote_path} ({len(data)} bytes, mode {mode:o})"
        method = "sftp"
        try:
            done = False
            if use_sftp is not False:
                try:
                    await self._put_sftp(target, remote_path, data, mode, makedirs)
                    done = True
                except _NoSftp:
                    if use_sftp:
                        raise SshError(
                            target.name, "the SFTP subsystem is not available on this node"
                        ) from None
            if not done:
                method = "shell"
                await self._put_shell(target, remote_path, data, mode, makedirs)
            res = await self.run(target, ["sha256sum", "--", remote_path], timeout=30)
            remote_digest = res.stdout.split()[0] if res.stdout.split() else ""
            if res.exit_status != 0 or remote_digest != digest:
                raise RemoteCommandError(
                    target.name,
                    f"sha256sum {remote_path}",
                    res.exit_status,
                    f"checksum mismatch after upload: {remote_digest or res.stderr.strip()}",
                )
        except BaseException as exc:
            self._record(
                target.name, label, None, time.monotonic() - t0, started_at, str(exc) or "failed"
            )
            raise
        dur = time.monotonic() - t0
        self._record(target.name, f"{label} via {method}", 0, dur, started_at, None)
        return PutResult(target.name, remote_path, len(data), digest, method, dur)

    async def _put_sftp(
        self, target: SshTarget, path: str, data: bytes, mode: int, makedirs: bool
    ) -> None:
        async def opener(conn: asyncssh.SSHClientConnection) -> asyncssh.SFTPClient:
            try:
                return await conn.start_sftp_client()
            except asyncssh.ChannelOpenError as exc:
                if exc.code == OPEN_REQUEST_SESSION_FAILED:
                    raise _NoSftp from None
                raise
            except asyncssh.SFTPError:
                raise _NoSftp from None

        directory, name = posixpath.split(path)
        directory = directory or "."
        tmp = posixpath.join(directory, f".{name}.tmp.{secrets.token_hex(6)}")
        sftp, release = await self._open_channel(target, opener)
        try:
            try:
                if makedirs:
                    await sftp.makedirs(directory, exist_ok=True)
                attrs = asyncssh.SFTPAttrs(permissions=mode)
                try:
                    async with sftp.open(tmp, "wb", attrs) as f:
                        await f.write(data)
                        with contextlib.suppress(asyncssh.SFTPOpUnsupported):
                            await f.fsync()
                    await sftp.chmod(tmp, mode)
                    await sftp.posix_rename(tmp, path)
                except BaseException:
                    with contextlib.suppress(Exception):
                        await sftp.remove(tmp)
                    raise
            except asyncssh.SFTPError as exc:
                raise RemoteCommandError(
                    target.name, f"sftp put {path}", None, f"{type(exc).__name__}: {exc.reason}"
                ) from None
            except (asyncssh.Error, OSError) as exc:
                raise _map_runtime_error(target.name, exc) from None
        finally:
            sftp.exit()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(sftp.wait_closed(), 2.0)
            release()

    async def _put_shell(
        self, target: SshTarget, path: str, data: bytes, mode: int, makedirs: bool
    ) -> None:
        directory, name = posixpath.split(path)
        directory = directory or "."
        qdir = shlex.quote(directory)
        tmpl = shlex.quote(posixpath.join(directory, f".{name}.tmp.XXXXXXXX"))
        script = (
            (f"mkdir -p -- {qdir} && " if makedirs else "")
            + f"umask 077; t=$(mktemp {tmpl}) || exit 1; "
            + f'if cat > "$t" && chmod {mode:o} "$t" && mv -f -- "$t" {shlex.quote(path)}; '
            + 'then exit 0; else rc=$?; rm -f -- "$t"; exit $rc; fi'
        )
        res = await self.run(target, script, input=data, timeout=target.command_timeout)
        if res.exit_status != 0:
            raise RemoteCommandError(target.name, f"put {path}", res.exit_status, res.stderr)

    async def forward(
        self,
        target: SshTarget,
        remote_host: str,
        remote_port: int,
        local_host: str = "127.0.0.1",
    ) -> Forward:
        """Listen on ``local_host:<free port>`` and forward to ``remote_host:remote_port`` as
        seen from the node (direct-tcpip; does not use the session-channel budget)."""
        conn = await self._connection(target)
        t0 = time.monotonic()
        label = f"forward {local_host}:* -> {remote_host}:{remote_port}"
        try:
            listener = await conn.forward_local_port(local_host, 0, remote_host, remote_port)
        except (asyncssh.Error, OSError) as exc:
            err = _map_runtime_error(target.name, exc)
            self._record(target.name, label, None, time.monotonic() - t0, time.time(), str(err))
            raise err from None
        fwd = Forward(target.name, listener, local_host, remote_host, remote_port)
        self._record(
            target.name,
            f"forward {local_host}:{fwd.local_port} -> {remote_host}:{remote_port}",
            0,
            time.monotonic() - t0,
            time.time(),
            None,
        )
        return fwd


class _NoSftp(Exception):
    pass


def _decode(data: object) -> str:
    if data is None:
        return ""
    if isinstance(data, bytes | bytearray):
        return bytes(data).decode(errors="replace")
    return str(data)
