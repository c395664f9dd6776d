"""Shared by the ranktable tests: a two-node TP 2 example with its goldens and live data, and
the runbook deployment on the simulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from simdata import collect

from pdtui import cluster as cl
from pdtui.npu.model import DeviceHealth, NodeHealth, Raw
from pdtui.ranktable import Finding
from pdtui.sim.state import SimState, build_state

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ranktable"
ROOT = Path(__file__).resolve().parent.parent.parent
RUNBOOK = ROOT / "sample_clusters" / "deepseek-v3.2-a3-1p1d.toml"


def collect_all(state: SimState) -> dict[str, NodeHealth]:
    return {n: collect(state, n) for n in state.node_names()}


def example_toml(
    soc: str,
    *,
    extra_prefill_env: str = "",
    local_ids: bool = True,
    both_roles: bool = False,
    counts: tuple[int, int] = (2, 2),
) -> str:
    """The goldens' deployment as a cluster file: node A prefill, node B decode, TP 2."""
    ids = "local_device_ids = [0, 1]\n" if local_ids else ""
    decode_node = "node-a" if both_roles else "node-b"
    decode_devices = "[2, 3]" if both_roles else "[0, 1]"
    return f"""
[cluster]
name = "example-1p1d"

[defaults]
soc = "{soc}"
npus = 2

[[nodes]]
name = "node-a"
host = "10.0.0.1"

[[nodes]]
name = "node-b"
host = "10.0.0.2"

[model]
path = "/models/x"
served_name = "x"

[ranktable]
path = "/work/ranktable.json"
prefill_device_count = {counts[0]}
decode_device_count = {counts[1]}
{ids}
[env]
DISAGGREGATED_PREFILL_RANK_TABLE_PATH = "{{ranktable.path}}"

[serve]
tensor-parallel-size = 2

[[instances]]
name = "prefill-0"
role = "prefill"
node = "node-a"
devices = [0, 1]
port = 8000
kv_transfer = {{ kv_connector = "LLMDataDistCMgrConnector", kv_role = "kv_producer" }}
{extra_prefill_env}

[[instances]]
name = "decode-0"
role = "decode"
node = "{decode_node}"
devices = {decode_devices}
port = 8001
kv_transfer = {{ kv_connector = "LLMDataDistCMgrConnector", kv_role = "kv_consumer" }}
""".replace("npus = 2", "npus = 4" if both_roles else "npus = 2")


def example_cluster(soc: str, **kw: Any) -> cl.Cluster:
    return cl.loads(example_toml(soc, **kw), source="example.toml")


def hostname_raw(ip: str) -> Raw:
    return Raw("hostname -I", 0, f"{ip} 172.17.0.1 \n", "")


def example_live_a2() -> dict[str, NodeHealth]:
    """Live data matching the A2 golden (RoCE IPs from hccn_tool -ip -g)."""
    return {
        "node-a": NodeHealth(
            "node-a",
            "A2",
            True,
            devices=[DeviceHealth(0, ip="29.1.137.205"), DeviceHealth(1, ip="29.1.137.206")],
            raw={"hostname_i": hostname_raw("10.0.0.1")},
        ),
        "node-b": NodeHealth(
            "node-b",
            "A2",
            True,
            devices=[DeviceHealth(0, ip="29.1.170.140"), DeviceHealth(1, ip="29.1.170.141")],
            raw={"hostname_i": hostname_raw("10.0.0.2")},
        ),
    }


def example_live_a3() -> dict[str, NodeHealth]:
    """Live data matching the A3 golden (vNIC IPs, SDIDs, super pod 0). RoCE
    IPs are set too, to prove the A3 table uses the vNIC IP instead."""

    def dev(i: int, vnic: str, sdid: int) -> DeviceHealth:
        return DeviceHealth(i, ip=f"29.9.9.{i}", vnic_ip=vnic, sdid=sdid, super_pod_id=0)

    return {
        "node-a": NodeHealth(
            "node-a",
            "A3",
            True,
            devices=[dev(0, "192.25.2.199", 104857600), dev(1, "192.25.3.198", 104923137)],
            raw={"hostname_i": hostname_raw("10.0.0.1")},
        ),
        "node-b": NodeHealth(
            "node-b",
            "A3",
            True,
            devices=[dev(0, "192.26.2.199", 109051904), dev(1, "192.26.3.198", 109117441)],
            raw={"hostname_i": hostname_raw("10.0.0.2")},
        ),
    }


def runbook_setup() -> tuple[cl.Cluster, SimState, dict[str, NodeHealth]]:
    cluster = cl.load(RUNBOOK)
    state = build_state([(n.name, n.ip, n.soc, n.npus) for n in cluster.nodes])
    return cluster, state, collect_all(state)


def errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "error"]


def keys(findings: list[Finding]) -> list[tuple[str, str]]:
    return [(f.location, f.message) for f in findings]
