"""Lint a ranktable: a table of small rules, each reporting what the connector would trip on.

The rules follow what vllm-ascend's ``LLMDataDistCMgrConnector`` does with the file at runtime
(https://github.com/vllm-project/vllm-ascend/blob/v0.11.0rc0/vllm_ascend/distributed/llmdatadist_c_mgr_connector.py):
it keeps the entries whose ``server_id`` is its host IP (``VLLM_HOST_IP``, else the default
route's source address) and whose ``device_id`` is in ``ASCEND_RT_VISIBLE_DEVICES``, then
takes entry number ``tp_rank``. With a cluster file, live NPU data or the copies on the nodes,
more rules run (see `RULES`).
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any, Literal

from pdtui.cluster import Cluster, Instance, Node
from pdtui.npu.model import DeviceHealth, NodeHealth
from pdtui.ranktable.build import (
    DEVICE_KEYS,
    LISTS,
    STATUS,
    SUPER_KEYS,
    TOP_KEYS,
    VERSION,
    RanktableError,
    dumps,
    kind_of,
    loads,
)
from pdtui.ranktable.compare import summary_diff

Severity = Literal["error", "warning"]
_ROLE_OF_LIST = {"prefill_device_list": "prefill", "decode_device_list": "decode"}


@dataclass
class Finding:
    """One lint result. ``list``/``index``/``field`` locate it in the file; ``node`` names
    the node for file-level findings (a remote copy missing or different)."""

    severity: Severity
    list: str | None
    index: int | None
    field: str | None
    message: str
    fix: str
    node: str | None = None

    @property
    def location(self) -> str:
        if self.list is not None:
            where = self.list if self.index is None else f"{self.list}[{self.index}]"
            return f"{where}.{self.field}" if self.field else where
        if self.field is not None:
            return self.field
        if self.node is not None:
            return self.node
        return "(top level)"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["location"] = self.location
        return d


@dataclass
class _Entry:
    list: str
    index: int
    data: dict[str, Any]

    def get(self, key: str) -> str | None:
        """A value as the string the connector would compare (ints tolerated, reported
        once by the type check); None when missing or not a scalar."""
        return _scalar(self.data.get(key))


def _scalar(v: object) -> str | None:
    if isinstance(v, str):
        return v
    if isinstance(v, int | float) and not isinstance(v, bool):
        return str(v)
    return None


class _Linter:
    def __init__(self) -> None:
        self.out: list[Finding] = []

    def add(
        self,
        severity: Severity,
        lst: str | None,
        index: int | None,
        fld: str | None,
        message: str,
        fix: str,
        node: str | None = None,
    ) -> None:
        self.out.append(Finding(severity, lst, index, fld, message, fix, node))

    def err(self, e: _Entry, fld: str | None, message: str, fix: str) -> None:
        self.add("error", e.list, e.index, fld, message, fix)

    def warn(self, e: _Entry, fld: str | None, message: str, fix: str) -> None:
        self.add("warning", e.list, e.index, fld, message, fix)


@dataclass
class _Scope:
    """What the rules look at: the parsed file, its entries and the optional evidence."""

    rt: dict[str, Any]
    entries: list[_Entry]
    L: _Linter
    cluster: Cluster | None = None
    live: Mapping[str, NodeHealth] | None = None
    remote: Mapping[str, str | None] | None = None
    local_text: str | None = None

    @property
    def c(self) -> Cluster:
        """The cluster, for rules that `RULES` runs only when there is one."""
        assert self.cluster is not None
        return self.cluster

    @cached_property
    def by_ip(self) -> dict[str, Node]:
        return {n.ip: n for n in self.cluster.nodes} if self.cluster is not None else {}

    @cached_property
    def roles(self) -> dict[str, set[str]]:
        roles: dict[str, set[str]] = {}
        for inst in self.c.instances:
            roles.setdefault(inst.node, set()).add(inst.role)
        return roles

    @cached_property
    def instances(self) -> dict[tuple[str, str], list[Instance]]:
        """The instances by (node, role)."""
        out: dict[tuple[str, str], list[Instance]] = {}
        for inst in self.c.instances:
            out.setdefault((inst.node, inst.role), []).append(inst)
        return out

    def health(self, node: Node) -> NodeHealth | None:
        return self.live.get(node.name) if self.live is not None else None


def _show(value: object) -> str:
    return json.dumps(value) if not isinstance(value, dict | builtins.list) else kind_of(value)


# =========================================================================== shape


def _shape(rt: Any, L: _Linter) -> list[_Entry] | None:
    """The file's device entries, after reporting every key or type out of place."""
    if not isinstance(rt, dict):
        L.add(
            "error",
            None,
            None,
            None,
            f"not a ranktable: expected a JSON object, got {kind_of(rt)}",
            "regenerate it with `pdtui ranktable generate`",
        )
        return None
    _shape_top(rt, L)
    return [e for lst in LISTS if lst in rt for e in _shape_list(lst, rt[lst], L)]


