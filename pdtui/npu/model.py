"""Plain data for NPU health: raw evidence, per-device and per-node health, ping results.

Everything here is a stdlib dataclass whose ``to_dict()`` gives plain JSON-ready dicts
(``from_dict`` reverses it), so the CLI can print ``--json`` and the TUI can cache results.

States and their order (`worst`): ``fail`` > ``unknown`` > ``warn`` > ``ok``. ``unknown``
ranks above ``warn`` on purpose: a device we know nothing about must never look healthier
than one with a known, minor problem.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

State = Literal["ok", "warn", "fail", "unknown"]

#: Ascending severity; `worst` picks the highest.
STATE_ORDER: tuple[State, ...] = ("ok", "warn", "unknown", "fail")
_RANK: dict[str, int] = {s: i for i, s in enumerate(STATE_ORDER)}


def worst(states: Iterable[str]) -> State:
    """The most severe of ``states`` (fail > unknown > warn > ok); ``"ok"`` when empty.

    Any string that is not a known state counts as ``"unknown"``.
    """
    best = 0
    for s in states:
        best = max(best, _RANK.get(s, _RANK["unknown"]))
    return STATE_ORDER[best]


def state_rank(state: str) -> int:
    """0 (ok) .. 3 (fail); unknown strings rank as ``"unknown"``."""
    return _RANK.get(state, _RANK["unknown"])


@dataclass
class Raw:
    """One tool call's evidence, kept for drill-down. ``rc`` None = no exit status."""

    command: str
    rc: int | None
    stdout: str
    stderr: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Raw:
        rc = d.get("rc")
        return cls(
            str(d.get("command", "")),
            rc if isinstance(rc, int) else None,
            str(d.get("stdout", "")),
            str(d.get("stderr", "")),
        )


@dataclass(frozen=True)
class NpuProcess:
    """A row of the `npu-smi info` process table."""

    pid: int
    name: str
    memory_mb: int


@dataclass(frozen=True)
class ChipMapRow:
    """A non-Mcu row of `npu-smi info -m`. ``phy_id`` None when the column is missing."""

    npu_id: int
    chip_id: int
    logic_id: int
    phy_id: int | None
    name: str


@dataclass(frozen=True)
class IpInfo:
    """`hccn_tool -i N -ip -g`: ``preset`` False = "no ip was preset", None = can't tell."""

    ip: str | None
    netmask: str | None
    preset: bool | None


@dataclass
class DeviceHealth:
    """Health of one logic device (A3: one die; A2: one card).

    ``id`` is the logic id (``hccn_tool -i``); ``card``/``chip`` the npu-smi ``-i``/``-c``.
    ``conf`` holds this device's /etc/hccn.conf keys without the ``_N`` suffix. ``raw`` is
    keyed by check name: lldp, link, net_health, netdetect, gateway, ip, vnic, tls, spod.
    """

    id: int
    state: State = "unknown"
    reasons: list[str] = field(default_factory=list)
    link: str | None = None
    net_health: str | None = None
    lldp_ifname: str | None = None
    netdetect: str | None = None
    gateway: str | None = None
    gateway_iface: str | None = None
    ip: str | None = None
    netmask: str | None = None
    ip_preset: bool | None = None
    vnic_link: str | None = None
    vnic_ip: str | None = None
    vnic_netmask: str | None = None
    tls_switch: int | None = None
    sdid: int | None = None
    super_pod_id: int | None = None
    super_pod_size: int | None = None
    server_index: int | None = None
    card: int | None = None
    chip: int | None = None
    phy_id: int | None = None
    npu_health: str | None = None
    hbm_used_mb: int | None = None
    hbm_total_mb: int | None = None
    processes: list[NpuProcess] = field(default_factory=list)
    conf: dict[str, str] = field(default_factory=dict)
    raw: dict[str, Raw] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DeviceHealth:
        kw = {k: v for k, v in d.items() if k in _DEVICE_FIELDS}
        kw["processes"] = [NpuProcess(**p) for p in d.get("processes", [])]
        kw["raw"] = {k: Raw.from_dict(v) for k, v in d.get("raw", {}).items()}
        kw["reasons"] = list(d.get("reasons", []))
        kw["conf"] = dict(d.get("conf", {}))
        return cls(**kw)


@dataclass
class NodeHealth:
    """Health of one node. ``state``/``reasons`` are filled by classification.

    ``tools`` says whether ``hccn_tool`` / ``npu-smi`` exist; ``raw`` holds the node-level
    evidence: npu_smi_info, npu_smi_map, npu_smi_list, hccn_conf.
    """

    name: str
    soc: str
    reachable: bool
    error: str | None = None
    devices: list[DeviceHealth] = field(default_factory=list)
    tools: dict[str, bool] = field(default_factory=dict)
    chip_map: list[ChipMapRow] = field(default_factory=list)
    taken_at: float = 0.0
    raw: dict[str, Raw] = field(default_factory=dict)
    state: State = "unknown"
    reasons: list[str] = field(default_factory=list)

    def device(self, dev_id: int) -> DeviceHealth | None:
        for d in self.devices:
            if d.id == dev_id:
                return d
        return None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NodeHealth:
        kw = {k: v for k, v in d.items() if k in _NODE_FIELDS}
        kw["devices"] = [DeviceHealth.from_dict(x) for x in d.get("devices", [])]
        kw["chip_map"] = [ChipMapRow(**x) for x in d.get("chip_map", [])]
        kw["raw"] = {k: Raw.from_dict(v) for k, v in d.get("raw", {}).items()}
        kw["tools"] = dict(d.get("tools", {}))
        kw["reasons"] = list(d.get("reasons", []))
        return cls(**kw)


PingKind = Literal["roce", "hccs"]


@dataclass
class PingResult:
    """One ``hccn_tool -ping`` (RoCE) or ``-hccs_ping`` (A3 vNIC) from src to dst."""

    src_node: str
    src_dev: int
    dst_node: str
    dst_dev: int
    address: str
    transmitted: int | None
    received: int | None
    loss_pct: float | None
    avg_ms: float | None
    ok: bool
    reason: str | None
    raw: Raw
    kind: PingKind = "roce"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PingResult:
        kw = {k: v for k, v in d.items() if k in _PING_FIELDS}
        kw["raw"] = Raw.from_dict(d.get("raw", {}))
        return cls(**kw)


_DEVICE_FIELDS = frozenset(DeviceHealth.__dataclass_fields__)
_NODE_FIELDS = frozenset(NodeHealth.__dataclass_fields__)
_PING_FIELDS = frozenset(PingResult.__dataclass_fields__)
