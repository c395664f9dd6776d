"""The legacy LLMDataDist PD ranktable: generate it centrally, lint it, diff it.

`generate` writes exactly what vllm-ascend's ``gen_ranktable.py`` writes for the same nodes
and arguments (reference ``vllm-ascend-pd.md`` §1.2), but from the health probe's
``hccn_tool`` / ``npu-smi`` output collected over SSH instead of a torchrun rendezvous
that must run on every node at once. `lint` checks a ranktable (generated or hand-made)
against the rules the ``LLMDataDistCMgrConnector`` applies at runtime (§1.4) and, when
given, against the cluster file, live NPU data and the copies on each node.

No Textual, no SSH: stdlib plus pdtui's plain data models.
"""

from __future__ import annotations

import builtins
import difflib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from pdtui.cluster import Cluster, Instance, Node, format_devices
from pdtui.npu.model import NodeHealth, Raw

__all__ = [
    "DEVICE_KEYS",
    "LISTS",
    "SUPER_KEYS",
    "TOP_KEYS",
    "Finding",
    "RanktableError",
    "diff",
    "dumps",
    "generate",
    "lint",
    "loads",
    "summary_diff",
]

Severity = Literal["error", "warning"]

VERSION = "1.2"
STATUS = "completed"
LISTS: tuple[str, str] = ("prefill_device_list", "decode_device_list")
TOP_KEYS: tuple[str, ...] = ("version", "server_count", *LISTS, "status")
DEVICE_KEYS: tuple[str, ...] = ("server_id", "device_id", "device_ip", "cluster_id")
SUPER_KEYS: tuple[str, str] = ("super_pod_id", "super_device_id")
_ROLE_OF_LIST = {"prefill_device_list": "prefill", "decode_device_list": "decode"}


class RanktableError(Exception):
    """A ranktable could not be generated or read; the message is one line naming where."""


# =========================================================================== generate


def _why(raw: Raw | None, what: str) -> str:
    """Why a value is missing, from the evidence of the call that should have given it."""
    if raw is None:
        return "not collected (run a health probe)"
    text = (raw.stderr.strip() or raw.stdout.strip()).splitlines()
    first = text[0].strip() if text else ""
    if raw.rc not in (0, None):
        return f"exit {raw.rc}: {first}" if first else f"exit {raw.rc}"
    if raw.rc is None:
        return f"no exit status: {first}" if first else "no exit status"
    return f"no {what} line in the output"


def _live_node(node: Node, live: Mapping[str, NodeHealth]) -> NodeHealth:
    health = live.get(node.name)
    if health is None:
        raise RanktableError(f"{node.name}: no live data (run a health probe first)")
    if not health.reachable:
        why = f": {health.error}" if health.error else ""
        raise RanktableError(f"{node.name}: unreachable{why}")
    return health


def _device_entry(node: Node, health: NodeHealth, dev_id: int) -> dict[str, str]:
    where = f"{node.name} device {dev_id}"
    d = health.device(dev_id)
    if d is None:
        shown = format_devices(sorted(x.id for x in health.devices)) or "none"
        raise RanktableError(f"{where}: not in the live data (devices seen: {shown})")
    entry = {"server_id": node.ip, "device_id": str(dev_id)}
    if node.soc == "A3":
        if d.vnic_ip is None:
            why = _why(d.raw.get("vnic"), "vnic ipaddr")
            raise RanktableError(f"{where}: no vNIC IP (hccn_tool -vnic -g: {why})")
        card, chip = divmod(dev_id, 2)
        spod = f"npu-smi info -t spod-info -i {card} -c {chip}"
        if d.super_pod_id is None:
            why = _why(d.raw.get("spod"), "Super Pod ID")
            raise RanktableError(f"{where}: no Super Pod ID ({spod}: {why})")
        if d.sdid is None:
            why = _why(d.raw.get("spod"), "SDID")
            raise RanktableError(f"{where}: no SDID ({spod}: {why})")
        entry["device_ip"] = d.vnic_ip
        entry["super_pod_id"] = str(d.super_pod_id)
        entry["super_device_id"] = str(d.sdid)
    else:
        if d.ip is None:
            why = _why(d.raw.get("ip"), "ipaddr")
            raise RanktableError(f"{where}: no RoCE IP (hccn_tool -ip -g: {why})")
        entry["device_ip"] = d.ip
    return entry