def _shape_top(rt: dict[str, Any], L: _Linter) -> None:
    for key in TOP_KEYS:
        if key not in rt:
            sev: Severity = "warning" if key == "version" else "error"
            L.add(
                sev,
                None,
                None,
                key,
                f"missing key {key}",
                f'add "{key}" (gen_ranktable writes all of {", ".join(TOP_KEYS)})',
            )
    for key in rt:
        if key not in TOP_KEYS:
            L.add(
                "warning",
                None,
                None,
                key,
                f"unknown key {key}",
                "remove it (gen_ranktable does not write it; the connector ignores it)",
            )
    for key in ("version", "server_count", "status"):
        if key in rt and not isinstance(rt[key], str):
            L.add(
                "error",
                None,
                None,
                key,
                f"not a string: {_show(rt[key])}",
                f'write it as a JSON string: "{rt[key]}"',
            )


def _shape_list(lst: str, items: object, L: _Linter) -> list[_Entry]:
    if not isinstance(items, builtins.list):
        L.add(
            "error",
            lst,
            None,
            None,
            f"not a list: {kind_of(items)}",
            "make it a JSON list of device objects",
        )
        return []
    entries: list[_Entry] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            L.add(
                "error",
                lst,
                i,
                None,
                f"not a device object: {kind_of(item)}",
                'each entry is {"server_id", "device_id", "device_ip", ...}',
            )
            continue
        e = _Entry(lst, i, item)
        _shape_entry(e, L)
        entries.append(e)
    return entries


def _shape_entry(e: _Entry, L: _Linter) -> None:
    for key in DEVICE_KEYS:
        if key not in e.data:
            L.err(
                e,
                key,
                f"missing key {key}",
                f'add "{key}" (every entry has {", ".join(DEVICE_KEYS)})',
            )
    for key, value in e.data.items():
        if key not in DEVICE_KEYS and key not in SUPER_KEYS:
            L.warn(e, key, "unknown key " + key, "remove it (gen_ranktable does not write it)")
        elif not isinstance(value, str):
            L.err(
                e,
                key,
                f"not a string: {_show(value)}",
                f'write it as a JSON string: "{value}" (gen_ranktable writes'
                " every value as a string)",
            )


# =========================================================================== the file alone


def _version(s: _Scope) -> None:
    if "version" in s.rt and _scalar(s.rt.get("version")) != VERSION:
        s.L.add(
            "warning",
            None,
            None,
            "version",
            f'version is {_show(s.rt["version"])}, not "{VERSION}"',
            f'set "version": "{VERSION}" (what gen_ranktable writes)',
        )


def _status(s: _Scope) -> None:
    if "status" in s.rt and _scalar(s.rt.get("status")) != STATUS:
        s.L.add(
            "error",
            None,
            None,
            "status",
            f'status is {_show(s.rt["status"])}, not "{STATUS}"',
            f'set "status": "{STATUS}"',
        )


