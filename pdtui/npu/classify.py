"""Health classification of parsed NPU data: per device, then across the cluster.

States: ok / warn / fail / unknown, combined with `worst` (fail > unknown > warn > ok).
Every reason is one short sentence naming the value it is about. Reasons are sorted
most severe first, so ``reasons[0]`` explains ``state``.

Device rules (`classify_device`):

- Missing data is never ok: a required value that is absent gives ``unknown`` with
  "no data: <check> (<why>)" -- not collected, the tool's rc and message, or unparsable
  output. Required: link, net_health, ip, tls, npu-smi health; on A3 also vnic, spod.
  lldp, netdetect and gateway are informational and never change the state.
- link DOWN -> fail; net health other than Success -> fail.
- A3 HCCS-only case: link DOWN or net health Init/Fault, with no RoCE IP preset, while
  the vNIC is UP -> warn. A3 nodes that use only HCCS report exactly this while
  ``hccn_tool -hccs_ping`` succeeds: the optional RoCE plane is not configured, and
  hccs_ping is the ground truth.
- No RoCE IP preset -> fail on A2 (RoCE is the only plane), warn on A3 (HCCS may be used).
- A3: vNIC link DOWN -> fail; missing vNIC IP or SDID -> fail.
- A3: SDID that does not decode to the reported Server Index and device -> warn.
- hccn.conf address differs from ``-ip -g``, or only one of them has an address -> warn;
  hccn.conf ``tls_enable`` differs from ``-tls -g`` -> warn.
- npu-smi health Warning -> warn; any other non-OK value (Alarm, Critical, ...) -> fail.
- Processes on the device -> warn ("busy: N processes, pid ...").

Cluster rules (`classify_cluster`):

- Unreachable node -> every device unknown with the node error.
- TLS switch: a device that differs from the rest of its node fails; between nodes, the
  nodes whose value fewer nodes have fail, and when no value has more nodes (one node against
  one) every node fails, as a disagreement: each reason names both values and the nodes.
- Duplicate SDID or duplicate vNIC IP within one super pod -> fail on every holder.
- Duplicate RoCE IP across the cluster -> fail on every holder.
- A failed ping -> fail on its source and destination ("ping to <node>:<dev> <address>
  lost N/M" / "ping from ..."; the address is always the one that was pinged), except
  RoCE pings touching an A3 HCCS-only device. A successful hccs_ping to or from an
  HCCS-only device turns its explanation into "RoCE plane not configured; HCCS ping ok"
  (still warn).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from typing import TypeVar

from pdtui.npu.model import (
    STATE_ORDER,
    DeviceHealth,
    NodeHealth,
    PingResult,
    Raw,
    State,
    state_rank,
    worst,
)
from pdtui.npu.parse import decode_sdid

__all__ = [
    "HCCS_OK_REASON",
    "STATE_ORDER",
    "classify_cluster",
    "classify_device",
    "is_hccs_only",
    "worst",
]

HCCS_OK_REASON = "RoCE plane not configured; HCCS ping ok"
_HCCS_ONLY_PREFIX = "RoCE plane not configured"
_RAW_SNIPPET = 60


_Fresh = TypeVar("_Fresh", DeviceHealth, NodeHealth)


def _fresh(item: _Fresh) -> _Fresh:
    """A shallow copy with no reasons yet (``dataclasses.replace`` is several times slower,
    and a 64-node sweep copies over 1000 devices)."""
    out = object.__new__(type(item))
    out.__dict__.update(item.__dict__)
    out.reasons = []
    return out


def _snippet(text: str) -> str:
    s = " ".join(text.split())
    return s if len(s) <= _RAW_SNIPPET else s[: _RAW_SNIPPET - 3] + "..."


def _tool(raw: Raw) -> str:
    words = raw.command.split()
    return words[0].rsplit("/", 1)[-1] if words else "command"


def _why(raw: Raw | None) -> str:
    """Why a check gave no value, from its evidence."""
    if raw is None:
        return "not collected"
    msg = _snippet(raw.stderr) or _snippet(raw.stdout)
    if raw.rc is None:
        return f"{_tool(raw)} gave no exit status" + (f": {msg}" if msg else "")
    if raw.rc == 124 and not msg:  # what `timeout` exits with
        return f"{_tool(raw)} timed out (rc 124)"
    if raw.rc != 0:
        return f"{_tool(raw)} rc {raw.rc}" + (f": {msg}" if msg else "")
    if not raw.stdout.strip():
        return f"{_tool(raw)} printed nothing"
    return f"unparsable output: {_snippet(raw.stdout)!r}"


class _Findings:
    """What the rules found about one device, in the order they found it."""

    def __init__(self, dev: DeviceHealth, soc: str, node_raw: dict[str, Raw] | None) -> None:
        self.dev = dev
        self.a3 = soc == "A3"
        self.hccs_only = is_hccs_only(dev, soc)
        self.node_raw = node_raw or {}
        self.items: list[tuple[State, str]] = []

    def add(self, state: State, reason: str) -> None:
        self.items.append((state, reason))

    def no_data(self, check: str, raw: Raw | None) -> None:
        self.add("unknown", f"no data: {check} ({_why(raw)})")


def _finish(dev: DeviceHealth, found: Iterable[tuple[State, str]]) -> DeviceHealth:
    """Set state (ok when nothing was found) and reasons: a hanging tool first (it causes the
    rest), then the most severe."""
    items = sorted(found, key=lambda sr: (not _HANG.match(sr[1]), -state_rank(sr[0])))
    dev.state = worst(s for s, _ in items)
    dev.reasons = list(dict.fromkeys(r for _, r in items))
    return dev


def is_hccs_only(dev: DeviceHealth, soc: str) -> bool:
    """A3 device whose (optional) RoCE plane is simply not configured.

    RoCE link DOWN or net health Init/Fault, no RoCE IP preset, vNIC UP: what an A3 node
    that uses only HCCS reports.
    """
    if soc != "A3" or dev.ip_preset is not False or dev.vnic_link != "UP":
        return False
    return dev.link == "DOWN" or dev.net_health in ("Init", "Fault")


def _physical_id(dev: DeviceHealth) -> int:
    return dev.phy_id if dev.phy_id is not None else dev.id


# Device rules, in the order their reasons are listed (within one state). Each looks at
# ``f.dev`` and adds what it finds to ``f``.


def _roce_no_data(f: _Findings) -> None:
    dev, raw = f.dev, f.dev.raw
    if dev.link is None:
        f.no_data("link", raw.get("link"))
    if dev.net_health is None:
        f.no_data("net health", raw.get("net_health"))
    if dev.ip_preset is None:
        f.no_data("RoCE IP", raw.get("ip"))


def _roce_hccs_only(f: _Findings) -> None:
    if not f.hccs_only:
        return
    parts = []
    if f.dev.link == "DOWN":
        parts.append("link DOWN")
    if f.dev.net_health is not None and f.dev.net_health != "Success":
        parts.append(f"net health '{f.dev.net_health}'")
    parts.append("no RoCE IP preset")
    f.add(
        "warn",
        f"{_HCCS_ONLY_PREFIX} ({', '.join(parts)}) while the vNIC is UP; "
        "on A3 hccs_ping is the ground truth",
    )


def _roce_plane(f: _Findings) -> None:
    if f.hccs_only:
        return
    dev = f.dev
    if dev.link == "DOWN":
        f.add("fail", "link DOWN")
    if dev.net_health is not None and dev.net_health != "Success":
        f.add("fail", f"net health '{dev.net_health}' (expected Success)")
    if dev.ip_preset is False:
        f.add(
            "warn" if f.a3 else "fail",
            f"no RoCE IP preset (hccn_tool -ip -g rc {_rc_text(dev.raw.get('ip'))})",
        )


def _tls_no_data(f: _Findings) -> None:
    if f.dev.tls_switch is None:
        f.no_data("TLS switch", f.dev.raw.get("tls"))


#: Exit codes of a tool that gave no answer: timed out (124), not runnable or missing
#: (126/127). No data then, which is unknown, not a verdict on the device.
_NO_ANSWER = {124, 126, 127}


def _missing_a3_id(f: _Findings, check: str, key: str, what: str) -> str | None:
    """``what`` and why, when the tool answered without it; else adds no data (unknown)."""
    raw = f.dev.raw.get(key)
    if raw is None or raw.rc is None or raw.rc in _NO_ANSWER:
        f.no_data(check, raw)
        return None
    return f"{what} ({_why(raw)})"


def _a3_vnic_and_sdid(f: _Findings) -> None:
    if not f.a3:
        return
    missing = []
    if f.dev.vnic_ip is None:
        missing.append(_missing_a3_id(f, "vNIC", "vnic", "vNIC IP"))
    if f.dev.sdid is None:
        missing.append(_missing_a3_id(f, "SDID", "spod", "SDID"))
    named = [m for m in missing if m is not None]
    if named:
        f.add("fail", f"A3 links need the vNIC IP and SDID; missing {', '.join(named)}")


def _a3_vnic_link(f: _Findings) -> None:
    dev = f.dev
    if not f.a3:
        return
    if dev.vnic_link == "DOWN":
        f.add("fail", "vNIC link DOWN")
    elif dev.vnic_link is None and "vnic" in dev.raw and dev.vnic_ip is not None:
        f.no_data("vNIC link", dev.raw.get("vnic"))


def _a3_sdid_matches(f: _Findings) -> None:
    dev = f.dev
    if not f.a3 or dev.sdid is None or dev.server_index is None:
        return
    server, _card, _die, sdev = decode_sdid(dev.sdid)
    want_dev = _physical_id(dev)
    if server != dev.server_index or sdev != want_dev:
        f.add(
            "warn",
            f"SDID {dev.sdid} decodes to server {server} device {sdev}, "
            f"expected server {dev.server_index} device {want_dev}",
        )


def _conf_address(f: _Findings) -> None:
    """/etc/hccn.conf ``address_<phy id>`` against ``hccn_tool -ip -g``."""
    dev = f.dev
    conf_raw = f.node_raw.get("hccn_conf")
    conf_addr = dev.conf.get("address")
    if conf_addr is not None and dev.ip is not None and conf_addr != dev.ip:
        f.add("warn", f"hccn.conf address {conf_addr} differs from hccn_tool -ip {dev.ip}")
    elif conf_addr is not None and dev.ip_preset is False:
        f.add("warn", f"hccn.conf address {conf_addr} but hccn_tool -ip has no IP preset")
    elif conf_addr is None and dev.ip is not None and conf_raw is not None:
        if conf_raw.rc == 0:
            f.add("warn", f"hccn.conf has no address_{_physical_id(dev)} (hccn_tool -ip {dev.ip})")
        else:
            f.add("warn", f"/etc/hccn.conf unreadable ({_why(conf_raw)})")


def _conf_tls(f: _Findings) -> None:
    conf_tls = f.dev.conf.get("tls_enable")
    switch = f.dev.tls_switch
    if conf_tls is not None and switch is not None and conf_tls != str(switch):
        f.add(
            "warn", f"hccn.conf tls_enable {conf_tls} differs from hccn_tool -tls switch {switch}"
        )


def _npu_smi_health(f: _Findings) -> None:
    health = f.dev.npu_health
    if health is None:
        smi = f.node_raw.get("npu_smi_info")
        if smi is not None and smi.rc == 0 and smi.stdout.strip():
            f.add("unknown", "no data: npu-smi health (device not in npu-smi info)")
        else:
            f.no_data("npu-smi health", smi)
    elif health.upper() != "OK":
        sev: State = "warn" if health.lower() == "warning" else "fail"
        f.add(sev, f"npu-smi health {health} (expected OK)")


def _busy(f: _Findings) -> None:
    if f.dev.processes:
        pids = ", ".join(str(p.pid) for p in f.dev.processes)
        n = len(f.dev.processes)
        f.add("warn", f"busy: {n} process{'es' if n != 1 else ''}, pid {pids}")


_DEVICE_RULES: tuple[Callable[[_Findings], None], ...] = (
    _roce_no_data,
    _roce_hccs_only,
    _roce_plane,
    _tls_no_data,
    _a3_vnic_and_sdid,
    _a3_vnic_link,
    _a3_sdid_matches,
    _conf_address,
    _conf_tls,
    _npu_smi_health,
    _busy,
)


def _device_findings(
    dev: DeviceHealth, soc: str, node_raw: dict[str, Raw] | None
) -> list[tuple[State, str]]:
    f = _Findings(dev, soc, node_raw)
    for rule in _DEVICE_RULES:
        rule(f)
    return f.items


def _rc_text(raw: Raw | None) -> str:
    if raw is None or raw.rc is None:
        return "?"
    return str(raw.rc)


def classify_device(
    dev: DeviceHealth, soc: str, node_raw: dict[str, Raw] | None = None
) -> DeviceHealth:
    """A copy of ``dev`` with ``state`` and ``reasons`` set from its own data.

    ``node_raw`` (the node's npu_smi_info / hccn_conf evidence) sharpens some reasons.
    Idempotent: earlier state and reasons are ignored.
    """
    out = _fresh(dev)
    return _finish(out, _device_findings(out, soc, node_raw))


def _tag(key: tuple[str, int]) -> str:
    return f"{key[0]}:{key[1]}"


Key = tuple[str, int]
Finding = tuple[State, str]


def _leader(counts: Counter[int]) -> tuple[int, bool]:
    """The most common value and whether another value is as common (a tie)."""
    top = max(counts.values())
    leaders = sorted(v for v, c in counts.items() if c == top)
    return leaders[0], len(leaders) > 1


def _node_tls(name: str, devs: dict[int, int], found: dict[Key, list[Finding]]) -> int | None:
    """A node's TLS switch; its devices that disagree with the others fail. None: a tie."""
    value, tied = _leader(Counter(devs.values()))
    if tied:
        where = "; ".join(
            f"{v} on devices {', '.join(str(d) for d, x in devs.items() if x == v)}"
            for v in sorted(set(devs.values()))
        )
        for dev_id, v in devs.items():
            found[(name, dev_id)].append(
                ("fail", f"TLS switch {v}, but this node's devices disagree ({where}): {_TLS_FIX}")
            )
        return None
    for dev_id, v in devs.items():
        if v != value:
            found[(name, dev_id)].append(
                (
                    "fail",
                    f"TLS switch {v} differs from the other devices of {name} ({value}): "
                    f"{_TLS_FIX}",
                )
            )
    return value


_TLS_FIX = "set one TLS switch value on every device of every node"


def _tls_rule(live: list[NodeHealth], found: dict[Key, list[Finding]]) -> None:
    """Every device of every node must have one TLS switch value. Within a node, devices
    that differ from the rest fail; between nodes, a value held by fewer nodes fails, and
    when no value has more nodes, every side fails: a disagreement, both values named."""
    nodes: dict[str, int] = {}
    devices: dict[str, dict[int, int]] = {}
    for n in live:
        devs = {d.id: d.tls_switch for d in n.devices if d.tls_switch is not None}
        if devs:
            devices[n.name] = devs
            value = _node_tls(n.name, devs, found)
            if value is not None:
                nodes[n.name] = value
    counts = Counter(nodes.values())
    if len(counts) < 2:
        return
    leader, tied = _leader(counts)
    for name, v in nodes.items():
        if not tied and v == leader:
            continue
        others = "; ".join(
            f"{x} on {', '.join(m for m, y in nodes.items() if y == x)}"
            for x in sorted(counts)
            if x != v
        )
        why = "the nodes disagree" if tied else "the value most nodes have"
        for dev_id, dv in devices[name].items():
            if dv == v:
                found[(name, dev_id)].append(
                    ("fail", f"TLS switch {v} here, {others} ({why}): {_TLS_FIX}")
                )


def _unique_rules(live: list[NodeHealth], found: dict[Key, list[Finding]]) -> None:
    """SDIDs and vNIC IPs are unique within a super pod (A3); RoCE IPs across the cluster."""
    sdids: dict[tuple[int | None, int], list[Key]] = defaultdict(list)
    vnics: dict[tuple[int | None, str], list[Key]] = defaultdict(list)
    roce: dict[str, list[Key]] = defaultdict(list)
    for n in live:
        a3 = n.soc == "A3"
        for d in n.devices:
            if a3 and d.sdid is not None:
                sdids[(d.super_pod_id, d.sdid)].append((n.name, d.id))
            if a3 and d.vnic_ip is not None:
                vnics[(d.super_pod_id, d.vnic_ip)].append((n.name, d.id))
            if d.ip is not None:
                roce[d.ip].append((n.name, d.id))
    for (p, sdid), holders in sdids.items():
        _duplicated(holders, f"SDID {sdid} duplicated in super pod {_pod(p)}", found)
    for (p, ip), holders in vnics.items():
        _duplicated(holders, f"vNIC IP {ip} duplicated in super pod {_pod(p)}", found)
    for ip, holders in roce.items():
        _duplicated(holders, f"RoCE IP {ip} duplicated", found)


def _pod(p: int | None) -> str:
    return "?" if p is None else str(p)


def _duplicated(holders: list[Key], what: str, found: dict[Key, list[Finding]]) -> None:
    """Fail every holder of a value that more than one device holds."""
    if len(holders) > 1:
        where = ", ".join(_tag(h) for h in holders)
        for h in holders:
            found[h].append(("fail", f"{what}: {where}"))


def _ping_rules(
    pings: list[PingResult],
    index: dict[Key, tuple[NodeHealth, DeviceHealth]],
    found: dict[Key, list[Finding]],
) -> set[Key]:
    """Add ping failures; return the devices with a successful hccs_ping."""
    hccs_ok: set[Key] = set()
    for p in pings:
        src, dst = (p.src_node, p.src_dev), (p.dst_node, p.dst_dev)
        if p.ok:
            if p.kind == "hccs":
                hccs_ok.update((src, dst))
            continue
        if p.kind == "roce" and any(_is_hccs_only(index.get(k)) for k in (src, dst)):
            continue
        what = "hccs_ping" if p.kind == "hccs" else "ping"
        if p.raw.rc == 124:  # the tool hung on the source node: name it as the cause
            loss = f"failed: {_hang(_tool(p.raw), p.src_node)}"
        elif p.transmitted is not None and p.received is not None:
            loss = f"lost {max(p.transmitted - p.received, 0)}/{p.transmitted}"
        else:
            loss = f"failed: {p.reason or 'no ping summary'}"
        if src in index:
            found[src].append(("fail", f"{what} to {_tag(dst)} {p.address} {loss}"))
        if dst in index and dst != src:
            found[dst].append(("fail", f"{what} from {_tag(src)} {p.address} {loss}"))
    return hccs_ok


def classify_cluster(
    nodes: list[NodeHealth], pings: list[PingResult] | None = None
) -> list[NodeHealth]:
    """Classify every device of every node, then apply the cross-node rules.

    Returns new `NodeHealth` objects (the inputs are not modified); each node's ``state``
    is the worst of its devices and its own ``reasons`` (tool missing, no devices, ...).
    Idempotent: earlier states and reasons are ignored.
    """
    found: dict[Key, list[Finding]] = defaultdict(list)
    out = [_classify_node(n, found) for n in nodes]
    live = [n for n in out if n.reachable]
    index = {(n.name, d.id): (n, d) for n in live for d in n.devices}
    _tls_rule(live, found)
    _unique_rules(live, found)
    hccs_ok = _ping_rules(pings or [], index, found)
    for n in live:
        for d in n.devices:
            _finish(
                d,
                _explained(
                    found.get((n.name, d.id), []),
                    (n.name, d.id) in hccs_ok and is_hccs_only(d, n.soc),
                ),
            )
    for n in out:
        n.state = _node_state(n)
    return out


#: A reason that names a hanging tool (shown first: it causes the rest).
_HANG = re.compile(r"[\w.-]+ timed out on ")


def _hang(tool: str, node: str) -> str:
    return f"{tool} timed out on {node}"


def _hangs(node: str, raws: dict[str, Raw]) -> list[str]:
    """One cause per tool that timed out (rc 124) in these calls."""
    return sorted({_hang(_tool(r), node) for r in raws.values() if r.rc == 124})


def _hang_summary(n: NodeHealth) -> list[str]:
    """Per tool that hung on the node: how many of its calls, and what that explains."""
    calls = [r for d in n.devices for r in d.raw.values()] + list(n.raw.values())
    counts = Counter(_tool(r) for r in calls if r.rc == 124)
    return [
        f"{_hang(tool, n.name)} ({k} of {len(calls)} calls): the tool hangs there; the "
        f"missing data and failed pings of {n.name} follow from it (run it by hand on the "
        f"node, e.g. '{tool} -i 0 -link -g', and check the driver)"
        for tool, k in sorted(counts.items())
    ]


def _classify_node(n: NodeHealth, found: dict[Key, list[Finding]]) -> NodeHealth:
    """A fresh copy of ``n``: its own reasons set, its devices' findings put in ``found``
    (an unreachable node's devices are unknown at once)."""
    node = _fresh(n)
    node.devices = [_fresh(d) for d in n.devices]
    if not n.reachable:
        why = n.error or "no error message"
        for d in node.devices:
            d.state, d.reasons = "unknown", [f"no data: node unreachable ({why})"]
        node.reasons = [f"node unreachable ({why})"]
        return node
    for d in node.devices:
        found[(n.name, d.id)] = _device_findings(d, n.soc, n.raw)
        found[(n.name, d.id)] += [("unknown", cause) for cause in _hangs(n.name, d.raw)]
    node.reasons += [
        f"{tool} not found on {n.name}" for tool, present in sorted(n.tools.items()) if not present
    ]
    node.reasons += _hang_summary(n)
    if not n.devices:
        node.reasons.append("no NPU devices found")
    return node


def _explained(items: list[Finding], hccs_ping_ok: bool) -> list[Finding]:
    """An HCCS-only device whose hccs_ping worked: say so instead of the RoCE warning."""
    if not hccs_ping_ok:
        return items
    return [(s, HCCS_OK_REASON if r.startswith(_HCCS_ONLY_PREFIX) else r) for s, r in items]


def _is_hccs_only(entry: tuple[NodeHealth, DeviceHealth] | None) -> bool:
    return entry is not None and is_hccs_only(entry[1], entry[0].soc)


def _node_state(n: NodeHealth) -> State:
    """Worst device state; unknown when unreachable or without devices; node-level
    reasons (a missing tool) count as warn."""
    if not n.reachable or not n.devices:
        return "unknown"
    return worst([*(d.state for d in n.devices), *("warn" for _ in n.reasons)])
