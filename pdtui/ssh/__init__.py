"""SSH to the cluster's nodes (core; no Textual import).

* :mod:`~pdtui.ssh.target`: a node as configured (:class:`SshTarget`), resolved against
  ``~/.ssh/config`` (:class:`EffectiveTarget`), and its jump hosts;
* :mod:`~pdtui.ssh.errors`: one-line :class:`SshError` subclasses that name the node;
* :mod:`~pdtui.ssh.redaction`: secrets masked in command lines and logs;
* :mod:`~pdtui.ssh.hostkeys`: trusted host keys (:class:`HostKeyStore`);
* :mod:`~pdtui.ssh.stream`: line-by-line command output and port forwards;
* :mod:`~pdtui.ssh.upload`: atomic file uploads over SFTP or the shell;
* :mod:`~pdtui.ssh.pool`: persistent connections and the command log (:class:`SshPool`);
* :mod:`~pdtui.ssh.remote` and :mod:`~pdtui.ssh.nodes`: the glue from the cluster model.

The names below are re-exported lazily, so that ``import pdtui.ssh.redaction`` (or ``errors``,
``target``) does not load asyncssh, a noticeable share of the CLI's start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pdtui.lazy import exports
from pdtui.ssh import libs

libs.install()  # before anything imports asyncssh

if TYPE_CHECKING:
    from pdtui.ssh.errors import (
        AuthFailed,
        ChannelRefused,
        CommandTimeout,
        ConnectionLostError,
        HostKeyChanged,
        HostKeyError,
        HostKeyUnknown,
        RemoteCommandError,
        SshError,
        Unreachable,
    )
    from pdtui.ssh.hostkeys import HostKeyStore
    from pdtui.ssh.pool import (
        CommandRecord,
        CommandResult,
        NodeState,
        NodeStatus,
        PoolStats,
        PutResult,
        SshPool,
        backoff_delay,
    )
    from pdtui.ssh.redaction import redact
    from pdtui.ssh.stream import CommandStream, Forward
    from pdtui.ssh.target import EffectiveTarget, SshTarget

_SUBMODULE = {
    "AuthFailed": "errors",
    "ChannelRefused": "errors",
    "CommandRecord": "pool",
    "CommandResult": "pool",
    "CommandStream": "stream",
    "CommandTimeout": "errors",
    "ConnectionLostError": "errors",
    "EffectiveTarget": "target",
    "Forward": "stream",
    "HostKeyChanged": "errors",
    "HostKeyError": "errors",
    "HostKeyStore": "hostkeys",
    "HostKeyUnknown": "errors",
    "NodeState": "pool",
    "NodeStatus": "pool",
    "PoolStats": "pool",
    "PutResult": "pool",
    "RemoteCommandError": "errors",
    "SshError": "errors",
    "SshPool": "pool",
    "SshTarget": "target",
    "Unreachable": "errors",
    "backoff_delay": "pool",
    "redact": "redaction",
}

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


__getattr__, __dir__ = exports(__name__, _SUBMODULE, __all__, globals())