def _server_count(s: _Scope) -> None:
    servers = {sid for e in s.entries if (sid := e.get("server_id")) is not None}
    if "server_count" in s.rt and _scalar(s.rt.get("server_count")) != str(len(servers)):
        s.L.add(
            "error",
            None,
            None,
            "server_count",
            f"server_count is {_show(s.rt['server_count'])}, but the lists name"
            f" {len(servers)} distinct server_id(s)",
            f'set "server_count": "{len(servers)}"',
        )


def _cluster_ids(s: _Scope) -> None:
    for n, e in enumerate(s.entries, start=1):
        if "cluster_id" in e.data and e.get("cluster_id") != str(n):
            s.L.err(
                e,
                "cluster_id",
                f'cluster_id is {_show(e.data["cluster_id"])}, expected "{n}"',
                'number cluster_id "1".."N" over prefill then decode entries',
            )


def _unique_ids(s: _Scope) -> None:
    """Device IPs are unique, and SDIDs within a super pod."""
    seen_ip: dict[str, _Entry] = {}
    seen_sdid: dict[tuple[str | None, str], _Entry] = {}
    for e in s.entries:
        ip = e.get("device_ip")
        if ip is not None and (first := seen_ip.setdefault(ip, e)) is not e:
            s.L.err(
                e,
                "device_ip",
                f"duplicate device_ip {ip} (also {first.list}[{first.index}])",
                "each device has its own IP; regenerate from live hccn_tool output",
            )
        sd = e.get("super_device_id")
        pod_sd = (e.get("super_pod_id"), sd) if sd is not None else None
        if pod_sd is not None and (first := seen_sdid.setdefault(pod_sd, e)) is not e:
            s.L.err(
                e,
                "super_device_id",
                f"duplicate super_device_id {sd} (also {first.list}[{first.index}])",
                "SDIDs are unique per super pod; regenerate from live npu-smi spod-info"
                " (drivers before vllm-ascend #2939 gave every card the same SDID)",
            )


def _super_fields(s: _Scope) -> None:
    """A3 entries (by the cluster's soc, or by having one super field) have both."""
    for e in s.entries:
        node = s.by_ip.get(e.get("server_id") or "")
        node_a3 = node is not None and node.soc == "A3"
        if not node_a3 and not any(k in e.data for k in SUPER_KEYS):
            continue
        why = (
            f"node {node.name} is A3"
            if node is not None and node_a3
            else ("the entry has the other super field")
        )
        for key in SUPER_KEYS:
            if key not in e.data:
                src = "Super Pod ID" if key == "super_pod_id" else "SDID"
                s.L.err(
                    e,
                    key,
                    f"A3 entry without {key} ({why})",
                    f'add "{key}" from `npu-smi info -t spod-info` ({src}); without it'
                    " HCCL fails with 'invalid host device id 65535'",
                )


# =========================================================================== with the cluster


def _visible(inst: Instance, devices: tuple[int, ...]) -> list[str]:
    """Device ids as ASCEND_RT_VISIBLE_DEVICES will list them for a process."""
    explicit = inst.env.get("ASCEND_RT_VISIBLE_DEVICES")
    if explicit is not None:
        return [x.strip() for x in explicit.split(",") if x.strip()]
    return [str(d) for d in devices]


def _tp(inst: Instance) -> int:
    tp = inst.serve.get("tensor-parallel-size", 1)
    if isinstance(tp, int) and not isinstance(tp, bool) and tp >= 1:
        return tp
    if isinstance(tp, str) and tp.isdigit() and int(tp) >= 1:
        return int(tp)
    return 1


def _hostname_ips(health: NodeHealth) -> list[str] | None:
    r = health.raw.get("hostname_i")
    if r is None or r.rc not in (0, None):
        return None
    return r.stdout.split()


