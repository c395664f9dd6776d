"""The resolved cluster: every default applied and every placeholder filled in."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pdtui.cluster.spec import (
    ClusterSpec,
    ContainerCli,
    ContainerMode,
    DataParallel,
    FlagValue,
    Role,
    Soc,
    format_devices,
)
from pdtui.text import count

#: ``{scope.key}`` placeholders a cluster file value may use.
PLACEHOLDER_RE = re.compile(r"\{(node|instance|model|ranktable|proxy)\.([a-z_]+)\}")


@dataclass(frozen=True)
class Ssh:
    user: str | None
    port: int | None
    identity_file: str | None
    known_hosts: str | None
    jump: tuple[str, ...]
    connect_timeout: float
    command_timeout: float


@dataclass(frozen=True)
class Mount:
    """A bind mount: ``host`` on the node at ``path`` inside the container."""

    host: str
    path: str
    read_only: bool = False

    @property
    def arg(self) -> str:
        """The ``-v`` value."""
        return f"{self.host}:{self.path}" + (":ro" if self.read_only else "")


@dataclass(frozen=True)
class Container:
    """Where serving runs on a node: every default applied, placeholders filled in."""

    mode: ContainerMode
    cli: ContainerCli
    name: str
    image: str | None
    shm_size: str
    network: str
    #: the ``/dev/davinciN`` passed in (``devices = "all"``: every NPU of the node)
    devices: tuple[int, ...]
    mounts: tuple[Mount, ...]
    env: dict[str, str]
    extra_args: tuple[str, ...]
    #: the ``pdtui.cluster`` label of a managed container
    cluster: str

    @property
    def managed(self) -> bool:
        return self.mode == "managed"


@dataclass(frozen=True)
class Node:
    """A node with every default applied."""

    index: int
    name: str
    host: str
    ip: str
    soc: Soc
    npus: int
    nic: str | None
    hccn_conf: str
    run_dir: str
    hccn_tool: str
    npu_smi: str
    ssh: Ssh
    #: None: serving runs in the node's login shell
    container: Container | None = None


@dataclass(frozen=True)
class Process:
    """One ``vllm serve`` process: an instance, or one data-parallel rank of it."""

    instance: str
    name: str
    role: Role
    node: str
    port: int
    devices: tuple[int, ...]
    dp_rank: int | None


@dataclass(frozen=True)
class Instance:
    index: int
    name: str
    role: Role
    node: str
    devices: tuple[int, ...]
    port: int
    env: dict[str, str]
    serve: dict[str, FlagValue]
    kv_transfer: dict[str, Any]
    dp: DataParallel | None
    processes: tuple[Process, ...]


@dataclass
class Cluster:
    """A validated cluster, ready for every command and screen."""

    path: Path | None
    spec: ClusterSpec
    nodes: list[Node]
    instances: list[Instance]
    warnings: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.spec.cluster.name

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def instance(self, name: str) -> Instance:
        for i in self.instances:
            if i.name == name:
                return i
        raise KeyError(name)

    def ranktable_path(self, node: Node) -> str:
        """The ranktable's path on ``node`` (``{node.*}`` placeholders filled in)."""
        if self.spec.ranktable is None:
            raise KeyError("ranktable")
        return node_fill(self.spec.ranktable.path, node)

    def model_path(self, node: Node) -> str:
        """The model's path on ``node`` (``{node.*}`` placeholders filled in)."""
        return node_fill(self.spec.model.path, node)

    def processes(self, role: Role | None = None) -> Iterator[Process]:
        for inst in self.instances:
            for p in inst.processes:
                if role is None or p.role == role:
                    yield p

    def backends(self, role: Role) -> list[str]:
        """``host:port`` of every process of a role, in file order (what the proxy lists)."""
        return [f"{self.node(p.node).ip}:{p.port}" for p in self.processes(role)]

    def summary(self) -> list[str]:
        """A few human lines: nodes, instances, proxy."""
        lines = [f"cluster {self.name}: {len(self.nodes)} nodes, {len(self.instances)} instances"]
        for n in self.nodes:
            lines.append(
                f"  node {n.name:<12} {n.host:<16} ip {n.ip:<16} {n.soc} x{n.npus}"
                f"  nic {n.nic or '-'}"
            )
            if n.container is not None:
                c = n.container
                lines.append(
                    f"    in container {c.name} ({c.mode}, {c.cli}"
                    f"{', ' + c.image if c.image else ''})"
                )
        for i in self.instances:
            dp = f"  dp {len(i.processes)} ranks" if i.dp else ""
            lines.append(
                f"  {i.role:<7} {i.name:<12} on {i.node:<12} port {i.port:<5}"
                f" devices {format_devices(list(i.devices))}{dp}"
            )
        proxy = self.spec.proxy
        if proxy:
            lines.append(
                f"  proxy   on {proxy.node} {proxy.host}:{proxy.port}  "
                f"{count(len(self.backends('prefill')), 'prefiller')}, "
                f"{count(len(self.backends('decode')), 'decoder')}"
            )
        if self.spec.ranktable:
            lines.append(f"  ranktable {self.spec.ranktable.path}")
        return lines


def node_context(node: Node) -> dict[str, str]:
    """What ``{node.*}`` placeholders mean on ``node``."""
    return {
        "name": node.name,
        "host": node.host,
        "ip": node.ip,
        "nic": node.nic or "",
        "soc": node.soc,
    }


def node_fill(text: str, node: Node) -> str:
    """``text`` with its ``{node.*}`` placeholders filled in for ``node``."""
    ctx = node_context(node)
    return PLACEHOLDER_RE.sub(
        lambda m: ctx.get(m.group(2), m.group(0)) if m.group(1) == "node" else m.group(0),
        text,
    )
