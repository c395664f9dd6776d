"""Ranktable generation (byte-exact against hand-written goldens from the reference's worked
example), linting (each check, plus a mutation property test), remote comparison, diffs."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from simdata import collect

from pdtui import cluster as cl
from pdtui.npu.model import DeviceHealth, NodeHealth, Raw
from pdtui.ranktable import (
    Finding,
    RanktableError,
    diff,
    dumps,
    generate,
    lint,
    loads,
    summary_diff,
)
from pdtui.sim.faults import apply_fault
from pdtui.sim.state import SimState, build_state

FIXTURES = Path(__file__).parent / "fixtures" / "ranktable"
ROOT = Path(__file__).resolve().parent.parent
RUNBOOK = ROOT / "sample_clusters" / "deepseek-v3.2-a3-1p1d.toml"


# =========================================================================== helpers


def collect_all(state: SimState) -> dict[str, NodeHealth]:
    return {n: collect(state, n) for n in state.node_names()}


def example_toml(soc: str, *, extra_prefill_env: str = "", local_ids: bool = True,
                 both_roles: bool = False, counts: tuple[int, int] = (2, 2)) -> str:
    """The worked example 1.3 as a cluster file: node A prefill, node B decode, TP 2."""
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
    """Live data matching the reference's A2 example (RoCE IPs from hccn_tool -ip -g)."""
    return {
        "node-a": NodeHealth("node-a", "A2", True, devices=[
            DeviceHealth(0, ip="29.1.137.205"), DeviceHealth(1, ip="29.1.137.206")],
            raw={"hostname_i": hostname_raw("10.0.0.1")}),
        "node-b": NodeHealth("node-b", "A2", True, devices=[
            DeviceHealth(0, ip="29.1.170.140"), DeviceHealth(1, ip="29.1.170.141")],
            raw={"hostname_i": hostname_raw("10.0.0.2")}),
    }


def example_live_a3() -> dict[str, NodeHealth]:
    """Live data matching the reference's A3 example (vNIC IPs, SDIDs, super pod 0). RoCE
    IPs are set too, to prove the A3 table uses the vNIC IP instead."""

    def dev(i: int, vnic: str, sdid: int) -> DeviceHealth:
        return DeviceHealth(i, ip=f"29.9.9.{i}", vnic_ip=vnic, sdid=sdid, super_pod_id=0)

    return {
        "node-a": NodeHealth("node-a", "A3", True, devices=[
            dev(0, "192.25.2.199", 104857600), dev(1, "192.25.3.198", 104923137)],
            raw={"hostname_i": hostname_raw("10.0.0.1")}),
        "node-b": NodeHealth("node-b", "A3", True, devices=[
            dev(0, "192.26.2.199", 109051904), dev(1, "192.26.3.198", 109117441)],
            raw={"hostname_i": hostname_raw("10.0.0.2")}),
    }


def runbook_setup() -> tuple[cl.Cluster, SimState, dict[str, NodeHealth]]:
    cluster = cl.load(RUNBOOK)
    state = build_state([(n.name, n.ip, n.soc, n.npus) for n in cluster.nodes])
    return cluster, state, collect_all(state)


def errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "error"]


def keys(findings: list[Finding]) -> list[tuple[str, str]]:
    return [(f.location, f.message) for f in findings]


# =========================================================================== goldens


@pytest.mark.parametrize("soc", ["A2", "A3"])
def test_generate_matches_worked_example_byte_for_byte(soc: str) -> None:
    golden = (FIXTURES / f"example_{soc.lower()}.json").read_text(encoding="utf-8")
    live = example_live_a2() if soc == "A2" else example_live_a3()
    rt = generate(example_cluster(soc), live)
    assert dumps(rt) == golden
    assert not golden.endswith("\n")  # json.dump(indent=4) writes no trailing newline
    assert list(rt) == ["version", "server_count", "prefill_device_list",
                        "decode_device_list", "status"]
    assert all(isinstance(v, str) for e in rt["prefill_device_list"] for v in e.values())
    assert loads(golden) == rt


