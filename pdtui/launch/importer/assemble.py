"""Building the cluster spec from the scanned scripts."""

from __future__ import annotations

import posixpath
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from pdtui.cluster import (
    ClusterError,
    ClusterSpec,
    FlagValue,
    format_devices,
    parse_devices,
    parse_spec,
)
from pdtui.launch.importer.docker import container_section, node_npus
from pdtui.launch.importer.group import Group, group_ranks
from pdtui.launch.importer.proxy import Proxy, parse_proxy, proxy_section
from pdtui.launch.importer.scan import Boxes, Gen, Launch, scan_file
from pdtui.launch.importer.serve import Proc, parse_serve
from pdtui.launch.importer.values import split_common, stabilize
from pdtui.launch.plan import VISIBLE_DEVICES

RANKTABLE_ENV = "DISAGGREGATED_PREFILL_RANK_TABLE_PATH"


@dataclass
class ImportResult:
    spec: ClusterSpec
    warnings: list[str] = field(default_factory=list)


class ScriptImportError(ClusterError):
    """The scripts could not be turned into a cluster (e.g. no ``vllm serve`` at all)."""


def _fill_ips(procs: list[Proc], proxy: Proxy | None, warnings: list[str]) -> None:
    claimed = {(p.ip, p.port) for p in procs if p.ip}
    for p in procs:
        if p.ip:
            continue
        if proxy is not None:
            backends = proxy.prefill if p.role == "prefill" else proxy.decode
            for host, port in backends:
                if port == str(p.port) and (host, p.port) not in claimed:
                    p.ip = host
                    claimed.add((host, p.port))
                    break
        if p.ip:
            warnings.append(
                f"{p.file}: line {p.line}: no HCCL_IF_IP, VLLM_HOST_IP or local_ip; node ip"
                f" {p.ip} taken from the proxy's {p.role} list"
            )
        else:
            p.ip = f"unknown-{p.order}"
            warnings.append(
                f"{p.file}: line {p.line}: no HCCL_IF_IP, VLLM_HOST_IP or local_ip; set the"
                f" node's host by hand (placeholder {p.ip!r})"
            )


@dataclass
class _Node:
    name: str
    host: str
    nic: str | None


class _Located(Protocol):
    file: str
    line: int


L = TypeVar("L", bound=_Located)


def import_scripts(texts: dict[str, str], *, name: str = "imported") -> ImportResult:
    """Turn launch scripts (file name -> text) into a cluster spec plus warnings."""
    warnings: list[str] = []
    boxes = Boxes()
    launches, gens = _scan_all(texts, warnings, boxes)
    procs = _parse_serves(launches, texts, warnings)
    missing = _missing_roles(procs)
    warnings += missing
    proxies = [parse_proxy(la, warnings) for la in launches if la.kind == "proxy"]
    proxy = _first_of(proxies, "a second proxy command", warnings)
    gen = _first_of(gens, "a second gen_ranktable.sh call", warnings)
    _fill_ips(procs, proxy, warnings)
    head = _head(procs, warnings)
    groups = group_ranks(procs)
    nodes = _nodes(groups, gen)
    box_npus = None if gen is not None and gen.npus else node_npus(boxes.runs)
    npus = gen.npus if gen is not None and gen.npus else (box_npus or 16)
    rt_path = _ranktable_path(procs, gen, warnings)
    instances = _instances(groups, nodes, npus, rt_path, warnings)
    node_rows, defaults = _node_rows(nodes, gen)
    if box_npus:
        defaults["npus"] = box_npus  # the docker run's /dev/davinci0..N-1: the node's NPUs
    data = _document(name, texts, head, node_rows, defaults, instances)
    if rt_path is not None:
        data["ranktable"] = _ranktable_section(rt_path, gen, data["instances"])
    elif any(p.kv.get("kv_connector") == "LLMDataDistCMgrConnector" for p in procs):
        warnings.append(
            f"LLMDataDistCMgrConnector needs a ranktable, but no script sets {RANKTABLE_ENV}"
            " or runs gen_ranktable.sh"
        )
    used = {d for row in data["instances"] for d in parse_devices(row["devices"])}
    container = container_section(boxes.runs, boxes.execs, used, warnings)
    if container is not None:
        data.setdefault("defaults", {})["container"] = container
    if proxy is not None:
        names = {ip: node.name for ip, node in nodes.items()}
        data["proxy"] = proxy_section(proxy, groups, names, node_rows, warnings)
    try:
        spec = parse_spec(data, "imported scripts")
    except ClusterError as exc:  # a missing script explains most of what follows: first
        raise ScriptImportError([*missing, *exc.problems]) from None
    return ImportResult(spec=spec, warnings=warnings)