def _route_src(health: NodeHealth) -> str | None:
    """The default route's source address (``ip -4 -o route get ...``), if the probe got it."""
    r = health.raw.get("route")
    if r is None or r.rc != 0:
        return None
    words = r.stdout.split()
    return words[words.index("src") + 1] if "src" in words[:-1] else None


def _entry_node(e: _Entry, s: _Scope) -> Node | None:
    """The node an entry's server_id names; reports a server_id that names none."""
    sid = e.get("server_id")
    if sid is None:
        return None
    node = s.by_ip.get(sid)
    if node is None:
        other = {n.host: n for n in s.c.nodes}.get(sid)
        hint = (
            f"{sid} is node {other.name}'s SSH host; use its data-plane ip {other.ip}"
            if other is not None
            else f"use one of {', '.join(n.ip for n in s.c.nodes)}"
        )
        s.L.err(e, "server_id", f"server_id {sid} is no node's data-plane ip", hint)
    return node


def _role_fits_list(e: _Entry, node: Node, s: _Scope) -> bool:
    node_roles = s.roles.get(node.name, set())
    if node_roles and _ROLE_OF_LIST[e.list] not in node_roles:
        s.L.err(
            e,
            "server_id",
            f"{'/'.join(sorted(node_roles))} node {node.name} in {e.list}",
            "list prefill nodes' devices in prefill_device_list and"
            " decode nodes' in decode_device_list (gen_ranktable --ips: prefill first)",
        )
    return True


def _in_hostname_i(e: _Entry, node: Node, s: _Scope) -> bool:
    health = s.health(node)
    ips = _hostname_ips(health) if health is not None else None
    sid = e.get("server_id")
    if ips is not None and sid not in ips:
        s.L.err(
            e,
            "server_id",
            f"server_id {sid} is not an address of node"
            f" {node.name} (hostname -I: {' '.join(ips) or 'nothing'})",
            f"fix the node's ip in the cluster file (one of {', '.join(ips)})"
            if ips
            else "check the node's network configuration",
        )
    return True


def _is_host_ip(e: _Entry, node: Node, s: _Scope) -> bool:
    """server_id is the IP vLLM uses: VLLM_HOST_IP if set, else the default route's source."""
    sid = e.get("server_id")
    pinned = [i for i in s.c.instances if i.node == node.name and "VLLM_HOST_IP" in i.env]
    for inst in pinned:
        host_ip = inst.env["VLLM_HOST_IP"]
        if host_ip != sid:
            s.L.err(
                e,
                "server_id",
                f"server_id {sid} is not VLLM_HOST_IP {host_ip} of instance {inst.name}",
                "the connector matches server_id against VLLM_HOST_IP: make them equal",
            )
    health = s.health(node)
    src = _route_src(health) if health is not None and not pinned else None
    if src is not None and src != sid:
        s.L.err(
            e,
            "server_id",
            f"server_id {sid} is not the IP vLLM will pick on"
            f" {node.name} (no VLLM_HOST_IP; default-route source {src})",
            f'set VLLM_HOST_IP = "{sid}" in the instances\' env, or route the'
            " default through the data-plane NIC",
        )
    return True


def _device_exists(e: _Entry, node: Node, s: _Scope) -> bool:
    dev = e.get("device_id")
    if dev is None:
        return False
    if not dev.isdigit() or int(dev) >= node.npus:
        s.L.err(
            e,
            "device_id",
            f"device_id {dev} does not exist on node {node.name}"
            f" ({node.npus} NPUs: 0-{node.npus - 1})",
            "use a logic device id of the node",
        )
        return False
    return True


