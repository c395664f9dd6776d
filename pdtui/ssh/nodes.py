"""Reach every node once: SSH state, effective settings and the node's own identity.

The identity check matters for PD: the ranktable's ``server_id`` and ``HCCL_IF_IP`` must be an
address the node really has (``hostname -I``), or the connector cannot find its devices.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass, field

from pdtui.cluster import Cluster
from pdtui.ssh.errors import HostKeyChanged, HostKeyUnknown, SshError
from pdtui.ssh.pool import CommandResult
from pdtui.ssh.remote import pool_for, target

IDENTITY_COMMAND = "hostname; hostname -I"


@dataclass
class NodeReach:
    name: str
    address: str
    reachable: bool
    error: str | None = None
    error_kind: str | None = None
    fingerprint: str | None = None
    hostname: str | None = None
    addresses: list[str] = field(default_factory=list)
    ip_ok: bool | None = None
    seconds: float = 0.0
    findings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _identity(reach: NodeReach, result: CommandResult, ip: str) -> None:
    lines = result.stdout.splitlines()
    reach.hostname = lines[0].strip() if lines else None
    reach.addresses = lines[1].split() if len(lines) > 1 else []
    if result.exit_status != 0:
        reach.findings.append(
            f"'{IDENTITY_COMMAND}' exited {result.exit_status}: {result.stderr.strip()[:200]}"
        )
    reach.ip_ok = ip in reach.addresses
    if not reach.ip_ok:
        shown = " ".join(reach.addresses) or "nothing"
        reach.findings.append(
            f"data-plane ip {ip} is not an address of the node (hostname -I: {shown}); "
            "HCCL_IF_IP and the ranktable server_id would not match"
        )


async def reach_all(cluster: Cluster, *, accept_new: bool = False) -> list[NodeReach]:
    """Connect to every node (at most 8 connecting at once) and read its identity."""
    async with pool_for(cluster, accept_new=accept_new) as pool:

        async def one(name: str) -> NodeReach:
            node = cluster.node(name)
            tgt = target(node)
            eff = pool.effective(tgt)
            via = f" via {' > '.join(eff.jump)}" if eff.jump else ""
            reach = NodeReach(name, f"{eff.user}@{eff.host}:{eff.port}{via}", False)
            start = time.monotonic()
            try:
                result = await pool.run(tgt, IDENTITY_COMMAND, timeout=node.ssh.command_timeout)
            except SshError as exc:
                reach.error = exc.message
                reach.error_kind = type(exc).__name__
                if isinstance(exc, (HostKeyUnknown, HostKeyChanged)):
                    reach.fingerprint = exc.fingerprint
                if isinstance(exc, HostKeyUnknown):
                    reach.error += (
                        " (rerun with --accept-new-host-keys to trust it, or trust it in the app)"
                    )
            else:
                reach.reachable = True
                _identity(reach, result, node.ip)
            reach.seconds = time.monotonic() - start
            return reach

        return list(await asyncio.gather(*(one(n.name) for n in cluster.nodes)))
