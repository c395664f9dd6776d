"""In-process asyncssh server that plays one fake NPU node.

Each exec request runs the command with real ``bash -c`` in its own session (like OpenSSH:
``setsid``), with stdin/stdout/stderr wired through the channel and the exit status (or signal)
returned.  Behaviour copied from OpenSSH where pdtui depends on it:

* ``max_sessions`` emulates ``MaxSessions`` (default 10): further session opens are refused and
  the client gets ``ChannelOpenError``; the connection stays usable;
* an SSH signal request kills the command's process group (OpenSSH behaviour for non-root);
* closing the channel does not kill the command; it only loses its pipes (SIGPIPE on next
  write).  A command whose background children keep the pipes open keeps the channel open;
* ``SSH_CONNECTION`` is set; no pty is offered; SFTP (with ``posix-rename``) is served;
* direct-tcpip (port forwards / ProxyJump) is allowed to destinations accepted by
  ``allow_forward_to`` (loopback only by default), so a node can also act as a jump host.

Handlers never raise into asyncssh (an exception in a process handler tears down the whole
client connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, cast

import asyncssh
from asyncssh.channel import SSHServerChannel

from pdtui.ssh.remote import is_loopback

__all__ = ["SimNodeServer", "generate_keys", "loopback_only"]

log = logging.getLogger(__name__)

#: Given the stdin of a ``bash -s`` command, ``(rc, stdout)`` to answer it in-process, or None
#: to run it in bash (see ``pdtui.sim.inproc``).
ScriptHandler = Callable[[bytes], Awaitable[tuple[int, bytes] | None]]

_SIGNALS = {
    "ABRT": signal.SIGABRT,
    "ALRM": signal.SIGALRM,
    "FPE": signal.SIGFPE,
    "HUP": signal.SIGHUP,
    "ILL": signal.SIGILL,
    "INT": signal.SIGINT,
    "KILL": signal.SIGKILL,
    "PIPE": signal.SIGPIPE,
    "QUIT": signal.SIGQUIT,
    "SEGV": signal.SIGSEGV,
    "TERM": signal.SIGTERM,
    "USR1": signal.SIGUSR1,
    "USR2": signal.SIGUSR2,
}
_SIGNAMES: dict[int, str] = {int(v): k for k, v in _SIGNALS.items()}


def loopback_only(host: str, port: int) -> bool:
    """Default ``allow_forward_to``: only 127.0.0.0/8, ::1 and ``localhost``."""
    return is_loopback(host)


def generate_keys(directory: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write an ed25519 host key and client key (OpenSSH format, mode 0600) plus ``.pub`` files.

    Returns ``(host_key_path, client_key_path)``.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in ("ssh_host_ed25519_key", "id_ed25519"):
        key = asyncssh.generate_private_key("ssh-ed25519", comment=f"pdtui-sim {name}")
        path = d / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key.export_private_key("openssh"))
        os.chmod(path, 0o600)
        (d / f"{name}.pub").write_bytes(key.export_public_key("openssh"))
        paths.append(path)
    return paths[0], paths[1]


def _sftp_factory(chan: SSHServerChannel[bytes]) -> asyncssh.SFTPServer:
    return asyncssh.SFTPServer(chan)


class _Session(asyncssh.SSHServerProcess[bytes]):
    """A session channel: counts against max_sessions and turns signals into killpg."""

    def __init__(self, server: _ConnServer) -> None:
        super().__init__(server.sim._handle, cast(Any, _sftp_factory), 3, False)
        self._server = server
        self.pgid: int | None = None
        self.signalled: str | None = None
        server.sessions += 1

    def signal_received(self, signal: str) -> None:
        self.signalled = signal
        sig = _SIGNALS.get(signal.upper())
        if sig is not None and self.pgid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pgid, sig)

    def break_received(self, msec: int) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._server.sessions -= 1
        with contextlib.suppress(Exception):
            super().connection_lost(exc)


class _ConnServer(asyncssh.SSHServer):
    def __init__(self, sim: SimNodeServer) -> None:
        self.sim = sim
        self.sessions = 0
        self.conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn
        self.sim.connections += 1
        self.sim._conns.add(conn)
        self.sim._servers.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.conn is not None:
            self.sim._conns.discard(self.conn)
        self.sim._servers.discard(self)

    def session_requested(self) -> Any:
        limit = self.sim.max_sessions
        if limit is not None and self.sessions >= limit:
            self.sim.sessions_refused += 1
            return False
        try:
            return _Session(self)
        except Exception:  # pragma: no cover - defensive
            log.exception("sim %s: session setup failed", self.sim.name)
            return False

    def connection_requested(
        self, dest_host: str, dest_port: int, orig_host: str, orig_port: int
    ) -> bool:
        self.sim.forward_requests.append((dest_host, dest_port))
        try:
            return bool(self.sim.allow_forward_to(dest_host, dest_port))
        except Exception:
            return False

    def server_requested(self, listen_host: str, listen_port: int) -> bool:
        return False


class SimNodeServer:
    """One fake node: an asyncssh server that runs commands with real bash."""

    def __init__(
        self,
        name: str,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
        *,
        host_key: asyncssh.SSHKey,
        authorized_keys: str | os.PathLike[str],
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        max_sessions: int | None = 10,
        command_delay: Callable[[], float] | None = None,
        allow_forward_to: Callable[[str, int], bool] = loopback_only,
        shell: str = "/bin/bash",
        script_handler: ScriptHandler | None = None,
    ) -> None:
        self.name = name
        self.listen_host = listen_host
        self.listen_port = listen_port
        self.host_key = host_key
        self._authorized_keys = self._load_authorized(authorized_keys)
        self.env = dict(env or {})
        self.cwd = str(cwd) if cwd is not None else None
        self.max_sessions = max_sessions
        self.command_delay = command_delay
        self.allow_forward_to = allow_forward_to
        self.shell = shell
        self.script_handler = script_handler
        self.connections = 0
        self.sessions_refused = 0
        self.commands: list[str] = []
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self._port: int | None = None
        self._conns: set[asyncssh.SSHServerConnection] = set()
        self._procs: set[asyncio.subprocess.Process] = set()
        self._servers: set[_ConnServer] = set()
        #: direct-tcpip destinations requested (host, port), for tests of jump chains
        self.forward_requests: list[tuple[str, int]] = []

    @staticmethod
    def _load_authorized(src: str | os.PathLike[str]) -> asyncssh.SSHAuthorizedKeys:
        text = str(src)
        if isinstance(src, os.PathLike) or (
            "\n" not in text
            and not text.startswith(("ssh-", "ecdsa-", "sk-"))
            and Path(text).expanduser().is_file()
        ):
            return asyncssh.read_authorized_keys(str(Path(text).expanduser()))
        return asyncssh.import_authorized_keys(text)

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError(f"sim node {self.name} has not been started")
        return self._port

    @property
    def open_sessions(self) -> int:
        """Session channels currently open on all connections."""
        return sum(s.sessions for s in self._servers)

    @property
    def open_connections(self) -> int:
        return len(self._conns)

    @property
    def running(self) -> bool:
        return self._acceptor is not None

    async def start(self) -> None:
        if self._acceptor is not None:
            return
        port = self._port if self._port is not None else self.listen_port
        self._acceptor = await asyncssh.listen(
            self.listen_host,
            port,
            server_factory=lambda: _ConnServer(self),
            server_host_keys=[self.host_key],
            authorized_client_keys=self._authorized_keys,
            allow_pty=False,
            agent_forwarding=False,
            x11_forwarding=False,
            encoding=None,
            reuse_address=True,
            keepalive_interval=0,
        )
        self._port = self._acceptor.get_port()

    async def stop(self) -> None:
        """Stop listening and drop every connection (running commands are left alone)."""
        acceptor, self._acceptor = self._acceptor, None
        if acceptor is not None:
            acceptor.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(acceptor.wait_closed(), 2.0)
        for conn in list(self._conns):
            conn.abort()
        self._conns.clear()

    async def kill_all(self) -> None:
        """Kill every command still running (test teardown)."""
        procs = list(self._procs)
        for proc in procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        for proc in procs:  # reap them, so no transport outlives the event loop
            with contextlib.suppress(Exception):
                await asyncio.wait_for(proc.wait(), 2.0)
        self._procs.clear()

    async def set_reachable(self, reachable: bool) -> None:
        """False: stop listening (connects get "connection refused") and drop connections."""
        if reachable:
            await self.start()
        else:
            await self.stop()

    async def __aenter__(self) -> SimNodeServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- command execution ------------------------------------------------------------------

    def _env_for(self, proc: asyncssh.SSHServerProcess[bytes]) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.env)
        env.setdefault("PDTUI_SIM_NODE", self.name)
        peer = proc.get_extra_info("peername") or ("127.0.0.1", 0)
        sock = proc.get_extra_info("sockname") or (self.listen_host, self._port or 0)
        env["SSH_CONNECTION"] = f"{peer[0]} {peer[1]} {sock[0]} {sock[1]}"
        username = proc.get_extra_info("username")
        if username:
            env.setdefault("USER", str(username))
            env.setdefault("LOGNAME", str(username))
        return env

    async def _handle(self, proc: asyncssh.SSHServerProcess[bytes]) -> None:
        try:
            await self._run(proc)
        except Exception as exc:  # never let an exception reach asyncssh
            log.warning("sim %s: command handler failed: %r", self.name, exc)
            with contextlib.suppress(Exception):
                proc.stderr.write(f"pdtui-sim: internal error: {exc}\n".encode())
                proc.exit(255)

    async def _run(self, proc: asyncssh.SSHServerProcess[bytes]) -> None:
        command = proc.command
        if command is None:
            proc.stderr.write(b"pdtui-sim: interactive shells are not supported\n")
            proc.exit(1)
            return
        self.commands.append(command)
        if self.command_delay is not None:
            delay = self.command_delay()
            if delay > 0:
                await asyncio.sleep(delay)
        prefill: bytes | None = None
        if self.script_handler is not None and command.strip() == "bash -s":
            prefill = await self._read_stdin(proc)
            answer = await self.script_handler(prefill)
            if answer is not None:
                rc, out = answer
                proc.stdout.write(out)
                proc.exit(rc)
                return
        sub = await asyncio.create_subprocess_exec(
            self.shell,
            "-c",
            command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self._env_for(proc),
            cwd=self.cwd,
            start_new_session=True,
        )
        self._procs.add(sub)
        session = proc if isinstance(proc, _Session) else None
        if session is not None:
            session.pgid = sub.pid
            if session.signalled:
                session.signal_received(session.signalled)
        assert sub.stdin is not None and sub.stdout is not None and sub.stderr is not None
        tasks = [
            asyncio.create_task(
                self._pump_in(proc, sub.stdin)
                if prefill is None
                else self._feed(prefill, sub.stdin)
            ),
            asyncio.create_task(self._pump_out(sub, 1, sub.stdout, proc.stdout)),
            asyncio.create_task(self._pump_out(sub, 2, sub.stderr, proc.stderr)),
        ]
        try:
            rc = await sub.wait()
            # Like sshd: wait for EOF on the output pipes (background children may hold them).
            await asyncio.gather(tasks[1], tasks[2], return_exceptions=True)
        finally:
            self._procs.discard(sub)
            tasks[0].cancel()
            for t in tasks:
                with contextlib.suppress(BaseException):
                    await t
        with contextlib.suppress(Exception):
            if rc < 0:
                proc.exit_with_signal(_SIGNAMES.get(-rc, "KILL"))
            else:
                proc.exit(rc)

    @staticmethod
    async def _read_stdin(proc: asyncssh.SSHServerProcess[bytes]) -> bytes:
        """All of stdin, up to EOF (a script sent on stdin)."""
        chunks: list[bytes] = []
        while True:
            try:
                data = await proc.stdin.read(65536)
            except (asyncssh.SignalReceived, asyncssh.BreakReceived, asyncssh.TerminalSizeChanged):
                continue
            if not data:
                return b"".join(chunks)
            chunks.append(data)

    @staticmethod
    async def _feed(data: bytes, dest: asyncio.StreamWriter) -> None:
        try:
            dest.write(data)
            await dest.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            with contextlib.suppress(Exception):
                dest.close()

    @staticmethod
    async def _pump_in(proc: asyncssh.SSHServerProcess[bytes], dest: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    data = await proc.stdin.read(65536)
                except (asyncssh.SignalReceived, asyncssh.BreakReceived):
                    continue  # handled by _Session.signal_received
                except asyncssh.TerminalSizeChanged:
                    continue
                if not data:
                    break
                dest.write(data)
                await dest.drain()
        except (BrokenPipeError, ConnectionResetError, asyncssh.Error):
            pass
        finally:
            with contextlib.suppress(Exception):
                dest.close()

    @staticmethod
    async def _pump_out(
        sub: asyncio.subprocess.Process,
        fd: int,
        src: asyncio.StreamReader,
        dest: asyncssh.SSHWriter[bytes],
    ) -> None:
        while True:
            data = await src.read(65536)
            if not data:
                return
            try:
                dest.write(data)
                await dest.drain()
            except (ConnectionError, asyncssh.Error, OSError):
                # The channel is gone: close our end of the pipe so the command gets SIGPIPE
                # on its next write, as with OpenSSH (it is not killed otherwise).
                transport = getattr(sub, "_transport", None)
                with contextlib.suppress(Exception):
                    if transport is not None:
                        pipe = transport.get_pipe_transport(fd)
                        if pipe is not None:
                            pipe.close()
                return