@pytest.mark.parametrize("soc", ["A2", "A3"])
def test_worked_example_lints_clean(soc: str) -> None:
    live = example_live_a2() if soc == "A2" else example_live_a3()
    cluster = example_cluster(soc)
    text = (FIXTURES / f"example_{soc.lower()}.json").read_text(encoding="utf-8")
    assert lint(loads(text), cluster, live) == []


def test_generate_without_local_ids_uses_every_live_device() -> None:
    cluster = example_cluster("A2", local_ids=False)
    live = example_live_a2()
    live["node-a"].devices.append(DeviceHealth(2, ip="29.1.137.207"))
    rt = generate(cluster, live)
    pre = rt["prefill_device_list"]
    assert [e["device_id"] for e in pre] == ["0", "1"]
    # gen lists node A's 3 devices then node B's; with P=2, D=2 node A's device 2 becomes
    # the first decode entry and node B's device 1 is dropped.
    assert [(e["server_id"], e["device_id"], e["cluster_id"])
            for e in rt["decode_device_list"]] == [("10.0.0.1", "2", "3"),
                                                    ("10.0.0.2", "0", "4")]


# =========================================================================== simulator


def test_runbook_generate_then_lint_clean() -> None:
    cluster, _, live = runbook_setup()
    rt = generate(cluster, live)
    assert rt["server_count"] == "2"
    assert len(rt["prefill_device_list"]) == len(rt["decode_device_list"]) == 16
    first = rt["prefill_device_list"][0]
    assert first == {"server_id": "172.22.0.218", "device_id": "0",
                     "device_ip": "192.25.2.199", "super_pod_id": "0",
                     "super_device_id": "104857600", "cluster_id": "1"}
    assert rt["decode_device_list"][-1]["cluster_id"] == "32"
    assert rt["decode_device_list"][-1]["server_id"] == "172.22.0.155"
    assert lint(rt, cluster, live) == []
    assert lint(loads(dumps(rt)), cluster, live) == []
    assert lint(rt) == []


def test_a2_simulator_generate_lints_clean() -> None:
    toml = RUNBOOK.read_text(encoding="utf-8").replace('soc = "A3"', 'soc = "A2"')
    toml = toml.replace("npus = 16", "npus = 8").replace('devices = "0-15"', 'devices = "0-7"')
    toml = toml.replace("tensor-parallel-size = 16", "tensor-parallel-size = 8")
    toml = toml.replace("_device_count = 16", "_device_count = 8")
    cluster = cl.loads(toml)
    state = build_state([(n.name, n.ip, n.soc, n.npus) for n in cluster.nodes])
    live = collect_all(state)
    rt = generate(cluster, live)
    assert rt["prefill_device_list"][0]["device_ip"] == "29.1.1.100"
    assert set(rt["prefill_device_list"][0]) == {"server_id", "device_id", "device_ip",
                                                 "cluster_id"}
    assert lint(rt, cluster, live) == []


# =========================================================================== errors


def test_error_no_ranktable_section() -> None:
    lines = example_toml("A2").splitlines()
    start = lines.index("[ranktable]")
    end = lines.index("[env]")
    toml = "\n".join(lines[:start] + lines[end:]).replace(
        'DISAGGREGATED_PREFILL_RANK_TABLE_PATH = "{ranktable.path}"', "")
    toml = toml.replace('"LLMDataDistCMgrConnector"', '"MooncakeConnectorV1"')
    cluster = cl.loads(toml, source="example.toml")
    with pytest.raises(RanktableError, match=r"^cluster file: no \[ranktable\] section"):
        generate(cluster, example_live_a2())


def test_error_node_with_both_roles() -> None:
    cluster = example_cluster("A2", both_roles=True)
    with pytest.raises(RanktableError, match="node node-a hosts both prefill and decode"):
        generate(cluster, example_live_a2())


def test_error_missing_and_unreachable_live() -> None:
    live = example_live_a2()
    del live["node-b"]
    with pytest.raises(RanktableError, match=r"^node-b: no live data"):
        generate(example_cluster("A2"), live)
    live = example_live_a2()
    live["node-b"] = NodeHealth("node-b", "A2", False, error="ssh: connection timed out")
    with pytest.raises(RanktableError, match=r"^node-b: unreachable: ssh: connection timed"):
        generate(example_cluster("A2"), live)