def _device_visible(e: _Entry, node: Node, s: _Scope) -> bool:
    dev = e.get("device_id")
    mine = s.instances.get((node.name, _ROLE_OF_LIST[e.list]), [])
    if mine and not any(dev in _visible(i, p.devices) for i in mine for p in i.processes):
        names = ", ".join(i.name for i in mine)
        vis = ",".join(v for i in mine for p in i.processes for v in _visible(i, p.devices))
        s.L.warn(
            e,
            "device_id",
            f"device_id {dev} is not visible to {names} (ASCEND_RT_VISIBLE_DEVICES={vis})",
            "set [ranktable] local_device_ids to the instance devices, or use the"
            " device in the instance",
        )
    return True


EntryRule = Callable[[_Entry, Node, _Scope], bool]
#: Checks of one entry against its node, in order; a rule returning False ends the entry's.
ENTRY_RULES: tuple[EntryRule, ...] = (
    _role_fits_list,
    _in_hostname_i,
    _is_host_ip,
    _device_exists,
    _device_visible,
)


def _entries_match_nodes(s: _Scope) -> None:
    for e in s.entries:
        node = _entry_node(e, s)
        if node is None:
            continue
        for rule in ENTRY_RULES:
            if not rule(e, node, s):
                break


def _enough_entries(s: _Scope) -> None:
    """Every process finds tensor-parallel-size entries with its server_id and visible
    devices (the connector takes entry number tp_rank of those)."""
    for inst in s.c.instances:
        node = s.c.node(inst.node)
        lst = "prefill_device_list" if inst.role == "prefill" else "decode_device_list"
        if not isinstance(s.rt.get(lst), builtins.list):
            continue
        sid = inst.env.get("VLLM_HOST_IP", node.ip)
        tp = _tp(inst)
        for p in inst.processes:
            seen = _visible(inst, p.devices)
            have = sum(
                1
                for e in s.entries
                if e.list == lst and e.get("server_id") == sid and e.get("device_id") in seen
            )
            if have < tp:
                s.L.add(
                    "error",
                    lst,
                    None,
                    None,
                    f"too few entries for {p.name} on node {node.name}: {have} with"
                    f" server_id {sid} and device_id in {','.join(seen)},"
                    f" tensor-parallel-size is {tp}",
                    f"list every device of {p.name}; otherwise vLLM fails with \"Can't"
                    f' read the target server_id {sid} and device_rank {have}"',
                )


def _device_counts(s: _Scope) -> None:
    spec = s.c.spec.ranktable
    if spec is None:
        return
    wants = (spec.prefill_device_count, spec.decode_device_count)
    for lst, want in zip(LISTS, wants, strict=True):
        items = s.rt.get(lst)
        if isinstance(items, builtins.list) and len(items) != want:
            key = lst.replace("_list", "_count")
            s.L.add(
                "warning",
                lst,
                None,
                None,
                f"{len(items)} entries, but ranktable.{key} in the cluster file is {want}",
                f"regenerate, or set ranktable.{key} = {len(items)}",
            )


# =========================================================================== with live data


def _str(v: int | None) -> str | None:
    return None if v is None else str(v)


def _live_values(node: Node, dev: str, d: DeviceHealth) -> list[tuple[str, str | None, str]]:
    """(key, live value, the tool that gave it) for one device."""
    if node.soc != "A3":
        return [("device_ip", d.ip, f"hccn_tool -i {dev} -ip -g")]
    spod = "npu-smi info -t spod-info"
    return [
        ("device_ip", d.vnic_ip, f"hccn_tool -i {dev} -vnic -g"),
        ("super_device_id", _str(d.sdid), f"{spod} SDID"),
        ("super_pod_id", _str(d.super_pod_id), f"{spod} Super Pod ID"),
    ]


def _live_device(e: _Entry, s: _Scope) -> tuple[Node, str, DeviceHealth] | None:
    node = s.by_ip.get(e.get("server_id") or "")
    dev = e.get("device_id")
    if node is None or dev is None or not dev.isdigit():
        return None
    health = s.health(node)
    if health is None or not health.reachable:
        return None
    d = health.device(int(dev))
    return (node, dev, d) if d is not None else None


