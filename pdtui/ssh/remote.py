"""From the cluster model to SSH: one target per node, one host-key store per cluster."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pdtui.cluster import Cluster, Node
from pdtui.settings import config_dir
from pdtui.ssh.hostkeys import HostKeyStore
from pdtui.ssh.pool import SshPool
from pdtui.ssh.target import SshTarget


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or ``localhost``: an address that never leaves this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def default_known_hosts() -> Path:
    """pdtui's own known_hosts (keys the operator accepted in pdtui)."""
    return config_dir() / "known_hosts"


def target(node: Node) -> SshTarget:
    """The SSH target of a node; unset values fall back to ``~/.ssh/config``."""
    return SshTarget(
        name=node.name,
        host=node.host,
        port=node.ssh.port,
        user=node.ssh.user,
        identity_files=(node.ssh.identity_file,) if node.ssh.identity_file else (),
        jump=node.ssh.jump,
        connect_timeout=node.ssh.connect_timeout,
        command_timeout=node.ssh.command_timeout,
    )


def targets(cluster: Cluster) -> list[SshTarget]:
    return [target(n) for n in cluster.nodes]


def host_key_store(cluster: Cluster, *, accept_new: bool = False) -> HostKeyStore:
    """The user's ``~/.ssh/known_hosts`` plus the cluster's (or pdtui's own) known_hosts file.

    Keys the operator accepts are saved to the first ``ssh.known_hosts`` the cluster file
    names, else to pdtui's own file.
    """
    named = [Path(n.ssh.known_hosts) for n in cluster.nodes if n.ssh.known_hosts]
    files = list(dict.fromkeys([Path("~/.ssh/known_hosts").expanduser(), *named]))
    save_to = named[0] if named else default_known_hosts()
    return HostKeyStore(files, save_to, accept_new=accept_new)


def pool_for(cluster: Cluster, *, accept_new: bool = False) -> SshPool:
    """A connection pool for the cluster's nodes (use as ``async with``)."""
    return SshPool(host_key_store(cluster, accept_new=accept_new))
