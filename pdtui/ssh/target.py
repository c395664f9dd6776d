"""Who to connect to: a node as configured, the settings a connect would use, its jump hosts.

Explicit fields of :class:`SshTarget` win over ``~/.ssh/config``; :func:`resolve` merges the two
without connecting.  asyncssh is imported only when a target is resolved.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pdtui.ssh.errors import SshError

if TYPE_CHECKING:
    import asyncssh


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
    ciphers_configured: bool = False  # the ssh config names ``Ciphers``: it chooses them

    @property
    def known_hosts_name(self) -> str:
        """The name host keys are recorded under (``HostKeyAlias`` or the real host name)."""
        return self.host_key_alias or self.host


def config_arg(target: SshTarget) -> Any:
    """The ``config=`` argument asyncssh wants for the target's ``ssh_config`` setting."""
    if target.ssh_config is None:
        return None
    if target.ssh_config == ():
        return ()
    return [str(Path(p).expanduser()) for p in target.ssh_config]


def resolve(target: SshTarget) -> EffectiveTarget:
    """Resolve host/port/user/jump/identity files from the target and ssh config."""
    import asyncssh

    try:
        opts = asyncssh.SSHClientConnectionOptions(
            host=target.host,
            port=target.port if target.port is not None else (),
            username=target.user if target.user else (),
            config=config_arg(target),
            known_hosts=None,
            client_keys=None,
            agent_path=None,
            agent_forwarding=False,
        )
    except (OSError, ValueError, asyncssh.Error) as exc:
        raise SshError(target.name, f"bad ssh config: {exc} - fix ~/.ssh/config") from None
    return EffectiveTarget(
        name=target.name,
        host=str(opts.host),
        port=int(opts.port),
        user=str(opts.username or getpass.getuser()),
        jump=_jump(target, opts),
        identity_files=_identities(target, opts),
        host_key_alias=opts.host_key_alias or None,
        ciphers_configured=bool(opts.config.get("Ciphers")),
    )


def _jump(target: SshTarget, opts: asyncssh.SSHClientConnectionOptions) -> tuple[str, ...]:
    if target.jump:
        return tuple(target.jump)
    if isinstance(opts.tunnel, str) and opts.tunnel.strip().lower() != "none":
        return tuple(h.strip() for h in opts.tunnel.split(",") if h.strip())
    return ()


def _identities(target: SshTarget, opts: asyncssh.SSHClientConnectionOptions) -> tuple[str, ...]:
    if target.identity_files:
        return tuple(target.identity_files)
    raw = opts.config.get("IdentityFile") or ()
    return tuple(str(p) for p in raw) if isinstance(raw, list | tuple) else ()


def parse_hop(spec: str) -> tuple[str | None, str, int | None]:
    """``[user@]host[:port]`` (IPv6 as ``[addr]:port``) → ``(user, host, port)``."""
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


def hop_targets(target: SshTarget, jump: tuple[str, ...]) -> list[SshTarget]:
    """One target per jump host, each tunnelled through the hops before it.

    Hop ``i`` is named ``"jump:<hop 1>,...,<hop i>"`` so that nodes behind the same bastion
    chain share its connection; hops inherit the node's keys, timeouts and ssh config.
    """
    hops: list[SshTarget] = []
    for i, spec in enumerate(jump):
        try:
            user, host, port = parse_hop(spec)
        except ValueError:
            raise SshError(
                target.name, f"bad jump host {spec!r} - use [user@]host[:port]"
            ) from None
        hops.append(
            SshTarget(
                name="jump:" + ",".join(jump[: i + 1]),
                host=host,
                port=port,
                user=user,
                identity_files=target.identity_files,
                jump=tuple(jump[:i]),
                connect_timeout=target.connect_timeout,
                command_timeout=target.command_timeout,
                ssh_config=target.ssh_config,
            )
        )
    return hops