def _scan_all(
    texts: dict[str, str], warnings: list[str], boxes: Boxes
) -> tuple[list[Launch], list[Gen]]:
    launches: list[Launch] = []
    gens: list[Gen] = []
    for file, text in texts.items():
        got, got_gens = scan_file(file, text, warnings, boxes)
        launches.extend(got)
        gens.extend(got_gens)
    return launches, gens


def _parse_serves(launches: list[Launch], texts: dict[str, str], warnings: list[str]) -> list[Proc]:
    procs = [parse_serve(la, warnings) for la in launches if la.kind == "serve"]
    if not procs:
        raise ScriptImportError(["no 'vllm serve' command found in " + ", ".join(texts)])
    for i, p in enumerate(procs):
        p.order = i
    return procs


#: The kv_role a script's ``vllm serve`` needs for each role.
_KV_ROLE = {"prefill": "kv_producer", "decode": "kv_consumer"}


def _missing_roles(procs: list[Proc]) -> list[str]:
    """A PD deployment needs a prefill and a decode script: which one is missing, in words."""
    roles = {p.role for p in procs}
    files = list(dict.fromkeys(p.file for p in procs))
    only = " and ".join(sorted(roles))
    verb = "starts" if len(files) == 1 else "start"
    return [
        f"{_NO_SCRIPT}{r} script: {', '.join(files)} {verb} only {only} instances; add "
        f"the {r} script too (its --kv-transfer-config has kv_role {_KV_ROLE[r]})"
        for r in ("prefill", "decode")
        if r not in roles
    ]


_NO_SCRIPT = "no "


def missing_scripts(warnings: list[str]) -> list[str]:
    """The warnings that say a prefill or decode script is missing."""
    return [
        w
        for w in warnings
        if w.startswith((f"{_NO_SCRIPT}prefill script: ", f"{_NO_SCRIPT}decode script: "))
    ]


def _first_of(items: list[L], what: str, warnings: list[str]) -> L | None:
    """The first of ``items``; each later one is reported as ignored."""
    for extra in items[1:]:
        warnings.append(f"{extra.file}: line {extra.line}: {what}; ignored")
    return items[0] if items else None


def _head(procs: list[Proc], warnings: list[str]) -> Proc:
    """The first process, whose model, served name and vllm command the cluster uses."""
    head = procs[0]
    for p in procs[1:]:
        if (p.model, p.served, p.vllm) != (head.model, head.served, head.vllm):
            warnings.append(
                f"{p.file}: line {p.line}: model {p.model!r} / served name {p.served!r} differs"
                f" from {head.file}'s; {head.file}'s is used"
            )
    if head.model is None:
        warnings.append(f"{head.file}: line {head.line}: vllm serve has no model argument")
    return head


def _nodes(groups: list[Group], gen: Gen | None) -> dict[str, _Node]:
    """Nodes by ip, in instance order, named by the role of their first instance."""
    nodes: dict[str, _Node] = {}
    role_count: Counter[str] = Counter()
    for g in groups:
        ip = g.head.ip
        assert ip is not None
        if ip not in nodes:
            role = g.head.role
            nodes[ip] = _Node(f"{role}-{role_count[role]}", ip, None)
            role_count[role] += 1
        node = nodes[ip]
        node.nic = node.nic or next((p.nic for p in g.procs if p.nic), None)
    if gen is not None and gen.nic:
        for node in nodes.values():
            node.nic = node.nic or gen.nic
    return nodes