def _roles(cluster: Cluster) -> dict[str, set[str]]:
    roles: dict[str, set[str]] = {}
    for inst in cluster.instances:
        roles.setdefault(inst.node, set()).add(inst.role)
    return roles


def _source(cluster: Cluster) -> str:
    return cluster.path.name if cluster.path is not None else "cluster file"


def generate(cluster: Cluster, live: Mapping[str, NodeHealth]) -> dict[str, Any]:
    """The ranktable ``gen_ranktable.py`` would write for this cluster's PD nodes.

    Node order (gen's ``--ips``): nodes hosting prefill instances, then nodes hosting decode
    instances, each in cluster-file order; nodes without instances are left out. Devices
    per node: ``ranktable.local_device_ids`` if set, else every device the live data shows.
    """
    rt = cluster.spec.ranktable
    source = _source(cluster)
    if rt is None:
        raise RanktableError(f"{source}: no [ranktable] section (path and device counts)")
    roles = _roles(cluster)
    for node in cluster.nodes:
        if len(roles.get(node.name, ())) > 1:
            raise RanktableError(
                f"{source}: node {node.name} hosts both prefill and decode instances;"
                " a gen_ranktable ranktable needs prefill nodes and decode nodes apart"
            )
    order = [n for n in cluster.nodes if roles.get(n.name) == {"prefill"}]
    order += [n for n in cluster.nodes if roles.get(n.name) == {"decode"}]
    if not order:
        raise RanktableError(f"{source}: instances: no prefill or decode instance")
    entries: list[dict[str, str]] = []
    for node in order:
        health = _live_node(node, live)
        if rt.local_device_ids is not None:
            ids = list(rt.local_device_ids)
        else:
            ids = sorted(d.id for d in health.devices)
            if not ids:
                raise RanktableError(f"{node.name}: the live data shows no devices")
        entries.extend(_device_entry(node, health, i) for i in ids)
    for i, entry in enumerate(entries, start=1):
        entry["cluster_id"] = str(i)
    pre, dec = rt.prefill_device_count, rt.decode_device_count
    if pre + dec > len(entries):
        raise RanktableError(
            f"{source}: ranktable: prefill_device_count + decode_device_count = {pre + dec}"
            f" exceeds the {len(entries)} devices of nodes {', '.join(n.name for n in order)}"
        )
    return {
        "version": VERSION,
        "server_count": str(len(order)),
        "prefill_device_list": entries[:pre],
        "decode_device_list": entries[pre : pre + dec],
        "status": STATUS,
    }


# =========================================================================== text


def dumps(rt: Mapping[str, Any]) -> str:
    """The file text, as gen_ranktable's ``json.dump(rt, f, indent=4)`` writes it.

    No trailing newline: ``json.dump`` writes none, so neither do we (byte-identical files).
    """
    return json.dumps(rt, indent=4)


