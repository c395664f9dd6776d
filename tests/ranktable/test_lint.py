"""Ranktable lint: each rule, a mutation property test, and the copies on the nodes."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pdtui import cluster as cl
from pdtui.ranktable import (
    Finding,
    dumps,
    generate,
    lint,
    loads,
)
from pdtui.sim.state import build_state

from .common import (
    FIXTURES,
    RUNBOOK,
    collect_all,
    errors,
    example_cluster,
    example_live_a3,
    keys,
    runbook_setup,
)

# =========================================================================== lint checks


def test_lint_shape_findings() -> None:
    assert keys(lint([])) == [
        ("(top level)", "not a ranktable: expected a JSON object, got a list")
    ]
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
        'name = "prefill-0"\nhost = "172.22.0.218"\nip = "172.22.0.219"',
    )
    wrong = cl.loads(toml)
    rt = generate(wrong, live)
    errs = errors(lint(rt, wrong, live))
    assert len(errs) == 32  # not an address of the node, and not what vLLM will pick
    assert errs[0].location == "prefill_device_list[0].server_id"
    assert errs[0].message == (
        "server_id 172.22.0.219 is not an address of node prefill-0 (hostname -I: 172.22.0.218)"
    )
    assert errs[1].message == (
        "server_id 172.22.0.219 is not the IP vLLM will pick on"
        " prefill-0 (no VLLM_HOST_IP; default-route source 172.22.0.218)"
    )


def test_lint_server_id_not_the_default_route_source_unless_vllm_host_ip() -> None:
    """A multi-homed node whose default route leaves through another NIC (vllm#42023)."""
    import dataclasses

    cluster = cl.load(RUNBOOK)
    state = build_state([(n.name, n.ip, n.soc, n.npus) for n in cluster.nodes])
    live = collect_all(state)
    node = live["decode-0"]
    route = node.raw["route"]
    node.raw["route"] = dataclasses.replace(
        route, stdout=route.stdout.replace("src 172.22.0.155", "src 10.1.1.5")
    )
    node.raw["hostname_i"] = dataclasses.replace(
        node.raw["hostname_i"], stdout="172.22.0.155 10.1.1.5 \n"
    )
    rt = generate(cluster, live)
    errs = errors(lint(rt, cluster, live))
    assert {e.location.split(".")[0] for e in errs} == {
        f"decode_device_list[{i}]" for i in range(16)
    }
    assert errs[0].message.endswith("(no VLLM_HOST_IP; default-route source 10.1.1.5)")
    pinned = cl.loads(
        RUNBOOK.read_text().replace(
            '[[instances]]\nname = "decode-0"',
            '[[instances]]\nname = "decode-0"\nenv = { VLLM_HOST_IP = "172.22.0.155" }',
        )
    )
    assert errors(lint(rt, pinned, live)) == []


def test_lint_vllm_host_ip_mismatch() -> None:
    cluster = example_cluster("A2", extra_prefill_env='env = { VLLM_HOST_IP = "10.0.0.9" }')
    rt = loads((FIXTURES / "example_a2.json").read_text())
    got = keys(errors(lint(rt, cluster)))
    assert (
        "prefill_device_list[0].server_id",
        "server_id 10.0.0.1 is not VLLM_HOST_IP 10.0.0.9 of instance prefill-0",
    ) in got
    assert any(
        loc == "prefill_device_list" and m.startswith("too few entries for prefill-0")
        for loc, m in got
    )


def test_lint_explicit_visible_devices() -> None:
    cluster = example_cluster("A2", extra_prefill_env='env = { ASCEND_RT_VISIBLE_DEVICES = "0" }')
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
    rt["decode_device_list"].append(
        dict(rt["decode_device_list"][0], cluster_id="5", device_ip="29.1.170.199", device_id="1")
    )
    findings = lint(rt, example_cluster("A2"))
    assert [(f.severity, f.location, f.message.split(" (")[0]) for f in findings] == [
        ("error", "decode_device_list[1].device_id", "device_id 5 does not exist on node node-b"),
        (
            "warning",
            "decode_device_list",
            "3 entries, but ranktable.decode_device_count in the cluster file is 2",
        ),
    ]


def test_lint_live_mismatch_a3() -> None:
    cluster = example_cluster("A3")
    live = example_live_a3()
    live["node-b"].devices[1].vnic_ip = "192.26.3.197"
    live["node-b"].devices[1].sdid = 1
    rt = loads((FIXTURES / "example_a3.json").read_text())
    got = keys(lint(rt, cluster, live))
    assert got == [
        (
            "decode_device_list[1].device_ip",
            "device_ip 192.26.3.198 does not match the live"
            " 192.26.3.197 (hccn_tool -i 1 -vnic -g on node-b)",
        ),
        (
            "decode_device_list[1].super_device_id",
            "super_device_id 109117441 does not match"
            " the live 1 (npu-smi info -t spod-info SDID on node-b)",
        ),
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
    assert keys(lint(rt)) == [
        (
            "decode_device_list[0].super_device_id",
            "A3 entry without super_device_id (the entry has the other super field)",
        )
    ]
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
    assert found[0].message == ("duplicate super_device_id 106758159 (also prefill_device_list[0])")


def test_finding_location_and_dict() -> None:
    f = Finding("error", "prefill_device_list", 3, "device_ip", "m", "x")
    assert f.location == "prefill_device_list[3].device_ip"
    assert Finding("error", None, None, "server_count", "m", "x").location == "server_count"
    assert Finding("error", "decode_device_list", None, None, "m", "x").location == (
        "decode_device_list"
    )
    g = Finding("error", None, None, None, "missing on node n1", "x", node="n1")
    assert g.location == "n1"
    assert g.to_dict()["location"] == "n1"
    assert json.loads(json.dumps(f.to_dict()))["index"] == 3


# =========================================================================== mutations

Expect = set[tuple[str, str]]


def _loc(lst: str, i: int, fld: str | None = None) -> str:
    return f"{lst}[{i}]" + (f".{fld}" if fld else "")


def _entries(rt: dict[str, Any]) -> list[tuple[str, int, dict[str, Any]]]:
    return [
        (lst, i, e)
        for lst in ("prefill_device_list", "decode_device_list")
        for i, e in enumerate(rt[lst])
    ]


def _renumber(rt: dict[str, Any]) -> None:
    for n, (_, _, e) in enumerate(_entries(rt), start=1):
        e["cluster_id"] = str(n)


@st.composite
def mutations(draw: st.DrawFn, base: dict[str, Any]) -> tuple[str, dict[str, Any], Expect]:
    rt = copy.deepcopy(base)
    flat = _entries(rt)
    kind = draw(
        st.sampled_from(
            [
                "dup_ip",
                "to_int",
                "swap_cluster_id",
                "drop_super",
                "server_id",
                "server_count",
                "decode_first",
                "prefill_last",
                "below_tp",
            ]
        )
    )
    exp: Expect = set()
    if kind == "dup_ip":
        a = draw(st.integers(0, len(flat) - 2))
        b = draw(st.integers(a + 1, len(flat) - 1))
        lst, i, e = flat[b]
        e["device_ip"] = flat[a][2]["device_ip"]
        exp = {
            (_loc(lst, i, "device_ip"), "duplicate device_ip"),
            (_loc(lst, i, "device_ip"), f"device_ip {e['device_ip']} does not match"),
        }
    elif kind == "to_int":
        if draw(st.booleans()):
            lst, i, e = draw(st.sampled_from(flat))
            key = draw(
                st.sampled_from(["device_id", "cluster_id", "super_pod_id", "super_device_id"])
            )
            e[key] = int(e[key])
            exp = {(_loc(lst, i, key), "not a string")}
        else:
            rt["server_count"] = int(rt["server_count"])
            exp = {("server_count", "not a string")}
    elif kind == "swap_cluster_id":
        a, b = draw(st.lists(st.integers(0, len(flat) - 1), min_size=2, max_size=2, unique=True))
        ea, eb = flat[a][2], flat[b][2]
        ea["cluster_id"], eb["cluster_id"] = eb["cluster_id"], ea["cluster_id"]
        exp = {
            (_loc(flat[a][0], flat[a][1], "cluster_id"), "cluster_id is"),
            (_loc(flat[b][0], flat[b][1], "cluster_id"), "cluster_id is"),
        }
    elif kind == "drop_super":
        lst, i, e = draw(st.sampled_from(flat))
        key = draw(st.sampled_from(["super_pod_id", "super_device_id"]))
        del e[key]
        exp = {(_loc(lst, i, key), f"A3 entry without {key}")}
    elif kind == "server_id":
        lst, i, e = draw(st.sampled_from(flat))
        e["server_id"] = "10.99.0.1"
        exp = {
            (_loc(lst, i, "server_id"), "server_id 10.99.0.1 is no node's"),
            ("server_count", "server_count is"),
            (lst, "too few entries"),
        }
    elif kind == "server_count":
        rt["server_count"] = draw(st.sampled_from(["1", "3", "32", "", "two"]))
        exp = {("server_count", "server_count is")}
    elif kind == "decode_first":
        k = draw(st.integers(0, len(rt["decode_device_list"]) - 1))
        rt["prefill_device_list"].insert(0, rt["decode_device_list"].pop(k))
        _renumber(rt)
        exp = {
            ("prefill_device_list[0].server_id", "decode node decode-0 in"),
            ("decode_device_list", "too few entries"),
        }
    elif kind == "prefill_last":
        k = draw(st.integers(0, len(rt["prefill_device_list"]) - 1))
        rt["decode_device_list"].append(rt["prefill_device_list"].pop(k))
        _renumber(rt)
        last = len(rt["decode_device_list"]) - 1
        exp = {
            (_loc("decode_device_list", last, "server_id"), "prefill node prefill-0 in"),
            ("prefill_device_list", "too few entries"),
        }
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
@pytest.mark.slow
def test_mutation_gives_exactly_the_matching_errors(
    case: tuple[str, dict[str, Any], Expect],
) -> None:
    kind, rt, expected = case
    cluster, _, live = _RUNBOOK
    errs = errors(lint(rt, cluster, live))
    for f in errs:
        assert any(f.location == loc and f.message.startswith(pre) for loc, pre in expected), (
            f"{kind}: unexpected {f.location}: {f.message}"
        )
    for loc, pre in expected:
        assert any(f.location == loc and f.message.startswith(pre) for f in errs), (
            f"{kind}: missing {loc}: {pre}...; got {keys(errs)}"
        )


# =========================================================================== remote


def test_remote_missing_different_equal() -> None:
    text = (FIXTURES / "example_a2.json").read_text()
    rt = loads(text)
    cluster = example_cluster("A2")
    changed = loads(text)
    changed["prefill_device_list"][1]["device_ip"] = "29.1.137.207"
    compact = json.dumps(rt)
    findings = lint(rt, cluster, remote={"node-a": None, "node-b": dumps(changed)}, local_text=text)
    assert [(f.severity, f.location, f.node) for f in findings] == [
        ("error", "node-a", "node-a"),
        ("error", "node-b", "node-b"),
    ]
    assert findings[0].message == "missing on node node-a"
    assert findings[1].message == (
        "differs on node node-b (prefill_device_list[1].device_ip: 29.1.137.207 -> 29.1.137.206)"
    )
    assert lint(rt, cluster, remote={"node-a": text, "node-b": text}, local_text=text) == []
    fmt = lint(rt, cluster, remote={"node-a": text, "node-b": compact}, local_text=text)
    assert [(f.severity, f.location, f.message) for f in fmt] == [
        ("warning", "node-b", "formatting differs on node node-b (same content)")
    ]
    bad = lint(rt, remote={"node-a": "{"}, local_text=text)
    assert bad[0].message.startswith("differs on node node-a: node-a copy: not valid JSON")
    # Without local_text the comparison is against dumps(rt).
    assert lint(rt, remote={"node-a": text}) == []