def test_error_device_not_in_live_data() -> None:
    live = example_live_a2()
    live["node-b"].devices.pop()
    with pytest.raises(RanktableError, match=r"^node-b device 1: not in the live data"):
        generate(example_cluster("A2"), live)


def test_error_no_vnic_ip_names_node_device_and_reason() -> None:
    cluster, state, _ = runbook_setup()
    apply_fault(state, "decode-0:tool-missing=hccn_tool")
    live = collect_all(state)
    with pytest.raises(RanktableError) as exc:
        generate(cluster, live)
    assert str(exc.value) == (
        "decode-0 device 0: no vNIC IP (hccn_tool -vnic -g: exit 127: hccn_tool: command"
        " not found)")


def test_error_no_roce_ip_on_a2() -> None:
    cluster = example_cluster("A2")
    state = build_state([("node-a", "10.0.0.1", "A2", 2), ("node-b", "10.0.0.2", "A2", 2)])
    apply_fault(state, "node-b:1:no-ip")
    with pytest.raises(RanktableError) as exc:
        generate(cluster, collect_all(state))
    msg = str(exc.value)
    assert msg.startswith("node-b device 1: no RoCE IP (hccn_tool -ip -g: exit ")
    assert "no ip was preset there" in msg


def test_error_no_sdid() -> None:
    live = example_live_a3()
    d = live["node-a"].devices[1]
    d.sdid = None
    d.raw["spod"] = Raw("npu-smi info -t spod-info -i 0 -c 1", 0, "\tSuper Pod ID : 0\n", "")
    with pytest.raises(RanktableError) as exc:
        generate(example_cluster("A3"), live)
    assert str(exc.value) == ("node-a device 1: no SDID (npu-smi info -t spod-info -i 0 -c 1:"
                              " no SDID line in the output)")


def test_error_counts_exceed_devices() -> None:
    # 2 nodes x 2 NPUs = 4, so the cluster file allows at most P + D = 4; with
    # local_device_ids = [0] only 2 devices end up in the table.
    toml = example_toml("A2").replace("local_device_ids = [0, 1]", "local_device_ids = [0]")
    cluster = cl.loads(toml, source="example.toml")
    with pytest.raises(RanktableError, match=r"^cluster file: ranktable: prefill_device_count"
                       r" \+ decode_device_count = 4 exceeds the 2 devices"):
        generate(cluster, example_live_a2())


def test_loads_errors() -> None:
    with pytest.raises(RanktableError, match=r"^x.json: not valid JSON: .*\(line 2, column"):
        loads('{\n  "version": }', source="x.json")
    with pytest.raises(RanktableError, match=r"^ranktable.json: expected a JSON object"):
        loads("[]")
    with pytest.raises(RanktableError, match=r"^ranktable.json: decode_device_list: missing"):
        loads('{"prefill_device_list": []}')
    with pytest.raises(RanktableError,
                       match=r"^ranktable.json: prefill_device_list\[1\]: expected an object"):
        loads('{"prefill_device_list": [{}, 3], "decode_device_list": []}')


# =========================================================================== lint checks


def test_lint_shape_findings() -> None:
    assert keys(lint([])) == [("(top level)",
                               "not a ranktable: expected a JSON object, got a list")]
    rt: dict[str, Any] = {"prefill_device_list": "x", "decode_device_list": [7], "extra": 1}
    found = {(f.severity, f.location, f.message.split(":")[0]) for f in lint(rt)}
    assert ("warning", "version", "missing key version") in found
    assert ("error", "server_count", "missing key server_count") in found
    assert ("error", "status", "missing key status") in found
    assert ("warning", "extra", "unknown key extra") in found
    assert ("error", "prefill_device_list", "not a list") in found
    assert ("error", "decode_device_list[0]", "not a device object") in found


def test_lint_version_status_unknown_entry_key() -> None:
    rt = loads((FIXTURES / "example_a2.json").read_text())
    rt["version"] = "1.0"
    rt["status"] = "initializing"
    rt["prefill_device_list"][0]["rank_id"] = "0"
    del rt["decode_device_list"][1]["device_ip"]
    got = {(f.severity, f.location, f.message) for f in lint(rt)}
    assert got == {
        ("warning", "version", 'version is "1.0", not "1.2"'),
        ("error", "status", 'status is "initializing", not "completed"'),
        ("warning", "prefill_device_list[0].rank_id", "unknown key rank_id"),
        ("error", "decode_device_list[1].device_ip", "missing key device_ip"),
    }