def loads(text: str, source: str = "ranktable.json") -> dict[str, Any]:
    """Parse ranktable text; `RanktableError` for invalid JSON or a wrong top-level shape.

    Only the shape the connector needs is enforced here (an object whose two device lists
    are lists of objects); everything else is left to `lint`.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RanktableError(
            f"{source}: not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except RecursionError:
        raise RanktableError(f"{source}: not a ranktable: nested too deeply") from None
    if not isinstance(data, dict):
        raise RanktableError(f"{source}: expected a JSON object, got {_kind(data)}")
    for key in LISTS:
        if key not in data:
            raise RanktableError(f"{source}: {key}: missing")
        value = data[key]
        if not isinstance(value, list):
            raise RanktableError(f"{source}: {key}: expected a list, got {_kind(value)}")
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise RanktableError(
                    f"{source}: {key}[{i}]: expected an object, got {_kind(item)}"
                )
    return data


def _kind(value: object) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the string {value!r}"
    if value is None:
        return "null"
    return f"{type(value).__name__} {value!r}"


# =========================================================================== lint


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
        v = self.data.get(key)
        if isinstance(v, str):
            return v
        if isinstance(v, int | float) and not isinstance(v, bool):
            return str(v)
        return None


class _Linter:
    def __init__(self) -> None:
        self.out: builtins.list[Finding] = []

    def add(self, severity: Severity, lst: str | None, index: int | None, fld: str | None,
            message: str, fix: str, node: str | None = None) -> None:
        self.out.append(Finding(severity, lst, index, fld, message, fix, node))

    def err(self, e: _Entry, fld: str | None, message: str, fix: str) -> None:
        self.add("error", e.list, e.index, fld, message, fix)

    def warn(self, e: _Entry, fld: str | None, message: str, fix: str) -> None:
        self.add("warning", e.list, e.index, fld, message, fix)


def _show(value: object) -> str:
    return json.dumps(value) if not isinstance(value, dict | builtins.list) else _kind(value)


def _shape(rt: Any, L: _Linter) -> builtins.list[_Entry] | None:
    if not isinstance(rt, dict):
        L.add("error", None, None, None, f"not a ranktable: expected a JSON object, got"
              f" {_kind(rt)}", "regenerate it with `pdtui ranktable generate`")
        return None
    for key in TOP_KEYS:
        if key not in rt:
            sev: Severity = "warning" if key == "version" else "error"
            L.add(sev, None, None, key, f"missing key {key}",
                  f"add \"{key}\" (gen_ranktable writes all of {', '.join(TOP_KEYS)})")
    for key in rt:
        if key not in TOP_KEYS:
            L.add("warning", None, None, key, f"unknown key {key}",
                  "remove it (gen_ranktable does not write it; the connector ignores it)")
    for key in ("version", "server_count", "status"):
        if key in rt and not isinstance(rt[key], str):
            L.add("error", None, None, key, f"not a string: {_show(rt[key])}",
                  f"write it as a JSON string: \"{rt[key]}\"")
    entries: builtins.list[_Entry] = []
    for lst in LISTS:
        if lst not in rt:
            continue
        items = rt[lst]
        if not isinstance(items, builtins.list):
            L.add("error", lst, None, None, f"not a list: {_kind(items)}",
                  "make it a JSON list of device objects")
            continue
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                L.add("error", lst, i, None, f"not a device object: {_kind(item)}",
                      "each entry is {\"server_id\", \"device_id\", \"device_ip\", ...}")
                continue
            e = _Entry(lst, i, item)
            entries.append(e)
            for key in DEVICE_KEYS:
                if key not in item:
                    L.err(e, key, f"missing key {key}",
                          f"add \"{key}\" (every entry has {', '.join(DEVICE_KEYS)})")
            for key, value in item.items():
                if key not in DEVICE_KEYS and key not in SUPER_KEYS:
                    L.warn(e, key, f"unknown key {key}",
                           "remove it (gen_ranktable does not write it)")
                elif not isinstance(value, str):
                    L.err(e, key, f"not a string: {_show(value)}",
                          f"write it as a JSON string: \"{value}\" (gen_ranktable writes"
                          " every value as a string)")
    return entries


def _top(rt: dict[str, Any], key: str) -> str | None:
    v = rt.get(key)
    if isinstance(v, str):
        return v
    if isinstance(v, int | float) and not isinstance(v, bool):
        return str(v)
    return None


def _check_file(rt: dict[str, Any], entries: builtins.list[_Entry], L: _Linter) -> None:
    version = _top(rt, "version")
    if "version" in rt and version != VERSION:
        L.add("warning", None, None, "version", f"version is {_show(rt['version'])}, not"
              f" \"{VERSION}\"", f"set \"version\": \"{VERSION}\" (what gen_ranktable writes)")
    status = _top(rt, "status")
    if "status" in rt and status != STATUS:
        L.add("error", None, None, "status", f"status is {_show(rt['status'])}, not"
              f" \"{STATUS}\"", f"set \"status\": \"{STATUS}\"")
    servers = {s for e in entries if (s := e.get("server_id")) is not None}
    count = _top(rt, "server_count")
    if "server_count" in rt and count != str(len(servers)):
        L.add("error", None, None, "server_count",
              f"server_count is {_show(rt['server_count'])}, but the lists name"
              f" {len(servers)} distinct server_id(s)",
              f"set \"server_count\": \"{len(servers)}\"")
    for n, e in enumerate(entries, start=1):
        cid = e.get("cluster_id")
        if "cluster_id" in e.data and cid != str(n):
            L.err(e, "cluster_id", f"cluster_id is {_show(e.data['cluster_id'])}, expected"
                  f" \"{n}\"", "number cluster_id \"1\"..\"N\" over prefill then decode entries")
    seen_ip: dict[str, _Entry] = {}
    seen_sdid: dict[tuple[str | None, str], _Entry] = {}
    for e in entries:
        ip = e.get("device_ip")
        if ip is not None:
            first = seen_ip.setdefault(ip, e)
            if first is not e:
                L.err(e, "device_ip", f"duplicate device_ip {ip} (also"
                      f" {first.list}[{first.index}])",
                      "each device has its own IP; regenerate from live hccn_tool output")
        sd = e.get("super_device_id")
        if sd is not None:
            key = (e.get("super_pod_id"), sd)
            first = seen_sdid.setdefault(key, e)
            if first is not e:
                L.err(e, "super_device_id", f"duplicate super_device_id {sd} (also"
                      f" {first.list}[{first.index}])",
                      "SDIDs are unique per super pod; regenerate from live npu-smi spod-info"
                      " (drivers before vllm-ascend #2939 gave every card the same SDID)")


def _node_by_ip(cluster: Cluster | None) -> dict[str, Node]:
    return {n.ip: n for n in cluster.nodes} if cluster is not None else {}


def _check_super(entries: builtins.list[_Entry], cluster: Cluster | None, L: _Linter) -> None:
    by_ip = _node_by_ip(cluster)
    for e in entries:
        node = by_ip.get(e.get("server_id") or "")
        a3 = (node is not None and node.soc == "A3") or any(k in e.data for k in SUPER_KEYS)
        if not a3:
            continue
        for key in SUPER_KEYS:
            if key not in e.data:
                why = f"node {node.name} is A3" if node is not None and node.soc == "A3" else (
                    "the entry has the other super field")
                src = "Super Pod ID" if key == "super_pod_id" else "SDID"
                L.err(e, key, f"A3 entry without {key} ({why})",
                      f"add \"{key}\" from `npu-smi info -t spod-info` ({src}); without it"
                      " HCCL fails with 'invalid host device id 65535'")


def _visible(inst: Instance, devices: tuple[int, ...]) -> builtins.list[str]:
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


def _hostname_ips(health: NodeHealth) -> builtins.list[str] | None:
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


def _check_cluster(rt: dict[str, Any], entries: builtins.list[_Entry], cluster: Cluster,
                   live: Mapping[str, NodeHealth] | None, L: _Linter) -> None:
    by_ip = _node_by_ip(cluster)
    by_host = {n.host: n for n in cluster.nodes}
    roles = _roles(cluster)
    insts: dict[tuple[str, str], builtins.list[Instance]] = {}
    for inst in cluster.instances:
        insts.setdefault((inst.node, inst.role), []).append(inst)

    for e in entries:
        sid = e.get("server_id")
        if sid is None:
            continue
        node = by_ip.get(sid)
        if node is None:
            other = by_host.get(sid)
            hint = (f"{sid} is node {other.name}'s SSH host; use its data-plane ip {other.ip}"
                    if other is not None else
                    f"use one of {', '.join(n.ip for n in cluster.nodes)}")
            L.err(e, "server_id", f"server_id {sid} is no node's data-plane ip", hint)
            continue
        role = _ROLE_OF_LIST[e.list]
        node_roles = roles.get(node.name, set())
        if node_roles and role not in node_roles:
            L.err(e, "server_id", f"{'/'.join(sorted(node_roles))} node {node.name} in"
                  f" {e.list}", "list prefill nodes' devices in prefill_device_list and"
                  " decode nodes' in decode_device_list (gen_ranktable --ips: prefill first)")
        if live is not None and node.name in live:
            ips = _hostname_ips(live[node.name])
            if ips is not None and sid not in ips:
                L.err(e, "server_id", f"server_id {sid} is not an address of node"
                      f" {node.name} (hostname -I: {' '.join(ips) or 'nothing'})",
                      f"fix the node's ip in the cluster file (one of {', '.join(ips)})"
                      if ips else "check the node's network configuration")
        pinned = False
        for inst in cluster.instances:
            host_ip = inst.env.get("VLLM_HOST_IP")
            if inst.node == node.name and host_ip is not None:
                pinned = True
                if host_ip != sid:
                    L.err(e, "server_id", f"server_id {sid} is not VLLM_HOST_IP {host_ip} of"
                          f" instance {inst.name}", "the connector matches server_id against"
                          " VLLM_HOST_IP: make them equal")
        if not pinned and live is not None and node.name in live:
            src = _route_src(live[node.name])
            if src is not None and src != sid:
                L.err(e, "server_id", f"server_id {sid} is not the IP vLLM will pick on"
                      f" {node.name} (no VLLM_HOST_IP; default-route source {src})",
                      f"set VLLM_HOST_IP = \"{sid}\" in the instances' env, or route the"
                      " default through the data-plane NIC")
        dev = e.get("device_id")
        if dev is None:
            continue
        if not dev.isdigit() or int(dev) >= node.npus:
            L.err(e, "device_id", f"device_id {dev} does not exist on node {node.name}"
                  f" ({node.npus} NPUs: 0-{node.npus - 1})", "use a logic device id of the node")
            continue
        mine = insts.get((node.name, role), [])
        if mine and not any(dev in _visible(i, p.devices) for i in mine for p in i.processes):
            names = ", ".join(i.name for i in mine)
            vis = ",".join(v for i in mine for p in i.processes for v in _visible(i, p.devices))
            L.warn(e, "device_id", f"device_id {dev} is not visible to {names}"
                   f" (ASCEND_RT_VISIBLE_DEVICES={vis})",
                   "set [ranktable] local_device_ids to the instance devices, or use the"
                   " device in the instance")

    # The connector keeps entries with server_id == its host ip and device_id in
    # ASCEND_RT_VISIBLE_DEVICES, then takes entry index tp_rank.
    for inst in cluster.instances:
        node = cluster.node(inst.node)
        lst = "prefill_device_list" if inst.role == "prefill" else "decode_device_list"
        if not isinstance(rt.get(lst), builtins.list):
            continue
        sid = inst.env.get("VLLM_HOST_IP", node.ip)
        tp = _tp(inst)
        for p in inst.processes:
            seen = _visible(inst, p.devices)
            have = sum(1 for e in entries if e.list == lst and e.get("server_id") == sid
                       and e.get("device_id") in seen)
            if have < tp:
                L.add("error", lst, None, None,
                      f"too few entries for {p.name} on node {node.name}: {have} with"
                      f" server_id {sid} and device_id in {','.join(seen)}, tensor-parallel-size"
                      f" is {tp}",
                      f"list every device of {p.name}; otherwise vLLM fails with \"Can't read"
                      f" the target server_id {sid} and device_rank {have}\"")

    spec = cluster.spec.ranktable
    if spec is not None:
        for lst, want in zip(LISTS, (spec.prefill_device_count, spec.decode_device_count),
                             strict=True):
            items = rt.get(lst)
            if isinstance(items, builtins.list) and len(items) != want:
                key = lst.replace("_list", "_count")
                L.add("warning", lst, None, None, f"{len(items)} entries, but"
                      f" ranktable.{key} in the cluster file is {want}",
                      f"regenerate, or set ranktable.{key} = {len(items)}")


def _check_live(entries: builtins.list[_Entry], cluster: Cluster,
                live: Mapping[str, NodeHealth], L: _Linter) -> None:
    by_ip = _node_by_ip(cluster)
    for e in entries:
        node = by_ip.get(e.get("server_id") or "")
        dev = e.get("device_id")
        if node is None or dev is None or not dev.isdigit():
            continue
        health = live.get(node.name)
        if health is None or not health.reachable:
            continue
        d = health.device(int(dev))
        if d is None:
            continue
        a3 = node.soc == "A3"
        checks: builtins.list[tuple[str, str | None, str]] = [(
            "device_ip", d.vnic_ip if a3 else d.ip,
            f"hccn_tool -i {dev} -vnic -g" if a3 else f"hccn_tool -i {dev} -ip -g")]
        if a3:
            spod = "npu-smi info -t spod-info"
            checks.append(("super_device_id", _str(d.sdid), f"{spod} SDID"))
            checks.append(("super_pod_id", _str(d.super_pod_id), f"{spod} Super Pod ID"))
        for key, want, tool in checks:
            have = e.get(key)
            if have is None or want is None or have == want:
                continue
            L.err(e, key, f"{key} {have} does not match the live {want} ({tool} on"
                  f" {node.name})", f"set \"{key}\": \"{want}\", or regenerate the ranktable")


def _str(v: int | None) -> str | None:
    return None if v is None else str(v)


def _check_remote(rt: dict[str, Any], remote: Mapping[str, str | None],
                  local_text: str | None, L: _Linter) -> None:
    local = local_text if local_text is not None else dumps(rt)
    try:
        mine: Any = json.loads(local)
    except json.JSONDecodeError:
        mine = rt
    for node, text in remote.items():
        if text is None:
            L.add("error", None, None, None, f"missing on node {node}",
                  "push the ranktable to every instance node", node)
            continue
        try:
            theirs = loads(text, source=f"{node} copy")
        except RanktableError as exc:
            L.add("error", None, None, None, f"differs on node {node}: {exc}",
                  "push the ranktable to the node", node)
            continue
        if theirs != mine:
            changes = summary_diff(theirs, mine) if isinstance(mine, dict) else []
            detail = f" ({changes[0]}{', ...' if len(changes) > 1 else ''})" if changes else ""
            L.add("error", None, None, None, f"differs on node {node}{detail}",
                  "push the ranktable to the node (a stale ranktable.json is silently reused"
                  " by gen_ranktable.sh)", node)
        elif text != local:
            L.add("warning", None, None, None, f"formatting differs on node {node} (same"
                  " content)", "push the ranktable so every copy is byte-identical", node)


def lint(
    rt: Any,
    cluster: Cluster | None = None,
    live: Mapping[str, NodeHealth] | None = None,
    remote: Mapping[str, str | None] | None = None,
    local_text: str | None = None,
) -> builtins.list[Finding]:
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
    _check_file(rt, entries, L)
    _check_super(entries, cluster, L)
    if cluster is not None:
        _check_cluster(rt, entries, cluster, live, L)
        if live is not None:
            _check_live(entries, cluster, live, L)
    if remote is not None:
        _check_remote(rt, remote, local_text, L)
    return L.out


# =========================================================================== diff


def diff(old_text: str, new_text: str, old_name: str, new_name: str) -> str:
    """A unified diff (``diff -u`` style) of two ranktable texts; "" when equal.

    Files without a final newline (what json.dump writes) get the usual
    ``\\ No newline at end of file`` marker, so every diff line ends with a newline.
    """
    lines = difflib.unified_diff(old_text.splitlines(keepends=True),
                                 new_text.splitlines(keepends=True), old_name, new_name)
    out = []
    for line in lines:
        if line.endswith("\n"):
            out.append(line)
        else:
            out.append(line + "\n\\ No newline at end of file\n")
    return "".join(out)


def _fmt(value: object) -> str:
    if value is None:
        return "(missing)"
    if isinstance(value, str):
        return value
    return json.dumps(value)


def summary_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> builtins.list[str]:
    """One line per changed value or entry, old -> new, in file order."""
    out: builtins.list[str] = []
    keys = [*old, *(k for k in new if k not in old)]
    for key in keys:
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if isinstance(a, builtins.list) and isinstance(b, builtins.list):
            for i, (x, y) in enumerate(zip(a, b, strict=False)):
                if x == y:
                    continue
                if isinstance(x, dict) and isinstance(y, dict):
                    for k in [*x, *(k for k in y if k not in x)]:
                        if x.get(k) != y.get(k):
                            out.append(f"{key}[{i}].{k}: {_fmt(x.get(k))} -> {_fmt(y.get(k))}")
                else:
                    out.append(f"{key}[{i}]: {_fmt(x)} -> {_fmt(y)}")
            if len(b) > len(a):
                n = len(b) - len(a)
                out.append(f"{key}: {n} {'entry' if n == 1 else 'entries'} added")
            elif len(a) > len(b):
                n = len(a) - len(b)
                out.append(f"{key}: {n} {'entry' if n == 1 else 'entries'} removed")
        else:
            out.append(f"{key}: {_fmt(a)} -> {_fmt(b)}")
    return out

