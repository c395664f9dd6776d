"""What can go wrong with SSH, as one-line errors that name the node and say what to do.

:func:`map_connect_error` and :func:`map_runtime_error` turn asyncssh and socket exceptions into
these classes.  asyncssh is imported only when an exception is mapped.
"""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING

from pdtui.ssh.redaction import redact

if TYPE_CHECKING:
    import asyncssh

    from pdtui.ssh.target import EffectiveTarget, SshTarget


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
        known_hosts_file: str | None = None,
        known_hosts_line: int | None = None,
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
        #: Where the recorded key stands (a changed key: the line to remove).
        self.known_hosts_file = known_hosts_file
        self.known_hosts_line = known_hosts_line


class HostKeyUnknown(HostKeyError):
    """No key is recorded for this host: the UI may offer to trust the shown fingerprint."""


class HostKeyChanged(HostKeyError):
    """The host presented a key different from the recorded one.  Never accepted."""


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

    def __init__(self, node: str, command: str, exit_status: int | None, stderr: str = "") -> None:
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


def map_runtime_error(node: str, exc: BaseException) -> SshError:
    """Map an exception raised while using an established connection."""
    import asyncssh

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


def map_connect_error(
    node: str, eff: EffectiveTarget, timeout: float, exc: BaseException
) -> SshError:
    """Map an exception raised while connecting (TCP, key exchange, login)."""
    import asyncssh

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