def test_lint_server_id_not_in_hostname_i() -> None:
    # The cluster file says 172.22.0.219 but the node's addresses are 172.22.0.218.
    cluster = cl.load(RUNBOOK)
    state = build_state([(n.name, n.ip, n.soc, n.npus) for n in cluster.nodes])
    live = collect_all(state)
    toml = RUNBOOK.read_text().replace(
        'name = "prefill-0"\nhost = "172.22.0.218"',
        'name = "prefill-0"\nhost = "172.22.0.218"\nip = "172.22.0.219"')
    wrong = cl.loads(toml)
    rt = generate(wrong, live)
    errs = errors(lint(rt, wrong, live))
    assert len(errs) == 32  # not an address of the node, and not what vLLM will pick
    assert errs[0].location == "prefill_device_list[0].server_id"
    assert errs[0].message == ("server_id 172.22.0.219 is not an address of node prefill-0"
                               " (hostname -I: 172.22.0.218)")
    assert errs[1].message == ("server_id 172.22.0.219 is not the IP vLLM will pick on"
                               " prefill-0 (no VLLM_HOST_IP; default-route source 172.22.0.218)")


def test_lint_server_id_not_the_default_route_source_unless_vllm_host_ip() -> None:
    """A multi-homed node whose default route leaves through another NIC (vllm#42023)."""
    import dataclasses

    cluster = cl.load(RUNBOOK)
    state = build_state([(n.name, n.ip, n.soc, n.npus) for n in cluster.nodes])
    live = collect_all(state)
    node = live["decode-0"]
    route = node.raw["route"]
    node.raw["route"] = dataclasses.replace(
        route, stdout=route.stdout.replace("src 172.22.0.155", "src 10.1.1.5"))
    node.raw["hostname_i"] = dataclasses.replace(node.raw["hostname_i"],
                                                 stdout="172.22.0.155 10.1.1.5 \n")
    rt = generate(cluster, live)
    errs = errors(lint(rt, cluster, live))
    assert {e.location.split(".")[0] for e in errs} == {
        f"decode_device_list[{i}]" for i in range(16)}
    assert errs[0].message.endswith("(no VLLM_HOST_IP; default-route source 10.1.1.5)")
    pinned = cl.loads(RUNBOOK.read_text().replace(
        '[[instances]]\nname = "decode-0"',
        '[[instances]]\nname = "decode-0"\nenv = { VLLM_HOST_IP = "172.22.0.155" }'))
    assert errors(lint(rt, pinned, live)) == []


def test_lint_vllm_host_ip_mismatch() -> None:
    cluster = example_cluster("A2", extra_prefill_env='env = { VLLM_HOST_IP = "10.0.0.9" }')
    rt = loads((FIXTURES / "example_a2.json").read_text())
    got = keys(errors(lint(rt, cluster)))
    assert ("prefill_device_list[0].server_id",
            "server_id 10.0.0.1 is not VLLM_HOST_IP 10.0.0.9 of instance prefill-0") in got
    assert any(loc == "prefill_device_list" and m.startswith("too few entries for prefill-0")
               for loc, m in got)


def test_lint_explicit_visible_devices() -> None:
    cluster = example_cluster(
        "A2", extra_prefill_env='env = { ASCEND_RT_VISIBLE_DEVICES = "0" }')
    rt = loads((FIXTURES / "example_a2.json").read_text())
    findings = lint(rt, cluster)
    assert [(f.severity, f.location) for f in findings] == [
        ("warning", "prefill_device_list[1].device_id"),
        ("error", "prefill_device_list"),
    ]
    assert findings[0].message.startswith("device_id 1 is not visible to prefill-0")
    assert findings[1].message.startswith("too few entries for prefill-0 on node node-a: 1")
    assert "Can't read the target server_id 10.0.0.1 and device_rank 1" in findings[1].fix