def _ranktable_path(procs: list[Proc], gen: Gen | None, warnings: list[str]) -> str | None:
    """The ranktable path the processes read (or gen_ranktable.sh writes), checked for both
    agreeing."""
    rt_values = [p.env[RANKTABLE_ENV] for p in procs if RANKTABLE_ENV in p.env]
    rt_path = rt_values[0] if rt_values else None
    if len(set(rt_values)) > 1:
        warnings.append(f"{RANKTABLE_ENV} differs between the scripts: {sorted(set(rt_values))}")
    if gen is None or gen.directory is None:
        return rt_path
    generated = posixpath.normpath(posixpath.join(gen.directory, "ranktable.json"))
    if rt_path is None:
        return generated
    if not _same_path(generated, rt_path):
        src = next(p for p in procs if RANKTABLE_ENV in p.env)
        warnings.append(
            f"{gen.file}: line {gen.line}: gen_ranktable.sh writes {generated} but"
            f" {src.file} sets {RANKTABLE_ENV}={rt_path}; vllm will not find the"
            " ranktable"
        )
    return rt_path


def _instances(
    groups: list[Group],
    nodes: dict[str, _Node],
    npus: int,
    rt_path: str | None,
    warnings: list[str],
) -> tuple[list[dict[str, Any]], dict[str, str], dict[str, FlagValue]]:
    """Instance rows, plus the env and serve tables they share."""
    rows: list[dict[str, Any]] = []
    env_items: list[list[tuple[str, str]]] = []
    serve_items: list[list[tuple[str, FlagValue]]] = []
    used: dict[str, set[int]] = {}
    role_count: Counter[str] = Counter()
    for g in groups:
        p0 = g.head
        assert p0.ip is not None
        node = nodes[p0.ip]
        node_used = used.setdefault(p0.ip, set())
        devices = _known_devices(g)
        if devices is None:
            devices = _guess_devices(g, npus, node_used, warnings)
        node_used.update(devices)
        env_items.append(list(_instance_env(p0, node, npus, rt_path).items()))
        serve_items.append(list(p0.flags))
        rows.append(_instance_row(g, f"{p0.role}-{role_count[p0.role]}", node.name, devices))
        role_count[p0.role] += 1
    shared_env, own_env = split_common(env_items)
    shared_serve, own_serve = split_common(serve_items)
    for row, e, s in zip(rows, own_env, own_serve, strict=True):
        if e:
            row["env"] = e
        if s:
            row["serve"] = stabilize(s)
    return rows, shared_env, stabilize(shared_serve)


def _known_devices(g: Group) -> list[int] | None:
    """The group's devices from ASCEND_RT_VISIBLE_DEVICES (every rank's, in rank order)."""
    if g.head.dp is None:
        return g.head.devices
    rank_devs = [p.devices for p in g.procs]
    if any(d is None for d in rank_devs):
        return None
    return [d for ds in rank_devs if ds is not None for d in ds]


def _instance_env(p0: Proc, node: _Node, npus: int, rt_path: str | None) -> dict[str, str]:
    """The instance's env with the node's ip and nic and the ranktable path templated.

    ASCEND_RT_VISIBLE_DEVICES stays only when it lists every device of a single process
    (pdtui sets it from ``devices`` otherwise)."""
    env = {k: v for k, v in p0.env.items() if k != VISIBLE_DEVICES or p0.dp is None}
    if p0.dp is None and p0.devices is not None and set(p0.devices) != set(range(npus)):
        env.pop(VISIBLE_DEVICES, None)
    return {k: _templated(k, v, p0.ip, node.nic, rt_path) for k, v in env.items()}


