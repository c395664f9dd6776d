"""What the doctor reports: one finding per broken rule, with where, why, the fix and a source."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info")

VLLM_ASCEND = "https://github.com/vllm-project/vllm-ascend"


def issue(number: int) -> str:
    """The public URL of a vllm-ascend issue."""
    return f"{VLLM_ASCEND}/issues/{number}"


def pull(number: int) -> str:
    """The public URL of a vllm-ascend pull request."""
    return f"{VLLM_ASCEND}/pull/{number}"


@dataclass(frozen=True)
class Finding:
    """One rule broken at one place.

    ``where`` names the instance, node or key (``instance decode-0``, ``node prefill-0``,
    ``[env] http_proxy``); ``source`` is a public URL that backs the rule.
    """

    id: str
    severity: Severity
    where: str
    message: str
    fix: str
    source: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    def line(self) -> str:
        mark = {"error": "✗", "warning": "!", "info": "i"}[self.severity]
        return f"{mark} {self.id}: {self.where}: {self.message}"


@dataclass(frozen=True)
class Rule:
    """A rule of the field: a stable id, what it catches, its fix and its source."""

    id: str
    title: str
    fix: str
    source: str
    live: bool = False


@dataclass
class NodeFacts:
    """What one node says about itself before launch (unless the doctor runs offline).

    ``env`` is the login shell's environment as a launched process inherits it;
    ``listening`` the TCP ports something already listens on; ``files`` maps each path
    the doctor asked about to whether it exists; ``versions`` maps package to version.
    """

    node: str
    reachable: bool = True
    error: str = ""
    env: dict[str, str] = field(default_factory=dict)
    listening: frozenset[tuple[str, int]] = frozenset()  # (address, port); "*" = any address
    files: dict[str, bool] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    failed_devices: frozenset[int] = frozenset()


@dataclass
class Facts:
    """Live facts of every node that answered; empty when the doctor runs offline."""

    nodes: dict[str, NodeFacts] = field(default_factory=dict)
    running: frozenset[str] = frozenset()  # processes pdtui already runs (their ports are theirs)
    #: For a connector that reads a ranktable: each node's NPU health (``NodeHealth``) and each
    #: instance node's copy of the ranktable (None: missing; absent: not read).
    health: Mapping[str, Any] = field(default_factory=dict)
    ranktables: dict[str, str | None] = field(default_factory=dict)

    @property
    def offline(self) -> bool:
        return not self.nodes