def test_lint_device_id_not_on_node_and_count_warning() -> None:
    rt = loads((FIXTURES / "example_a2.json").read_text())
    rt["decode_device_list"][1]["device_id"] = "5"
    rt["decode_device_list"].append(dict(rt["decode_device_list"][0], cluster_id="5",
                                         device_ip="29.1.170.199", device_id="1"))
    findings = lint(rt, example_cluster("A2"))
    assert [(f.severity, f.location, f.message.split(" (")[0]) for f in findings] == [
        ("error", "decode_device_list[1].device_id", "device_id 5 does not exist on node node-b"),
        ("warning", "decode_device_list",
         "3 entries, but ranktable.decode_device_count in the cluster file is 2"),
    ]


def test_lint_live_mismatch_a3() -> None:
    cluster = example_cluster("A3")
    live = example_live_a3()
    live["node-b"].devices[1].vnic_ip = "192.26.3.197"
    live["node-b"].devices[1].sdid = 1
    rt = loads((FIXTURES / "example_a3.json").read_text())
    got = keys(lint(rt, cluster, live))
    assert got == [
        ("decode_device_list[1].device_ip", "device_ip 192.26.3.198 does not match the live"
         " 192.26.3.197 (hccn_tool -i 1 -vnic -g on node-b)"),
        ("decode_device_list[1].super_device_id", "super_device_id 109117441 does not match"
         " the live 1 (npu-smi info -t spod-info SDID on node-b)"),
    ]


def test_lint_roce_ip_in_a3_table() -> None:
    """The classic A3 mistake: RoCE IPs instead of vNIC IPs."""
    cluster, _, live = runbook_setup()
    rt = generate(cluster, live)
    for e in rt["prefill_device_list"]:
        dev = live["prefill-0"].device(int(e["device_id"]))
        assert dev is not None and dev.ip is not None
        e["device_ip"] = dev.ip
    errs = errors(lint(rt, cluster, live))
    assert len(errs) == 16
    assert all(f.field == "device_ip" and "-vnic -g" in f.message for f in errs)


def test_lint_super_fields_without_cluster() -> None:
    rt = loads((FIXTURES / "example_a3.json").read_text())
    del rt["decode_device_list"][0]["super_device_id"]
    assert keys(lint(rt)) == [("decode_device_list[0].super_device_id",
                               "A3 entry without super_device_id (the entry has the other"
                               " super field)")]
    # With the cluster, an A2-looking entry on an A3 node is flagged for both fields.
    rt = loads((FIXTURES / "example_a2.json").read_text())
    found = lint(rt, example_cluster("A3"))
    assert len(found) == 8
    assert found[0].message == "A3 entry without super_pod_id (node node-a is A3)"


def test_lint_duplicate_sdid() -> None:
    rt = loads((FIXTURES / "example_a3.json").read_text())
    for e in rt["prefill_device_list"] + rt["decode_device_list"]:
        e["super_device_id"] = "106758159"  # the pre-#2939 bug: the same SDID everywhere
    found = lint(rt)
    assert [f.location for f in found] == [
        "prefill_device_list[1].super_device_id",
        "decode_device_list[0].super_device_id",
        "decode_device_list[1].super_device_id",
    ]
    assert found[0].message == ("duplicate super_device_id 106758159 (also"
                                " prefill_device_list[0])")


def test_finding_location_and_dict() -> None:
    f = Finding("error", "prefill_device_list", 3, "device_ip", "m", "x")
    assert f.location == "prefill_device_list[3].device_ip"
    assert Finding("error", None, None, "server_count", "m", "x").location == "server_count"
    assert Finding("error", "decode_device_list", None, None, "m", "x").location == (
        "decode_device_list")
    g = Finding("error", None, None, None, "missing on node n1", "x", node="n1")
    assert g.location == "n1"
    assert g.to_dict()["location"] == "n1"
    assert json.loads(json.dumps(f.to_dict()))["index"] == 3


# =========================================================================== mutations

Expect = set[tuple[str, str]]


def _loc(lst: str, i: int, fld: str | None = None) -> str:
    return f"{lst}[{i}]" + (f".{fld}" if fld else "")