def _templated(key: str, value: str, ip: str | None, nic: str | None, rt_path: str | None) -> str:
    if value == ip:
        return "{node.ip}"
    if nic and value == nic:
        return "{node.nic}"
    if key == RANKTABLE_ENV and rt_path is not None and value == rt_path:
        return "{ranktable.path}"
    return value


def _instance_row(g: Group, name: str, node: str, devices: list[int]) -> dict[str, Any]:
    p0 = g.head
    row: dict[str, Any] = {
        "name": name,
        "role": p0.role,
        "node": node,
        "devices": format_devices(devices),
        "port": p0.port,
    }
    if p0.dp is not None:
        row["dp"] = {
            "size": p0.dp[0],
            "local": len(g.procs),
            "rank_start": p0.dp[1],
            "address": p0.dp[2],
            "rpc_port": p0.dp[3],
        }
    if p0.kv:
        row["kv_transfer"] = p0.kv
    return row


def _node_rows(
    nodes: dict[str, _Node], gen: Gen | None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Node rows and ``[defaults]``: a nic shared by every node is written once."""
    nics = {n.nic for n in nodes.values()}
    common_nic = nics.pop() if len(nics) == 1 else None
    defaults: dict[str, Any] = {}
    if common_nic:
        defaults["nic"] = common_nic
    if gen is not None and gen.npus:
        defaults["npus"] = gen.npus
    rows: list[dict[str, Any]] = []
    for n in nodes.values():
        row = {"name": n.name, "host": n.host}
        if n.nic and not common_nic:
            row["nic"] = n.nic
        rows.append(row)
    return rows, defaults


def _document(
    name: str,
    texts: dict[str, str],
    head: Proc,
    node_rows: list[dict[str, Any]],
    defaults: dict[str, Any],
    instances: tuple[list[dict[str, Any]], dict[str, str], dict[str, FlagValue]],
) -> dict[str, Any]:
    rows, shared_env, shared_serve = instances
    model_path = head.model or "MODEL"
    data: dict[str, Any] = {
        "cluster": {
            "name": name,
            "description": "imported from " + ", ".join(texts),
        },
        "nodes": node_rows,
        "model": {
            "path": model_path,
            "served_name": head.served or model_path,
        },
        "env": shared_env,
        "serve": shared_serve,
        "instances": rows,
    }
    if defaults:
        data["defaults"] = defaults
    if head.vllm != "vllm":
        data["model"]["vllm"] = head.vllm
    return data


def _ranktable_section(rt_path: str, gen: Gen | None, rows: list[dict[str, Any]]) -> dict[str, Any]:
    counts = {
        role: sum(len(parse_devices(r["devices"])) for r in rows if r["role"] == role)
        for role in ("prefill", "decode")
    }
    rt: dict[str, Any] = {
        "path": rt_path,
        "prefill_device_count": (gen.prefill if gen and gen.prefill else counts["prefill"]) or 1,
        "decode_device_count": (gen.decode if gen and gen.decode else counts["decode"]) or 1,
    }
    if gen is not None and gen.local_ids:
        rt["local_device_ids"] = gen.local_ids
    return rt


def _same_path(generated: str, env_path: str) -> bool:
    env_norm = posixpath.normpath(env_path)
    if posixpath.isabs(generated):
        return generated == env_norm
    return env_norm == generated or env_norm.endswith("/" + generated.lstrip("./"))


def _guess_devices(g: Group, npus: int, used: set[int], warnings: list[str]) -> list[int]:
    p0 = g.head
    tp = next((v for k, v in p0.flags if k == "tensor-parallel-size"), 1)
    tp = tp if isinstance(tp, int) and not isinstance(tp, bool) and tp > 0 else 1
    want = tp * len(g.procs) if p0.dp is not None else (npus if not used else tp)
    free = [d for d in range(npus) if d not in used]
    devices = free[:want]
    if p0.dp is not None or used:
        warnings.append(
            f"{p0.file}: line {p0.line}: no {VISIBLE_DEVICES}; assuming devices"
            f" {format_devices(devices) or '(none)'}"
        )
    return devices
