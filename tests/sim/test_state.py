"""Simulated cluster state: formulas, building, JSON round trip, hccn.conf."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest

from pdtui.sim.faults import apply_fault
from pdtui.sim.state import (
    NET_HEALTH_VALUES,
    Fault,
    ProcessState,
    SimState,
    StateError,
    build_state,
    dumps_state,
    load_state,
    loads_state,
    modify_state,
    parse_vnic_ip,
    render_hccn_conf,
    save_state,
    sdid,
    sdid_fields,
    vnic_ip,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "sim"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def a3_pair() -> SimState:
    return build_state(
        [("prefill-0", "10.0.0.1", "A3", 16), ("decode-0", "10.0.0.2", "A3", 16)],
        latency_ms=0,
    )


# --------------------------------------------------------------------------- formulas


def test_sdid_reference_values() -> None:
    assert sdid(25, 0) == 104857600 == 0x06400000
    assert sdid(25, 1) == 104923137 == 0x06410001
    assert sdid(4, 0) == 16777216
    assert sdid_fields(104923137) == (25, 0, 1, 1)


def test_vnic_reference_values() -> None:
    assert vnic_ip(7, 0) == "192.7.2.199"
    assert vnic_ip(7, 1) == "192.7.3.198"
    expected = ["192.9.2.199", "192.9.3.198", "192.9.2.197", "192.9.3.196"]
    assert [vnic_ip(9, d) for d in range(4)] == expected
    assert vnic_ip(9, 15) == "192.9.3.184"
    assert vnic_ip(60, 0) == "192.168.2.199"  # driver: 168 when server > 47


def test_vnic_parse_round_trip() -> None:
    for server in range(48):
        for dev in range(16):
            assert parse_vnic_ip(vnic_ip(server, dev)) == (server, dev, 0)
            assert parse_vnic_ip(vnic_ip(server, dev, 3)) == (server, dev, 3)
            assert sdid_fields(sdid(server, dev)) == (server, dev // 2, dev % 2, dev)
    for bad in (
        "192.7.2.198",
        "10.7.2.199",
        "192.7.5.199",
        "192.7.4.198",
        "192.7.2",
        "a.b.c.d",
        "192.7.2.1999",
        "192.7.3.150",
        "192.7.1.199",
        "192.7.256.199",
    ):
        assert parse_vnic_ip(bad) is None, bad


def test_ranktable_worked_example_matches() -> None:
    st = a3_pair()
    p, d = st.nodes
    assert (p.server_index, d.server_index) == (25, 26)
    assert vnic_ip(p.server_index, 0) == "192.25.2.199"
    assert vnic_ip(p.server_index, 1) == "192.25.3.198"
    assert sdid(d.server_index, 0) == 109051904
    assert sdid(d.server_index, 1) == 109117441


# --------------------------------------------------------------------------- building


def test_build_state_is_deterministic_and_consistent() -> None:
    spec = [
        ("prefill-0", "172.22.0.218", "A3", 16),
        ("decode-0", "172.22.0.219", "A3", 16),
        ("a2-0", "172.22.0.220", "A2", 8),
    ]
    a, b = build_state(spec), build_state(spec)
    assert dumps_state(a) == dumps_state(b)
    assert a.latency_ms == 100
    net = ipaddress.ip_network("29.1.0.0/16")
    ips: list[str] = []
    for node in a.nodes:
        assert len(node.devices) == node.npus
        assert [d.id for d in node.devices] == list(range(node.npus))
        for d in node.devices:
            assert d.roce_ip is not None
            assert ipaddress.ip_address(d.roce_ip) in net
            assert (d.netmask, d.gateway, d.netdetect) == ("255.255.0.0", "29.1.0.1", "29.1.0.1")
            assert (d.link, d.net_health, d.tls_switch, d.health) == ("UP", "Success", 0, "OK")
            assert d.net_health in NET_HEALTH_VALUES
            ips.append(d.roce_ip)
    assert len(set(ips)) == len(ips) == 40
    a2 = a.node("a2-0")
    assert (a2.cards, a2.chips_per_card) == (8, 1)
    assert a2.devices[0].hbm_total_mb == 32768
    a3 = a.node("prefill-0")
    assert (a3.cards, a3.chips_per_card) == (8, 2)
    assert a3.card_chip(15) == (7, 1)
    assert a3.devices[0].hbm_total_mb == 65536
    assert a3.devices[1].power_w is None and a3.devices[0].power_w is not None


def test_lldp_ifnames_match_reference_sample() -> None:
    st = a3_pair()
    names = [d.lldp_ifname for d in st.nodes[0].devices[:8]]
    assert names == [
        "400GE1/1/5:1",
        "400GE1/1/5:2",
        "400GE1/2/5:1",
        "400GE1/2/5:2",
        "400GE1/3/5:1",
        "400GE1/3/5:2",
        "400GE1/4/5:1",
        "400GE1/4/5:2",
    ]
    all_names = [d.lldp_ifname for n in st.nodes for d in n.devices]
    assert len(set(all_names)) == len(all_names)


@pytest.mark.parametrize(
    "nodes",
    [
        [("a", "1.1.1.1", "A3", 16), ("a", "1.1.1.2", "A3", 16)],
        [("a", "1.1.1.1", "A4", 8)],
        [("a", "1.1.1.1", "A3", 15)],
        [("a", "1.1.1.1", "A2", 16)],
        [("a:b", "1.1.1.1", "A2", 8)],
        [(f"n{i}", "1.1.1.1", "A3", 16) for i in range(255)],
    ],
)
def test_build_state_rejects_bad_input(nodes: list[tuple[str, str, str, int]]) -> None:
    with pytest.raises(ValueError):
        build_state(nodes)


def test_lookups() -> None:
    st = a3_pair()
    node, dev = st.find_device_by_ip("29.1.2.103") or (None, None)
    assert node is not None and dev is not None
    assert (node.name, dev.id) == ("decode-0", 3)
    hit = st.find_device_by_ip("192.25.3.196")
    assert hit is not None and (hit[0].name, hit[1].id) == ("prefill-0", 3)
    assert st.find_device_by_ip("1.2.3.4") is None
    hit = st.find_device_by_sdid(104923137)
    assert hit is not None and (hit[0].name, hit[1].id) == ("prefill-0", 1)
    with pytest.raises(StateError, match="unknown node 'nope'"):
        st.node("nope")


# --------------------------------------------------------------------------- JSON


def test_json_round_trip(tmp_path: Path) -> None:
    st = a3_pair()
    apply_fault(st, "decode-0:3:link-down")
    apply_fault(st, "prefill-0:1:ping-loss=decode-0:1")
    st.nodes[0].devices[0].processes.append(ProcessState(582939, "", 19502))
    path = tmp_path / "sub" / "state.json"
    save_state(st, path)
    assert load_state(path) == st
    assert sorted(p.name for p in path.parent.iterdir()) == ["state.json"]  # no temp left
    data = json.loads(path.read_text())
    assert data["version"] == 1
    assert set(data) == {"version", "nodes", "latency_ms", "super_pod_size"}
    assert data["nodes"][1]["super_pod_id"] == 0
    assert data["nodes"][1]["faults"] == [
        {"node": "decode-0", "device": 3, "kind": "link-down", "value": None}
    ]
    # unknown keys are ignored, missing optional ones take defaults
    data["extra"] = 1
    data["nodes"][0]["devices"][0].pop("tls_alarm_days")
    again = loads_state(json.dumps(data))
    assert again.nodes[0].devices[0].tls_alarm_days == 60


def test_save_replaces_atomically(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    st = a3_pair()
    save_state(st, path)
    inode = path.stat().st_ino
    st.latency_ms = 7
    save_state(st, path)
    assert path.stat().st_ino != inode  # a new file was renamed over the old one
    assert load_state(path).latency_ms == 7


@pytest.mark.parametrize("text", ["", "[]", '{"nodes": 3}', '{"nodes": [{}]}', "{"])
def test_malformed_state(text: str) -> None:
    with pytest.raises(StateError):
        loads_state(text)


def test_missing_state_file(tmp_path: Path) -> None:
    with pytest.raises(StateError, match="cannot read"):
        load_state(tmp_path / "nope.json")


def test_modify_state(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    save_state(a3_pair(), path)
    with modify_state(path) as st:
        apply_fault(st, "decode-0:unreachable")
    assert load_state(path).node("decode-0").faults == [
        Fault("decode-0", None, "unreachable", None)
    ]


# --------------------------------------------------------------------------- hccn.conf


def test_hccn_conf_matches_reference() -> None:
    st = a3_pair()
    node = st.nodes[0]
    node.devices[0].roce_ip = "29.1.137.205"
    text = render_hccn_conf(node)
    lines = text.splitlines(keepends=True)
    assert "".join(lines[:6]) == fixture("hccn_conf.txt")
    assert len(lines) == 6 * 16
    assert text.endswith("tls_enable_15=0\n")


def test_hccn_conf_faults() -> None:
    st = a3_pair()
    apply_fault(st, "decode-0:2:no-ip")
    apply_fault(st, "decode-0:tls-mismatch")
    node = st.node("decode-0")
    text = render_hccn_conf(node)
    assert "_2=" not in text
    assert len(text.splitlines()) == 6 * 15
    assert "tls_enable_0=1\n" in text and "tls_enable_0=0" not in text
    assert "tls_enable_0=0\n" in render_hccn_conf(st.node("prefill-0"))