def _entries(rt: dict[str, Any]) -> list[tuple[str, int, dict[str, Any]]]:
    return [(lst, i, e) for lst in ("prefill_device_list", "decode_device_list")
            for i, e in enumerate(rt[lst])]


def _renumber(rt: dict[str, Any]) -> None:
    for n, (_, _, e) in enumerate(_entries(rt), start=1):
        e["cluster_id"] = str(n)


@st.composite
def mutations(draw: st.DrawFn, base: dict[str, Any]) -> tuple[str, dict[str, Any], Expect]:
    rt = copy.deepcopy(base)
    flat = _entries(rt)
    kind = draw(st.sampled_from(["dup_ip", "to_int", "swap_cluster_id", "drop_super",
                                 "server_id", "server_count", "decode_first",
                                 "prefill_last", "below_tp"]))
    exp: Expect = set()
    if kind == "dup_ip":
        a = draw(st.integers(0, len(flat) - 2))
        b = draw(st.integers(a + 1, len(flat) - 1))
        lst, i, e = flat[b]
        e["device_ip"] = flat[a][2]["device_ip"]
        exp = {(_loc(lst, i, "device_ip"), "duplicate device_ip"),
               (_loc(lst, i, "device_ip"), f"device_ip {e['device_ip']} does not match")}
    elif kind == "to_int":
        if draw(st.booleans()):
            lst, i, e = draw(st.sampled_from(flat))
            key = draw(st.sampled_from(["device_id", "cluster_id", "super_pod_id",
                                        "super_device_id"]))
            e[key] = int(e[key])
            exp = {(_loc(lst, i, key), "not a string")}
        else:
            rt["server_count"] = int(rt["server_count"])
            exp = {("server_count", "not a string")}
    elif kind == "swap_cluster_id":
        a, b = draw(st.lists(st.integers(0, len(flat) - 1), min_size=2, max_size=2,
                             unique=True))
        ea, eb = flat[a][2], flat[b][2]
        ea["cluster_id"], eb["cluster_id"] = eb["cluster_id"], ea["cluster_id"]
        exp = {(_loc(flat[a][0], flat[a][1], "cluster_id"), "cluster_id is"),
               (_loc(flat[b][0], flat[b][1], "cluster_id"), "cluster_id is")}
    elif kind == "drop_super":
        lst, i, e = draw(st.sampled_from(flat))
        key = draw(st.sampled_from(["super_pod_id", "super_device_id"]))
        del e[key]
        exp = {(_loc(lst, i, key), f"A3 entry without {key}")}
    elif kind == "server_id":
        lst, i, e = draw(st.sampled_from(flat))
        e["server_id"] = "10.99.0.1"
        exp = {(_loc(lst, i, "server_id"), "server_id 10.99.0.1 is no node's"),
               ("server_count", "server_count is"), (lst, "too few entries")}
    elif kind == "server_count":
        rt["server_count"] = draw(st.sampled_from(["1", "3", "32", "", "two"]))
        exp = {("server_count", "server_count is")}
    elif kind == "decode_first":
        k = draw(st.integers(0, len(rt["decode_device_list"]) - 1))
        rt["prefill_device_list"].insert(0, rt["decode_device_list"].pop(k))
        _renumber(rt)
        exp = {("prefill_device_list[0].server_id", "decode node decode-0 in"),
               ("decode_device_list", "too few entries")}
    elif kind == "prefill_last":
        k = draw(st.integers(0, len(rt["prefill_device_list"]) - 1))
        rt["decode_device_list"].append(rt["prefill_device_list"].pop(k))
        _renumber(rt)
        last = len(rt["decode_device_list"]) - 1
        exp = {(_loc("decode_device_list", last, "server_id"), "prefill node prefill-0 in"),
               ("prefill_device_list", "too few entries")}
    else:  # below_tp
        lst = draw(st.sampled_from(["prefill_device_list", "decode_device_list"]))
        k = draw(st.integers(0, len(rt[lst]) - 1))
        del rt[lst][k]
        _renumber(rt)
        exp = {(lst, "too few entries")}
    return kind, rt, exp


