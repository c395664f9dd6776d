"""Building the cluster spec from the scanned scripts."""

from __future__ import annotations

import posixpath
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pdtui.cluster import (
    ClusterError,
    ClusterSpec,
    FlagValue,
    format_devices,
    parse_devices,
    parse_spec,
)
from pdtui.launch.importer.group import Group, group_ranks
from pdtui.launch.importer.proxy import Proxy, parse_proxy, proxy_section
from pdtui.launch.importer.scan import Gen, Launch, scan_file
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


def import_scripts(texts: dict[str, str], *, name: str = "imported") -> ImportResult:
    """Turn launch scripts (file name -> text) into a cluster spec plus warnings."""
    warnings: list[str] = []
    launches: list[Launch] = []
    gens: list[Gen] = []
    for file, text in texts.items():
        got, got_gens = scan_file(file, text, warnings)
        launches.extend(got)
        gens.extend(got_gens)

    procs = [parse_serve(la, warnings) for la in launches if la.kind == "serve"]
    if not procs:
        raise ScriptImportError(["no 'vllm serve' command found in " + ", ".join(texts)])
    for i, p in enumerate(procs):
        p.order = i
    proxies = [parse_proxy(la, warnings) for la in launches if la.kind == "proxy"]
    for extra in proxies[1:]:
        warnings.append(f"{extra.file}: line {extra.line}: a second proxy command; ignored")
    proxy = proxies[0] if proxies else None
    gen = gens[0] if gens else None
    for extra_gen in gens[1:]:
        warnings.append(
            f"{extra_gen.file}: line {extra_gen.line}: a second gen_ranktable.sh call; ignored"
        )
    _fill_ips(procs, proxy, warnings)

    head = procs[0]
    for p in procs[1:]:
        if (p.model, p.served, p.vllm) != (head.model, head.served, head.vllm):
            warnings.append(
                f"{p.file}: line {p.line}: model {p.model!r} / served name {p.served!r} differs"
                f" from {head.file}'s; {head.file}'s is used"
            )
    model_path = head.model or "MODEL"
    if head.model is None:
        warnings.append(f"{head.file}: line {head.line}: vllm serve has no model argument")

    groups = group_ranks(procs)

    # Nodes, in instance order, named by the role of their first instance.
    nodes: dict[str, dict[str, Any]] = {}
    role_count: Counter[str] = Counter()
    for g in groups:
        ip = g.head.ip
        assert ip is not None
        if ip not in nodes:
            role = g.head.role
            nodes[ip] = {"name": f"{role}-{role_count[role]}", "host": ip, "nic": None}
            role_count[role] += 1
        for p in g.procs:
            if p.nic and nodes[ip]["nic"] is None:
                nodes[ip]["nic"] = p.nic
    if gen is not None and gen.nic:
        for node in nodes.values():
            node["nic"] = node["nic"] or gen.nic
    npus = gen.npus if gen is not None and gen.npus else 16

    # Ranktable.
    rt_values = [p.env[RANKTABLE_ENV] for p in procs if RANKTABLE_ENV in p.env]
    rt_path = rt_values[0] if rt_values else None
    if len(set(rt_values)) > 1:
        warnings.append(f"{RANKTABLE_ENV} differs between the scripts: {sorted(set(rt_values))}")
    if gen is not None and gen.directory is not None:
        generated = posixpath.normpath(posixpath.join(gen.directory, "ranktable.json"))
        if rt_path is not None and not _same_path(generated, rt_path):
            src = next(p for p in procs if RANKTABLE_ENV in p.env)
            warnings.append(
                f"{gen.file}: line {gen.line}: gen_ranktable.sh writes {generated} but"
                f" {src.file} sets {RANKTABLE_ENV}={rt_path}; vllm will not find the"
                " ranktable"
            )
        if rt_path is None:
            rt_path = generated

    # Instances.
    instance_rows: list[dict[str, Any]] = []
    env_items: list[list[tuple[str, str]]] = []
    serve_items: list[list[tuple[str, FlagValue]]] = []
    used: dict[str, set[int]] = {}
    role_count = Counter()
    for g in groups:
        p0 = g.head
        assert p0.ip is not None
        node = nodes[p0.ip]
        env = {k: v for k, v in p0.env.items() if k != VISIBLE_DEVICES or p0.dp is None}
        devices: list[int] | None
        if p0.dp is not None:
            rank_devs = [p.devices for p in g.procs]
            devices = None if any(d is None for d in rank_devs) else [
                d for ds in rank_devs if ds is not None for d in ds
            ]
        else:
            devices = p0.devices
            if devices is not None and set(devices) != set(range(npus)):
                env.pop(VISIBLE_DEVICES, None)
        if devices is None:
            devices = _guess_devices(g, npus, used.setdefault(p0.ip, set()), warnings)
        used.setdefault(p0.ip, set()).update(devices)
        for key, value in list(env.items()):
            if value == p0.ip:
                env[key] = "{node.ip}"
            elif node["nic"] and value == node["nic"]:
                env[key] = "{node.nic}"
            elif key == RANKTABLE_ENV and rt_path is not None and value == rt_path:
                env[key] = "{ranktable.path}"
        env_items.append(list(env.items()))
        serve_items.append(list(p0.flags))
        row: dict[str, Any] = {
            "name": f"{p0.role}-{role_count[p0.role]}",
            "role": p0.role,
            "node": node["name"],
            "devices": format_devices(devices),
            "port": p0.port,
        }
        role_count[p0.role] += 1
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
        instance_rows.append(row)
    shared_env, own_env = split_common(env_items)
    shared_serve, own_serve = split_common(serve_items)
    shared_serve = stabilize(shared_serve)
    for row, e, s in zip(instance_rows, own_env, own_serve, strict=True):
        if e:
            row["env"] = e
        if s:
            row["serve"] = stabilize(s)

    nics = {n["nic"] for n in nodes.values()}
    common_nic = nics.pop() if len(nics) == 1 else None
    defaults: dict[str, Any] = {}
    if common_nic:
        defaults["nic"] = common_nic
    if gen is not None and gen.npus:
        defaults["npus"] = gen.npus
    node_rows: list[dict[str, Any]] = []
    for n in nodes.values():
        row = {"name": n["name"], "host": n["host"]}
        if n["nic"] and not common_nic:
            row["nic"] = n["nic"]
        node_rows.append(row)

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
        "instances": instance_rows,
    }
    if defaults:
        data["defaults"] = defaults
    if head.vllm != "vllm":
        data["model"]["vllm"] = head.vllm

    if rt_path is not None:
        pre = sum(len(parse_devices(r["devices"])) for r in instance_rows
                  if r["role"] == "prefill")
        dec = sum(len(parse_devices(r["devices"])) for r in instance_rows
                  if r["role"] == "decode")
        rt: dict[str, Any] = {
            "path": rt_path,
            "prefill_device_count": (gen.prefill if gen and gen.prefill else pre) or 1,
            "decode_device_count": (gen.decode if gen and gen.decode else dec) or 1,
        }
        if gen is not None and gen.local_ids:
            rt["local_device_ids"] = gen.local_ids
        data["ranktable"] = rt
    elif any(p.kv.get("kv_connector") == "LLMDataDistCMgrConnector" for p in procs):
        warnings.append(
            f"LLMDataDistCMgrConnector needs a ranktable, but no script sets {RANKTABLE_ENV}"
            " or runs gen_ranktable.sh"
        )

    if proxy is not None:
        data["proxy"] = proxy_section(proxy, groups, nodes, node_rows, warnings)

    try:
        spec = parse_spec(data, "imported scripts")
    except ClusterError as exc:
        raise ScriptImportError(exc.problems) from None
    return ImportResult(spec=spec, warnings=warnings)


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
