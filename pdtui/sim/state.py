"""Simulated NPU cluster state: nodes, devices, faults; JSON round trip and atomic saves.

The fake tools (`pdtui.sim.tools`) are spawned as one process per call and re-read the
state file each time, so another process (`pdtui sim fault ...`) can change a running
simulator by rewriting the file. Writes are atomic (temp file in the same directory,
then `os.replace`), so a reader never sees a half-written file.

This module is imported by every fake tool call: stdlib (and the stdlib-only `pdtui.npu.parse`).

Formulas (from the Ascend driver's hccn_tool and npu-smi sources; real SDIDs 104857600 and
104923137 of Server Index 25 are in https://github.com/vllm-project/vllm-ascend/pull/2939):

- ``sdid(server, dev) = (server << 22) | ((dev // 2) << 18) | (die << 16) | dev``, die = dev % 2,
  with ``server`` the node's Server Index inside its super pod (SDIDs are unique per super pod)
- ``vnic_ip(server, dev) = 192.<server>.<2 + die>.<199 - dev>`` (second octet 168 when
  server > 47, as in the driver) -- this is the address of every node of super pod 0
- ``npu-smi info -t spod-info`` prints SDID, Super Pod Size, Super Pod ID, Server Index

Super pods. A3 nodes fill super pods of ``super_pod_size`` (48, as a real
spod-info shows) servers in input order: node i takes slot ``server_index_base + i``, which is super
pod ``slot // size`` and Server Index ``slot % size``. So with base 0, 64 nodes are pod 0
servers 0-47 and pod 1 servers 0-15; with the default base 25, the first 23 nodes are pod 0
servers 25-47 and the next ones start pod 1 at server 0. Each node's spod-info shows its own
Super Pod ID and Server Index; its SDIDs follow the formula from that Server Index,
so the same SDID appears once in every super pod (SDIDs are unique only per super pod;
pdtui's classifier groups SDIDs and vNIC IPs by Super Pod ID).

Choices made here (the simulator's own):

- vNIC IPs across super pods. The driver's formula covers one super pod, and vNIC IPs
  are unique only within a super pod, so real pods may reuse each other's addresses. The
  simulator keeps them unique across the cluster by moving each pod to its own pair of third
  octets: super pod p, Server Index s, device d -> ``192.<s>.<2 + 2p + die>.<199 - d>``.
  Pod 0 is exactly the driver's formula; pod 1 uses third octets 4/5, pod 2 6/7, and so on
  (`parse_vnic_ip` reads the pod back). ``hccn_tool -hccs_ping -g sdid N`` resolves N in the
  pinging node's own super pod; ``address`` pings resolve the (cluster-unique) vNIC IP in any
  pod and succeed across pods, although real HCCS links do not leave a super pod.
- Server Index: nodes get 25, 26, 27, ... in input order by default (25 gives the real
  A3 SDIDs of vllm-ascend PR #2939, so the first two nodes have SDIDs 104857600/104923137 and
  vNIC 192.25.2.199/192.25.3.198, ...). `build_state` refuses A3 clusters with a Server Index
  above 47 (a super pod size above 48: the vNIC second octet would collapse to 168).
- Super Pod IDs are 0, 1, 2, ... in input order.
- RoCE addresses: node i (0-based), device d -> ``29.1.<i+1>.<100+d>`` in one /16
  (netmask 255.255.0.0, gateway and netdetect 29.1.0.1), so every device can reach every
  other; at most 254 nodes.
- LLDP neighbour ports: node i, device d -> ``400GE<d//8+1>/<(d%8)//2+1>/<5+i>:<d%2+1>``
  (node 0's first 8 devices give ``400GE1/1/5:1`` ... ``400GE1/4/5:2``, the shape of a real
  switch's port names); switch name ``leaf-<i//8+1>``.
- Per-device numbers for `npu-smi info`: A3 power ~181-189 W on die 0 and ``-`` on die 1,
  temperatures 33-40 C, HBM used ~3200-3500 MB of 65536 (A2: ~2800-3100 MB of 32768),
  PCI bus ids from a fixed table, all derived deterministically from (node, device).
- `hccn.conf` leaves out every line of a device with no RoCE address (``no-ip`` fault).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from pdtui.npu.parse import NET_HEALTH_VALUES as NET_HEALTH_VALUES  # re-exported

STATE_VERSION = 1


Soc = Literal["A2", "A3"]
SOCS: tuple[str, ...] = ("A2", "A3")

DEFAULT_SERVER_INDEX_BASE = 25
DEFAULT_SUPER_POD_SIZE = 48
#: The vNIC scheme has room for this many super pods (third octets 2..255).
MAX_SUPER_PODS = 127
ROCE_NETMASK = "255.255.0.0"
ROCE_GATEWAY = "29.1.0.1"
VNIC_NETMASK = "255.255.255.0"

# PCI bus numbers per logic device (A3: card-major, die 0 then die 1; A2: one per card).
_A3_BUS = (
    0x9D,
    0x9F,
    0x99,
    0x9B,
    0xB9,
    0xBB,
    0xB5,
    0xB7,
    0x3D,
    0x3F,
    0x39,
    0x3B,
    0x59,
    0x5B,
    0x55,
    0x57,
)
_A2_BUS = (0xC1, 0x01, 0xC2, 0x02, 0x81, 0x41, 0x82, 0x42)


class StateError(Exception):
    """A state file is missing, malformed, or a lookup failed."""


@dataclass
class Fault:
    """One injected fault: ``NODE[:DEVICE]:KIND[=VALUE]`` (parsing lives in `faults`)."""

    node: str
    device: int | None
    kind: str
    value: str | None = None

    def __str__(self) -> str:
        spec = self.node
        if self.device is not None:
            spec += f":{self.device}"
        spec += f":{self.kind}"
        if self.value is not None:
            spec += f"={self.value}"
        return spec


@dataclass
class ProcessState:
    """A process shown in the second `npu-smi info` table."""

    pid: int
    name: str = ""
    memory_mb: int = 0


@dataclass
class DeviceState:
    """One logic device (A3: one die of a card; A2: one card). Baseline, faults not applied."""

    id: int
    roce_ip: str | None
    netmask: str = ROCE_NETMASK
    gateway: str | None = ROCE_GATEWAY
    netdetect: str | None = ROCE_GATEWAY
    lldp_ifname: str = ""
    lldp_system: str = "leaf-1"
    link: str = "UP"
    net_health: str = "Success"
    tls_switch: int = 0
    tls_preconfigured: int = 1
    tls_alarm_days: int = 60
    send_arp_status: int = 1
    vnic_link: str = "UP"
    hbm_used_mb: int = 3402
    hbm_total_mb: int = 65536
    health: str = "OK"
    power_w: float | None = None
    temp_c: int = 36
    aicore_pct: int = 0
    bus_id: str = "0000:00:00.0"
    processes: list[ProcessState] = field(default_factory=list)


@dataclass
class NodeState:
    name: str
    ip: str
    soc: str
    npus: int
    server_index: int = 0
    #: A3: the super pod this node is in (Server Index counts from 0 in each pod)
    super_pod_id: int = 0
    nic: str = "eth0"
    devices: list[DeviceState] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)

    @property
    def chips_per_card(self) -> int:
        return 2 if self.soc == "A3" else 1

    @property
    def cards(self) -> int:
        return self.npus // self.chips_per_card

    def card_chip(self, dev: int) -> tuple[int, int]:
        """Logic device id -> (npu-smi NPU ID, Chip ID)."""
        return divmod(dev, self.chips_per_card)

    def vnic_ip(self, dev: int) -> str:
        """A3 vNIC IP of logic device ``dev`` (unique across the simulated cluster)."""
        return vnic_ip(self.server_index, dev, self.super_pod_id)

    def sdid(self, dev: int) -> int:
        """A3 SDID of logic device ``dev`` (unique within this node's super pod)."""
        return sdid(self.server_index, dev)

    def device(self, dev: int) -> DeviceState:
        for d in self.devices:
            if d.id == dev:
                return d
        raise StateError(f"node {self.name} has no device {dev}")

    def has_device(self, dev: int) -> bool:
        return any(d.id == dev for d in self.devices)

    def faults_of(self, kind: str, device: int | None = None) -> list[Fault]:
        """Faults of `kind`; with `device`, only those on that device."""
        return [f for f in self.faults if f.kind == kind and (device is None or f.device == device)]


@dataclass
class SimState:
    nodes: list[NodeState]
    latency_ms: int = 100
    super_pod_size: int = DEFAULT_SUPER_POD_SIZE

    def node(self, name: str) -> NodeState:
        for n in self.nodes:
            if n.name == name:
                return n
        known = ", ".join(n.name for n in self.nodes) or "none"
        raise StateError(f"unknown node {name!r} (known: {known})")

    def node_names(self) -> list[str]:
        return [n.name for n in self.nodes]

    def find_device_by_ip(self, ip: str) -> tuple[NodeState, DeviceState] | None:
        """Device whose baseline RoCE IP or (A3) vNIC IP is `ip`."""
        for n in self.nodes:
            for d in n.devices:
                if d.roce_ip == ip:
                    return n, d
                if n.soc == "A3" and n.vnic_ip(d.id) == ip:
                    return n, d
        return None

    def find_device_by_sdid(
        self, value: int, super_pod_id: int = 0
    ) -> tuple[NodeState, DeviceState] | None:
        """The A3 device with SDID ``value`` in super pod ``super_pod_id``."""
        for n in self.nodes:
            if n.soc != "A3" or n.super_pod_id != super_pod_id:
                continue
            for d in n.devices:
                if n.sdid(d.id) == value:
                    return n, d
        return None

    def super_pod_ids(self) -> list[int]:
        """The super pods that hold A3 nodes, in ascending order."""
        return sorted({n.super_pod_id for n in self.nodes if n.soc == "A3"})


# --------------------------------------------------------------------------- formulas


def sdid(server: int, dev: int) -> int:
    """Super Device ID of logic device `dev` on the A3 server with Server Index `server`."""
    die = dev % 2
    return (server << 22) | ((dev // 2) << 18) | (die << 16) | dev


def sdid_fields(value: int) -> tuple[int, int, int, int]:
    """SDID -> (server, card, die, dev)."""
    return (value >> 22) & 0x3FF, (value >> 18) & 0xF, (value >> 16) & 0x3, value & 0xFFFF


def vnic_ip(server: int, dev: int, super_pod: int = 0) -> str:
    """A3 vNIC IP ``192.<server>.<2+die>.<199-dev>`` (168 for server > 47) in super pod 0;
    super pod p adds ``2p`` to the third octet (the simulator's choice, see the docstring)."""
    second = server if server <= 47 else 168
    return f"192.{second}.{2 + 2 * super_pod + dev % 2}.{199 - dev}"


def parse_vnic_ip(ip: str) -> tuple[int, int, int] | None:
    """Well-formed vNIC IP -> (server, dev, super pod); None when `ip` is not one."""
    parts = ip.split(".")
    if len(parts) != 4 or not all(p.isdigit() and len(p) <= 3 for p in parts):
        return None
    a, server, third, fourth = (int(p) for p in parts)
    if a != 192 or server > 255 or not 2 <= third <= 2 + 2 * MAX_SUPER_PODS - 1 or fourth > 199:
        return None
    dev = 199 - fourth
    if dev > 15 or dev % 2 != third % 2:
        return None
    return server, dev, (third - 2) // 2


def roce_ip(node_index: int, dev: int) -> str:
    return f"29.1.{node_index + 1}.{100 + dev}"


def lldp_ifname(node_index: int, dev: int) -> str:
    return f"400GE{dev // 8 + 1}/{(dev % 8) // 2 + 1}/{5 + node_index}:{dev % 2 + 1}"


def _mix(*parts: object) -> int:
    """Small deterministic hash (not Python's randomised `hash`)."""
    h = 2166136261
    for ch in "/".join(str(p) for p in parts).encode():
        h = ((h ^ ch) * 16777619) & 0xFFFFFFFF
    return h


# --------------------------------------------------------------------------- building


def build_state(
    nodes: list[tuple[str, str, str, int]],
    latency_ms: int = 100,
    server_index_base: int = DEFAULT_SERVER_INDEX_BASE,
    super_pod_size: int = DEFAULT_SUPER_POD_SIZE,
) -> SimState:
    """Build a consistent cluster from ``(name, data-plane ip, soc, npus)`` tuples.

    Node i sits in slot ``server_index_base + i``: super pod ``slot // super_pod_size``,
    Server Index ``slot % super_pod_size``.
    """
    _check_layout(nodes, server_index_base, super_pod_size)
    out: list[NodeState] = []
    for i, (name, ip, soc, npus) in enumerate(nodes):
        _check_node(name, soc, npus)
        pod, server = divmod(server_index_base + i, super_pod_size)
        node = NodeState(
            name=name, ip=ip, soc=soc, npus=npus, server_index=server, super_pod_id=pod
        )
        for d in range(npus):
            node.devices.append(_build_device(node, i, d))
        out.append(node)
    return SimState(nodes=out, latency_ms=latency_ms, super_pod_size=super_pod_size)


def _check_layout(
    nodes: list[tuple[str, str, str, int]], server_index_base: int, super_pod_size: int
) -> None:
    """Raise ValueError unless the nodes fit the super pods (unique names, vNIC room)."""
    names = [n[0] for n in nodes]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate node names in {names}")
    if len(nodes) > 254:
        raise ValueError("at most 254 simulated nodes")
    if super_pod_size < 1:
        raise ValueError(f"super pod size must be at least 1, not {super_pod_size}")
    if not 0 <= server_index_base < super_pod_size:
        raise ValueError(
            f"first Server Index {server_index_base} is not in a super pod of {super_pod_size}"
        )
    if any(soc == "A3" for _, _, soc, _ in nodes) and super_pod_size > 48:
        raise ValueError(
            "A3 Server Index above 47 would give colliding vNIC IPs "
            f"(super pod size {super_pod_size} > 48)"
        )
    last_pod = (server_index_base + len(nodes) - 1) // super_pod_size
    if any(soc == "A3" for _, _, soc, _ in nodes) and last_pod >= MAX_SUPER_PODS:
        raise ValueError(f"at most {MAX_SUPER_PODS} A3 super pods (vNIC third octet)")


def _check_node(name: str, soc: str, npus: int) -> None:
    """Raise ValueError for a bad name, SoC or device count."""
    if soc not in SOCS:
        raise ValueError(f"node {name}: soc must be A2 or A3, not {soc!r}")
    if not name or ":" in name or any(c.isspace() for c in name):
        raise ValueError(f"bad node name {name!r}")
    limit = 16 if soc == "A3" else 8
    if not 1 <= npus <= limit or (soc == "A3" and npus % 2):
        raise ValueError(f"node {name}: {npus} devices is not valid for {soc}")


def _build_device(node: NodeState, node_index: int, dev: int) -> DeviceState:
    h = _mix(node.name, dev)
    a3 = node.soc == "A3"
    die = dev % 2 if a3 else 0
    base_power = 181.0 if a3 else 86.0
    power = None if die == 1 else round(base_power + (h % 80) / 10, 1)
    bus = (_A3_BUS if a3 else _A2_BUS)[dev % (16 if a3 else 8)]
    return DeviceState(
        id=dev,
        roce_ip=roce_ip(node_index, dev),
        lldp_ifname=lldp_ifname(node_index, dev),
        lldp_system=f"leaf-{node_index // 8 + 1}",
        hbm_used_mb=(3200 if a3 else 2800) + _mix(node.name, dev, "hbm") % 300,
        hbm_total_mb=65536 if a3 else 32768,
        power_w=power,
        temp_c=33 + _mix(node.name, dev, "temp") % 8,
        bus_id=f"0000:{bus:02X}:00.0",
    )


# --------------------------------------------------------------------------- JSON


def state_to_dict(state: SimState) -> dict[str, Any]:
    d = asdict(state)
    d["version"] = STATE_VERSION
    return d


def _pick(cls: type[Any], data: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


def state_from_dict(data: dict[str, Any]) -> SimState:
    try:
        nodes: list[NodeState] = []
        for nd in data["nodes"]:
            nkw = _pick(NodeState, nd)
            devices = []
            for dd in nd.get("devices", []):
                dkw = _pick(DeviceState, dd)
                dkw["processes"] = [
                    ProcessState(**_pick(ProcessState, p)) for p in dd.get("processes", [])
                ]
                devices.append(DeviceState(**dkw))
            nkw["devices"] = devices
            nkw["faults"] = [Fault(**_pick(Fault, f)) for f in nd.get("faults", [])]
            nodes.append(NodeState(**nkw))
        skw = _pick(SimState, data)
        skw["nodes"] = nodes
        return SimState(**skw)
    except (KeyError, TypeError, AttributeError) as e:
        raise StateError(f"malformed simulator state: {e}") from e


def dumps_state(state: SimState) -> str:
    return json.dumps(state_to_dict(state), indent=1) + "\n"


def loads_state(text: str) -> SimState:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise StateError(f"simulator state is not JSON: {e}") from e
    if not isinstance(data, dict):
        raise StateError("simulator state must be a JSON object")
    return state_from_dict(data)


def load_state(path: str | os.PathLike[str]) -> SimState:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise StateError(f"cannot read simulator state {os.fspath(path)}: {e}") from e
    return loads_state(text)


def save_state(state: SimState, path: str | os.PathLike[str]) -> None:
    """Atomic write: temp file in the same directory, fsync, `os.replace`."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(dumps_state(state))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def modify_state(path: str | os.PathLike[str]) -> Iterator[SimState]:
    """Read-modify-write under an exclusive lock on ``<path>.lock``; saves on success."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{os.fspath(p)}.lock", "a+b") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            state = load_state(p)
            yield state
            save_state(state, p)
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


# --------------------------------------------------------------------------- hccn.conf


def render_hccn_conf(node: NodeState) -> str:
    """/etc/hccn.conf as the tool writes it (``key_<id>=value``), faults applied."""
    from pdtui.sim.faults import effective_device  # import cycle: faults imports us

    lines: list[str] = []
    for base in node.devices:
        d = effective_device(node, base.id)
        if d.roce_ip is None:
            continue
        i = d.id
        lines.append(f"address_{i}={d.roce_ip}")
        lines.append(f"netmask_{i}={d.netmask}")
        if d.netdetect is not None:
            lines.append(f"netdetect_{i}={d.netdetect}")
        if d.gateway is not None:
            lines.append(f"gateway_{i}={d.gateway}")
        lines.append(f"send_arp_status_{i}={d.send_arp_status}")
        lines.append(f"tls_enable_{i}={d.tls_switch}")
    return "".join(line + "\n" for line in lines)