_RUNBOOK = runbook_setup()
_BASE = generate(_RUNBOOK[0], _RUNBOOK[2])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutations(_BASE))
def test_mutation_gives_exactly_the_matching_errors(
        case: tuple[str, dict[str, Any], Expect]) -> None:
    kind, rt, expected = case
    cluster, _, live = _RUNBOOK
    errs = errors(lint(rt, cluster, live))
    for f in errs:
        assert any(f.location == loc and f.message.startswith(pre) for loc, pre in expected), (
            f"{kind}: unexpected {f.location}: {f.message}")
    for loc, pre in expected:
        assert any(f.location == loc and f.message.startswith(pre) for f in errs), (
            f"{kind}: missing {loc}: {pre}...; got {keys(errs)}")


# =========================================================================== remote


def test_remote_missing_different_equal() -> None:
    text = (FIXTURES / "example_a2.json").read_text()
    rt = loads(text)
    cluster = example_cluster("A2")
    changed = loads(text)
    changed["prefill_device_list"][1]["device_ip"] = "29.1.137.207"
    compact = json.dumps(rt)
    findings = lint(rt, cluster, remote={"node-a": None, "node-b": dumps(changed)},
                    local_text=text)
    assert [(f.severity, f.location, f.node) for f in findings] == [
        ("error", "node-a", "node-a"), ("error", "node-b", "node-b")]
    assert findings[0].message == "missing on node node-a"
    assert findings[1].message == ("differs on node node-b (prefill_device_list[1].device_ip:"
                                   " 29.1.137.207 -> 29.1.137.206)")
    assert lint(rt, cluster, remote={"node-a": text, "node-b": text}, local_text=text) == []
    fmt = lint(rt, cluster, remote={"node-a": text, "node-b": compact}, local_text=text)
    assert [(f.severity, f.location, f.message) for f in fmt] == [
        ("warning", "node-b", "formatting differs on node node-b (same content)")]
    bad = lint(rt, remote={"node-a": "{"}, local_text=text)
    assert bad[0].message.startswith("differs on node node-a: node-a copy: not valid JSON")
    # Without local_text the comparison is against dumps(rt).
    assert lint(rt, remote={"node-a": text}) == []


# =========================================================================== diffs


def test_diff_and_summary() -> None:
    old_text = (FIXTURES / "example_a2.json").read_text()
    old = loads(old_text)
    new = copy.deepcopy(old)
    new["decode_device_list"][0]["device_ip"] = "29.1.170.150"
    new["decode_device_list"] += [dict(new["decode_device_list"][1], cluster_id="5"),
                                  dict(new["decode_device_list"][1], cluster_id="6")]
    new["server_count"] = "3"
    new_text = dumps(new)
    out = diff(old_text, new_text, "node-a:/work/ranktable.json", "ranktable.json")
    assert out.startswith("--- node-a:/work/ranktable.json\n+++ ranktable.json\n@@ ")
    assert '-            "device_ip": "29.1.170.140",\n' in out
    assert '+            "device_ip": "29.1.170.150",\n' in out
    # json.dump writes no final newline: marked like diff -u does when it is in a hunk.
    tail = diff(old_text, old_text.replace('"completed"', '"x"'), "a", "b")
    assert tail.endswith('+    "status": "x"\n }\n\\ No newline at end of file\n')  # = diff -u
    assert all(line.endswith("\n") for line in out.splitlines(keepends=True))
    assert diff(old_text, old_text, "a", "b") == ""
    assert summary_diff(old, new) == [
        "server_count: 2 -> 3",
        "decode_device_list[0].device_ip: 29.1.170.140 -> 29.1.170.150",
        "decode_device_list: 2 entries added",
    ]
    assert summary_diff(new, old)[-1] == "decode_device_list: 2 entries removed"
    gone = copy.deepcopy(old)
    del gone["prefill_device_list"][0]["device_ip"]
    assert summary_diff(old, gone) == [
        "prefill_device_list[0].device_ip: 29.1.137.205 -> (missing)"]
    assert summary_diff(old, old) == []


def test_deeply_nested_json_is_a_clear_error() -> None:
    with pytest.raises(RanktableError, match=r"rt\.json: not a ranktable: nested too deeply"):
        loads("[" * 100_000 + "]" * 100_000, source="rt.json")
