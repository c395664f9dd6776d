"""Persistent SSH connections to many nodes, and every remote command pdtui runs.

Design:

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
import hashlib
import random
import shlex
import time
import weakref
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

from pdtui.ssh.errors import (
    AuthFailed,
    ChannelRefused,
    CommandTimeout,
    HostKeyError,
    HostKeyUnknown,
    RemoteCommandError,
    SshError,
    map_connect_error,
    map_runtime_error,
)
from pdtui.ssh.hostkeys import HostKeyStore, Offered, host_key_error, key_type_changed_error
from pdtui.ssh.redaction import redact
from pdtui.ssh.stream import CommandStream, Forward
from pdtui.ssh.target import EffectiveTarget, SshTarget, config_arg, hop_targets, resolve
from pdtui.ssh.upload import NoSftp, sftp_put, shell_put_script, start_sftp

T = TypeVar("T")

#: At most this many bytes of a command's stdout (and of its stderr, ``MAX_STDERR``) are kept:
#: past it pdtui stops reading, closes the channel and says so in the result's stderr.
MAX_OUTPUT = 16 << 20
MAX_STDERR = 1 << 20
#: OpenSSH's default cipher set, AES-GCM first: asyncssh encrypts a packet with AES-GCM in one
#: OpenSSL call, chacha20-poly1305 takes several (7-10x the time), and followed logs are many
#: packets.  Used unless the ssh config names ``Ciphers``.
CIPHERS = (
    "aes256-gcm@openssh.com",
    "aes128-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes256-ctr",
    "aes192-ctr",
    "aes128-ctr",
)

# ---------------------------------------------------------------------------------------------
# Results, the command log and node states
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
    #: True when the command printed more than the cap: its output was cut (see ``stderr``)
    #: and the channel closed.
    truncated: bool = False

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
    seq: int = 0  # 1, 2, 3 ... in the order commands ended (the log keeps only the last ones)


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
# The pool
# ---------------------------------------------------------------------------------------------


def _is_capacity_refusal(exc: asyncssh.ChannelOpenError) -> bool:
    return exc.code not in (
        OPEN_REQUEST_SESSION_FAILED,
        OPEN_REQUEST_PTY_FAILED,
        OPEN_REQUEST_X11_FORWARDING_FAILED,
    )


class _Client(asyncssh.SSHClient):
    """Records the host key offered (never accepts it) and reports connection loss."""

    def __init__(self, on_lost: Callable[[_Client, Exception | None], None]) -> None:
        self.offered: Offered | None = None
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
        # asyncssh calls this for unknown AND changed keys, and cannot await a prompt: never
        # accept here (returning True would accept a changed key); only record what was offered.
        return False


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


def command_text(command: Command) -> str:
    """An argv list is ``shlex.join``-ed; a string is a shell command line used as-is."""
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
        #: Open streams whose remote process group is killed when they close.
        self._streams: weakref.WeakSet[CommandStream] = weakref.WeakSet()

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
        """Close every connection (nodes first, then jump hosts), after the open streams
        (their remote process groups are killed while the connections are up)."""
        await self._end_streams()
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

    async def _end_streams(self) -> None:
        streams = list(self._streams)
        for stream in streams:
            stream.close()
        killers = [k for s in streams if (k := s.killer) is not None]
        if killers:
            await asyncio.wait(killers, timeout=5.0)

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
        self.stats.commands += 1
        rec = CommandRecord(
            node, redact(command), exit_status, duration, started_at, error, self.stats.commands
        )
        self.command_log.append(rec)
        for cb in list(self.listeners):
            with contextlib.suppress(Exception):
                cb(rec)
        return rec

    # -- settings -------------------------------------------------------------------------

    def effective(self, target: SshTarget) -> EffectiveTarget:
        """Resolve host/port/user/jump/identity files from the target and ssh config (cached)."""
        cached = self._effective.get(target)
        if cached is None:
            cached = self._effective[target] = resolve(target)
        return cached

    def _hop_targets(self, target: SshTarget) -> list[SshTarget]:
        return hop_targets(target, self.effective(target).jump)

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
            err = map_runtime_error(node.key, exc)
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
                "config": config_arg(target),
                "known_hosts": self.store.match,
                "client_factory": lambda c=client: c,
                "connect_timeout": target.connect_timeout,
                "keepalive_interval": self.keepalive_interval,
                "keepalive_count_max": self.keepalive_count_max,
                "agent_forwarding": False,
                "proxy_command": None if tunnel is not None else (),
            }
            if not eff.ciphers_configured:
                kwargs["encryption_algs"] = list(CIPHERS)
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
                err = host_key_error(self.store, target, eff, client.offered)
                if (
                    isinstance(err, HostKeyUnknown)
                    and self.store.accept_new
                    and not accepted_new
                    and err.key is not None
                ):
                    self._save_new_key(target, eff, err.key)
                    accepted_new = True
                    continue
                raise err from None
            except asyncssh.KeyExchangeFailed as exc:
                # "Unable to find compatible server host key": offered none of the recorded types
                changed = (
                    key_type_changed_error(self.store, target, eff)
                    if "host key" in str(exc.reason)
                    else None
                )
                raise (
                    changed or map_connect_error(target.name, eff, target.connect_timeout, exc)
                ) from None
            except (asyncssh.ConnectionLost, ConnectionResetError) as exc:
                # sshd MaxStartups drops bursts of unauthenticated connections: retry briefly.
                lost_retries += 1
                if lost_retries > 2:
                    raise map_connect_error(target.name, eff, target.connect_timeout, exc) from None
                await asyncio.sleep(random.uniform(0.1, 0.3))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                raise map_connect_error(target.name, eff, target.connect_timeout, exc) from None

    # -- host keys ------------------------------------------------------------------------

    def _save_new_key(self, target: SshTarget, eff: EffectiveTarget, key: asyncssh.SSHKey) -> None:
        """``accept_new``: save an unknown key; a file that cannot be written is one line."""
        try:
            self.store.trust(eff.known_hosts_name, eff.port, key, save=True)
        except OSError as exc:
            raise SshError(
                target.name,
                f"cannot save the new host key to {self.store.save_to}: "
                f"{exc.strerror or exc} - point ssh.known_hosts at a file you can write",
            ) from None

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
            raise map_connect_error(target.name, eff, target.connect_timeout, exc) from None
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
                        raise map_runtime_error(target.name, exc) from None
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
                    raise map_runtime_error(target.name, exc) from None
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
        max_output: int = MAX_OUTPUT,
    ) -> CommandResult:
        """Run one command (argv list → ``shlex.join``; str used as-is) and collect its output.

        Raises :class:`CommandTimeout` after ``timeout`` (default ``target.command_timeout``)
        seconds of execution - the remote process keeps running.  With ``check=True`` a non-zero
        exit raises :class:`RemoteCommandError`.  ``label`` says in the command log what a
        script sent on stdin does (``bash -s  # probe 16 devices``). Past ``max_output`` bytes
        of stdout (or ``MAX_STDERR`` of stderr) reading stops: ``truncated`` says so.
        """
        cmd = command_text(command)
        shown = cmd if "\n" not in cmd.strip() else cmd.strip().splitlines()[0] + " …"
        logged = f"{shown}  # {label}" if label else cmd
        tmo = target.command_timeout if timeout is None else timeout
        data = input.encode() if isinstance(input, str) else input
        started_at = time.time()
        t0 = time.monotonic()
        try:
            result = await self._run(target, cmd, data, tmo, started_at, t0, max_output)
        except asyncio.CancelledError:
            self._record(target.name, logged, None, time.monotonic() - t0, started_at, "cancelled")
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
        max_output: int = MAX_OUTPUT,
    ) -> CommandResult:
        async def opener(conn: asyncssh.SSHClientConnection) -> asyncssh.SSHClientProcess[bytes]:
            proc: asyncssh.SSHClientProcess[bytes] = await conn.create_process(cmd, encoding=None)
            if data:
                proc.stdin.write(data)
            proc.stdin.write_eof()
            return proc

        proc, release = await self._open_channel(target, opener)
        try:
            out = _Capped(proc.stdout, max_output)
            err = _Capped(proc.stderr, MAX_STDERR)
            try:
                await asyncio.wait_for(_collect(proc, out, err), tmo if tmo and tmo > 0 else None)
            except TimeoutError:
                raise CommandTimeout(target.name, cmd, tmo or 0.0, out.text(), err.text()) from None
            except (asyncssh.Error, OSError) as exc:
                raise map_runtime_error(target.name, exc) from None
        finally:
            proc.close()
            release()
        cut = out.cut or err.cut
        note = (
            (
                f"\npdtui: output cut at {max_output} bytes of stdout / {MAX_STDERR} of stderr "
                "(the command printed more; the rest was not read)\n"
            )
            if cut
            else ""
        )
        sig = proc.exit_signal
        return CommandResult(
            node=target.name,
            command=redact(cmd),
            stdout=out.text(),
            stderr=err.text() + note,
            exit_status=None if cut else proc.exit_status,
            duration=time.monotonic() - t0,
            started_at=started_at,
            exit_signal=sig[0] if sig else None,
            truncated=cut,
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
        kill_wrap: Callable[[str], str] | None = None,
    ) -> CommandStream:
        """Stream stdout line by line (see :class:`CommandStream`).  No timeout by default."""
        stream = CommandStream(
            self._open_channel,
            self._record,
            target,
            command_text(command),
            timeout,
            merge_stderr,
            kill_wrap,
        )
        if kill_wrap is not None:
            self._streams.add(stream)
        return stream

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
                except NoSftp:
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
        sftp, release = await self._open_channel(target, start_sftp)
        await sftp_put(sftp, release, target.name, path, data, mode, makedirs)

    async def _put_shell(
        self, target: SshTarget, path: str, data: bytes, mode: int, makedirs: bool
    ) -> None:
        script = shell_put_script(path, mode, makedirs)
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
            err = map_runtime_error(target.name, exc)
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


class _Capped:
    """One output stream of a command, read into a buffer of at most ``cap`` bytes."""

    def __init__(self, stream: asyncssh.SSHReader[bytes], cap: int) -> None:
        self.stream = stream
        self.cap = cap
        self.buf = bytearray()
        self.cut = False

    async def pump(self) -> None:
        """Read to EOF, or until the cap is passed (then ``cut``: the caller stops reading)."""
        while True:
            chunk = await self.stream.read(65536)
            if not chunk:
                return
            room = self.cap - len(self.buf)
            self.buf.extend(chunk[:room])
            if len(chunk) > room:
                self.cut = True
                return

    def text(self) -> str:
        return self.buf.decode(errors="replace")


async def _collect(proc: asyncssh.SSHClientProcess[bytes], out: _Capped, err: _Capped) -> None:
    """Both streams to EOF and the exit status; a stream past its cap closes the channel."""
    pumps = [asyncio.ensure_future(out.pump()), asyncio.ensure_future(err.pump())]
    try:
        for fut in asyncio.as_completed(pumps):
            await fut
            if out.cut or err.cut:
                proc.close()
                return
        await proc.wait_closed()
    finally:
        for p in pumps:
            p.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
