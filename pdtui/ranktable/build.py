"""Generate the legacy LLMDataDist PD ranktable, and read and write its text.

`generate` writes exactly what vllm-ascend's ``gen_ranktable.py`` writes for the same nodes and
arguments, but from the health probe's ``hccn_tool`` / ``npu-smi`` output collected over SSH
instead of a torchrun rendezvous that must run on every node at once. The script, as of
vllm-ascend v0.11.0rc0:
https://github.com/vllm-project/vllm-ascend/blob/v0.11.0rc0/examples/disaggregated_prefill_v1/gen_ranktable.py
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pdtui.cluster import Cluster, Node, format_devices
from pdtui.npu.model import NodeHealth, Raw
from pdtui.text import count

VERSION = "1.2"
STATUS = "completed"
LISTS: tuple[str, str] = ("prefill_device_list", "decode_device_list")
TOP_KEYS: tuple[str, ...] = ("version", "server_count", *LISTS, "status")
DEVICE_KEYS: tuple[str, ...] = ("server_id", "device_id", "device_ip", "cluster_id")
SUPER_KEYS: tuple[str, str] = ("super_pod_id", "super_device_id")


class RanktableError(Exception):
    """A ranktable could not be generated or read; the message is one line naming where."""


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


def _node_order(cluster: Cluster, source: str) -> list[Node]:
    """gen's ``--ips``: prefill nodes, then decode nodes, each in cluster-file order."""
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
    return order


def _node_entries(
    node: Node, live: Mapping[str, NodeHealth], local_ids: list[int] | None
) -> list[dict[str, str]]:
    """One node's device entries: ``local_ids`` if given, else every device it shows."""
    health = _live_node(node, live)
    if local_ids is not None:
        ids = list(local_ids)
    else:
        ids = sorted(d.id for d in health.devices)
        if not ids:
            raise RanktableError(f"{node.name}: the live data shows no devices")
    return [_device_entry(node, health, i) for i in ids]


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
    order = _node_order(cluster, source)
    entries = [e for node in order for e in _node_entries(node, live, rt.local_device_ids)]
    for i, entry in enumerate(entries, start=1):
        entry["cluster_id"] = str(i)
    pre, dec = rt.prefill_device_count, rt.decode_device_count
    if pre + dec > len(entries):
        raise RanktableError(
            f"{source}: ranktable: prefill_device_count + decode_device_count = {pre + dec}"
            f" exceeds the {count(len(entries), 'device')} of nodes "
            f"{', '.join(n.name for n in order)}"
        )
    return {
        "version": VERSION,
        "server_count": str(len(order)),
        "prefill_device_list": entries[:pre],
        "decode_device_list": entries[pre : pre + dec],
        "status": STATUS,
    }


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
    except ValueError:  # Python refuses to convert integers of over 4300 digits
        raise RanktableError(f"{source}: not a ranktable: a number over 4300 digits") from None
    if not isinstance(data, dict):
        raise RanktableError(f"{source}: expected a JSON object, got {kind_of(data)}")
    for key in LISTS:
        if key not in data:
            raise RanktableError(f"{source}: {key}: missing")
        value = data[key]
        if not isinstance(value, list):
            raise RanktableError(f"{source}: {key}: expected a list, got {kind_of(value)}")
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise RanktableError(
                    f"{source}: {key}[{i}]: expected an object, got {kind_of(item)}"
                )
    return data


def kind_of(value: object) -> str:
    """How a JSON value reads in a message: "an object", "the string 'x'", "null", ..."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the string {value!r}"
    if value is None:
        return "null"
    return f"{type(value).__name__} {value!r}"