def _matches_live(s: _Scope) -> None:
    for e in s.entries:
        found = _live_device(e, s)
        if found is None:
            continue
        node, dev, d = found
        for key, want, tool in _live_values(node, dev, d):
            have = e.get(key)
            if have is None or want is None or have == want:
                continue
            s.L.err(
                e,
                key,
                f"{key} {have} does not match the live {want} ({tool} on {node.name})",
                f'set "{key}": "{want}", or regenerate the ranktable',
            )


# =========================================================================== the copies on nodes


def _copy_matches(s: _Scope, node: str, text: str | None, mine: Any, local: str) -> None:
    if text is None:
        s.L.add(
            "error",
            None,
            None,
            None,
            f"missing on node {node}",
            "push the ranktable to every instance node",
            node,
        )
        return
    try:
        theirs = loads(text, source=f"{node} copy")
    except RanktableError as exc:
        s.L.add(
            "error",
            None,
            None,
            None,
            f"differs on node {node}: {exc}",
            "push the ranktable to the node",
            node,
        )
        return
    if theirs != mine:
        changes = summary_diff(theirs, mine) if isinstance(mine, dict) else []
        detail = f" ({changes[0]}{', ...' if len(changes) > 1 else ''})" if changes else ""
        s.L.add(
            "error",
            None,
            None,
            None,
            f"differs on node {node}{detail}",
            "push the ranktable to the node (a stale ranktable.json is silently reused"
            " by gen_ranktable.sh)",
            node,
        )
    elif text != local:
        s.L.add(
            "warning",
            None,
            None,
            None,
            f"formatting differs on node {node} (same content)",
            "push the ranktable so every copy is byte-identical",
            node,
        )


def _copies_match(s: _Scope) -> None:
    local = s.local_text if s.local_text is not None else dumps(s.rt)
    try:
        mine: Any = json.loads(local)
    except json.JSONDecodeError:
        mine = s.rt
    for node, text in (s.remote or {}).items():
        _copy_matches(s, node, text, mine, local)


# =========================================================================== the table

Needs = Literal["file", "cluster", "live", "remote"]
Rule = Callable[[_Scope], None]

#: Every rule, in the order its findings are reported, with the evidence it needs.
RULES: tuple[tuple[Needs, Rule], ...] = (
    ("file", _version),
    ("file", _status),
    ("file", _server_count),
    ("file", _cluster_ids),
    ("file", _unique_ids),
    ("file", _super_fields),
    ("cluster", _entries_match_nodes),
    ("cluster", _enough_entries),
    ("cluster", _device_counts),
    ("live", _matches_live),
    ("remote", _copies_match),
)


def _has(s: _Scope, needs: Needs) -> bool:
    if needs == "cluster":
        return s.cluster is not None
    if needs == "live":
        return s.cluster is not None and s.live is not None
    if needs == "remote":
        return s.remote is not None
    return True


def lint(
    rt: Any,
    cluster: Cluster | None = None,
    live: Mapping[str, NodeHealth] | None = None,
    remote: Mapping[str, str | None] | None = None,
    local_text: str | None = None,
) -> list[Finding]:
    """Every problem found in a parsed ranktable, errors first in file order.

    With ``cluster``: server_ids, roles, visible devices and TP sizes are checked against
    it; with ``live`` as well: hostname -I and the device/vNIC IPs and SDIDs. ``remote``
    maps node names to the text of that node's copy (None = missing) and is compared with
    ``local_text`` (default: `dumps(rt)`); nodes left out of ``remote`` are not checked.
    """
    L = _Linter()
    entries = _shape(rt, L)
    if entries is None:
        return L.out
    s = _Scope(rt, entries, L, cluster, live, remote, local_text)
    for needs, rule in RULES:
        if _has(s, needs):
            rule(s)
    return L.out
