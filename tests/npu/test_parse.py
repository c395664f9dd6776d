"""Parsers: samples of the tools' output, the simulator's real output, and fuzzing for totality."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pdtui.npu.model import ChipMapRow, IpInfo, NpuProcess, Raw
from pdtui.npu.parse import (
    NET_HEALTH_VALUES,
    NpuSmiDevice,
    decode_sdid,
    device_from_raw,
    logic_to_card_chip,
    node_from_raw,
    parse_gateway,
    parse_hccn_conf,
    parse_ip,
    parse_link,
    parse_lldp_ifname,
    parse_net_health,
    parse_netdetect,
    parse_npu_smi_info,
    parse_npu_smi_list,
    parse_npu_smi_map,
    parse_ping,
    parse_spod_info,
    parse_tls_switch,
    parse_vnic,
    ping_from_raw,
    vnic_ip_for,
)
from pdtui.sim.faults import apply_fault
from pdtui.sim.state import ProcessState, SimState, build_state, render_hccn_conf, sdid, vnic_ip
from pdtui.sim.tools import Out, run

FIX = Path(__file__).resolve().parent.parent / "fixtures"
SIM = FIX / "sim"
NPU = FIX / "npu"


def sim_fixture(name: str) -> str:
    return (SIM / name).read_text(encoding="utf-8")


def npu_fixture(name: str) -> str:
    return (NPU / name).read_text(encoding="utf-8")


def cluster() -> SimState:
    return build_state([("prefill-0", "10.0.0.1", "A3", 4), ("decode-0", "10.0.0.2", "A2", 2)])


def call(state: SimState, node: str, tool: str, *args: str) -> Out:
    return run(tool, list(args), state, state.node(node))


def out(o: Out) -> str:
    return "".join(o.out)


def err(o: Out) -> str:
    return "".join(o.err)


# ================================================================ samples of the tools' output


def test_link_up_and_down_samples() -> None:
    assert parse_link(sim_fixture("hccn_link_up.txt")) == "UP"
    assert parse_link(sim_fixture("hccn_link_down.txt")) == "DOWN"


def test_link_ignores_vnic_lines_and_other_values() -> None:
    assert parse_link(sim_fixture("hccn_vnic.txt")) is None
    assert parse_link("link status: FLAPPING\n") is None
    assert parse_link("link status: up\r\n") == "UP"
    assert parse_link("") is None


def test_net_health_sample_and_every_enum_value() -> None:
    assert parse_net_health(sim_fixture("hccn_net_health.txt")) == "Success"
    for v in NET_HEALTH_VALUES:
        assert parse_net_health(f"net health status: {v}\n") == v
    assert parse_net_health("net health status: receive   timeout") == "Receive timeout"
    assert parse_net_health("net health status: Bogus\n") is None
    assert parse_net_health("Get device health status failed!\n") is None


def test_netdetect_both_labels() -> None:
    assert parse_netdetect(sim_fixture("hccn_netdetect.txt")) == "11.12.165.1"
    assert parse_netdetect(npu_fixture("hccn_netdetect_old.txt")) == "11.12.165.1"
    assert parse_netdetect("netdetect addr: 11.12.165.1\n") == "11.12.165.1"
    assert parse_netdetect("netdetect addr: not-an-ip\n") is None


def test_gateway_sample() -> None:
    assert parse_gateway(sim_fixture("hccn_gateway.txt")) == ("11.12.165.1", "eth0")
    assert parse_gateway("default gateway:11.12.165.1\n") == ("11.12.165.1", None)
    assert parse_gateway(sim_fixture("hccn_err_no_gateway.txt")) is None


def test_ip_sample_has_no_space_after_colon() -> None:
    assert parse_ip(sim_fixture("hccn_ip.txt"), "", 0) == IpInfo(
        "11.12.165.80", "255.255.255.0", True
    )


def test_ip_not_preset_rc13_is_preset_false() -> None:
    assert parse_ip("", sim_fixture("hccn_err_no_ip.txt"), 13) == IpInfo(None, None, False)


def test_ip_other_failures_are_unknown() -> None:
    assert parse_ip("", sim_fixture("hccn_err_no_device.txt"), 1) == IpInfo(None, None, None)
    assert parse_ip("garbage", "", 0).preset is None


def test_vnic_sample() -> None:
    assert parse_vnic(sim_fixture("hccn_vnic.txt")) == ("UP", "192.168.2.199", "255.255.255.0")
    assert parse_vnic("") == (None, None, None)


def test_tls_sample() -> None:
    assert parse_tls_switch(sim_fixture("hccn_tls.txt")) == 0
    assert parse_tls_switch("dev_id:3, tls switch[1](0:disable, 1:enable)") == 1
    assert parse_tls_switch(sim_fixture("hccn_set_ok.txt")) is None


def test_spod_info_sample() -> None:
    assert parse_spod_info(sim_fixture("spod_info.txt")) == (104857600, 48, 0, 25)
    shmem = "\tSDID : 16777216\n\tSuper Pod Size : 384\n\tSuper Pod ID : 0\n\tServer Index : 4\n"
    assert parse_spod_info(shmem) == (16777216, 384, 0, 4)
    assert parse_spod_info("\tChassis ID : 3\n") == (None, None, None, None)


def test_sdid_decode_matches_known_sdids() -> None:
    assert decode_sdid(104857600) == (25, 0, 0, 0)
    assert decode_sdid(104923137) == (25, 0, 1, 1)
    assert decode_sdid(16777216)[0] == 4
    assert vnic_ip_for(7, 0) == "192.7.2.199"
    assert vnic_ip_for(7, 1) == "192.7.3.198"
    assert vnic_ip_for(60, 0) == "192.168.2.199"
    assert vnic_ip_for(25, 15) == "192.25.3.184"


def test_lldp_ifname_from_port_id_tlv() -> None:
    dump = (
        "Chassis ID TLV\n\tMAC: 3c:c7:86:00:00:01\nPort ID TLV\n\tIfname: 400GE1/1/5:1\n"
        "Time to Live TLV\n\t121\n"
    )
    assert parse_lldp_ifname(dump) == "400GE1/1/5:1"
    assert parse_lldp_ifname("") is None
    assert parse_lldp_ifname("\tIfname: 400GE2/1/5:2\n") == "400GE2/1/5:2"


def test_hccn_conf_sample() -> None:
    assert parse_hccn_conf(sim_fixture("hccn_conf.txt")) == {
        0: {
            "address": "29.1.137.205",
            "netmask": "255.255.0.0",
            "netdetect": "29.1.0.1",
            "gateway": "29.1.0.1",
            "send_arp_status": "1",
            "tls_enable": "0",
        }
    }


def test_hccn_conf_skips_route_lines_and_splits_by_device() -> None:
    text = (
        "# comment\naddress_3=29.1.1.103\nroute_address_29.2.0.0_netmask_255.255.0.0_3="
        "29.1.0.1\nnetmask_3=255.255.0.0\naddress_12=29.1.1.112\nbogus\nmtu=9000\n"
    )
    assert parse_hccn_conf(text) == {
        3: {"address": "29.1.1.103", "netmask": "255.255.0.0"},
        12: {"address": "29.1.1.112"},
    }


def test_npu_smi_info_a3_sample() -> None:
    info = parse_npu_smi_info(sim_fixture("npu_smi_info_a3.txt"))
    assert info.devices == [
        NpuSmiDevice(0, 0, 0, "Ascend910", "OK", 3402, 65536),
        NpuSmiDevice(0, 1, 1, "Ascend910", "OK", 3200, 65536),
    ]
    assert info.processes == {}


def test_npu_smi_info_a3_partial_rows() -> None:
    info = parse_npu_smi_info(sim_fixture("npu_smi_info_a3_partial.txt"))
    assert info.devices == [NpuSmiDevice(1, 0, 2, "Ascend910", "OK", None, None)]


def test_npu_smi_process_table_sample() -> None:
    text = sim_fixture("npu_smi_proc_header.txt") + sim_fixture("npu_smi_proc_row.txt")
    text += "| No running processes found in NPU 2 |\n"
    assert parse_npu_smi_info(text).processes == {(0, 0): [NpuProcess(582939, "", 19502)]}


def test_npu_smi_info_a2_layout_with_processes() -> None:
    info = parse_npu_smi_info(npu_fixture("npu_smi_info_a2_busy.txt"))
    assert info.devices == [
        NpuSmiDevice(0, 0, None, "910B4", "OK", 2852, 32768),
        NpuSmiDevice(1, 0, None, "910B4", "Warning", 2811, 32768),
    ]
    assert info.processes == {
        (1, 0): [NpuProcess(2339410, "python3", 28763), NpuProcess(2339411, "python3", 101)]
    }


def test_npu_smi_list_sample() -> None:
    assert parse_npu_smi_list(sim_fixture("npu_smi_info_l.txt")) == (8, 2)
    assert parse_npu_smi_list("") == (None, None)


def test_npu_smi_map_without_phy_column_skips_mcu() -> None:
    assert parse_npu_smi_map(npu_fixture("npu_smi_map_a2_no_phy.txt")) == [
        ChipMapRow(0, 0, 0, None, "910B4"),
        ChipMapRow(1, 0, 1, None, "910B4"),
    ]


def test_npu_smi_map_a3_rows_without_header() -> None:
    text = "0 0 0 0 Ascend910\n0 1 1 1 Ascend910\n0 2 - - Mcu\n7 1 15 15 Ascend910\n"
    assert parse_npu_smi_map(text) == [
        ChipMapRow(0, 0, 0, 0, "Ascend910"),
        ChipMapRow(0, 1, 1, 1, "Ascend910"),
        ChipMapRow(7, 1, 15, 15, "Ascend910"),
    ]


def test_logic_to_card_chip() -> None:
    assert logic_to_card_chip(15, []) == (7, 1)
    assert logic_to_card_chip(4, [ChipMapRow(3, 0, 4, None, "910B4")], 1) == (3, 0)
    assert logic_to_card_chip(5, None, chips_per_card=1) == (5, 0)


def test_roce_ping_sample() -> None:
    s = parse_ping(sim_fixture("hccn_ping.txt"), 0, "roce")
    assert (s.transmitted, s.received, s.loss_pct, s.ok, s.reason) == (3, 3, 0.0, True, None)
    assert s.avg_ms == pytest.approx((0.114 + 0.067 + 0.063) / 3)


def test_hccs_ping_sample() -> None:
    s = parse_ping(sim_fixture("hccs_ping.txt"), 0, "hccs")
    assert (s.transmitted, s.received, s.loss_pct, s.ok) == (3, 3, 0.0, True)
    assert s.avg_ms == pytest.approx(0.011122)


def test_hccs_ping_nonzero_l1_is_failure_even_with_full_summary() -> None:
    text = sim_fixture("hccs_ping.txt").replace(
        "result = 0x0\n\nThis pkt ping success!\nrecv seq 2",
        "result = 0x4\n\nThis pkt ping success!\nrecv seq 2",
    )
    s = parse_ping(text, 0, "hccs")
    assert not s.ok
    assert s.reason is not None and "L1 plane check result 0x4" in s.reason


def test_roce_ping_unreachable_and_timeout() -> None:
    text = (
        "device 0 PING 29.1.2.100\nDestination Host Unreachable seq=0\n"
        "1 packets transmitted, 0 received, 100.00% packet loss\n"
    )
    s = parse_ping(text, 1, "roce", "Cmd execute failed!\n")
    assert (s.transmitted, s.received, s.loss_pct, s.ok) == (1, 0, 100.0, False)
    assert s.reason is not None and s.reason.startswith("lost 1/1")
    assert "Destination Host Unreachable" in s.reason
    s2 = parse_ping("device 0 PING 1.2.3.4\nrecv time out seq=0\n", 1, "roce")
    assert not s2.ok and s2.transmitted is None
    assert s2.reason is not None and "recv time out" in s2.reason


def test_ping_nonzero_rc_is_never_ok() -> None:
    assert not parse_ping(sim_fixture("hccn_ping.txt"), 1, "roce").ok


# =========================================================================== simulator output


def test_sim_hccn_tool_outputs_parse() -> None:
    st_ = cluster()
    a3 = st_.node("prefill-0")
    o = call(st_, "prefill-0", "hccn_tool", "-i", "3", "-ip", "-g")
    assert parse_ip(out(o), err(o), o.rc) == IpInfo("29.1.1.103", "255.255.0.0", True)
    assert parse_link(out(call(st_, "prefill-0", "hccn_tool", "-i", "3", "-link", "-g"))) == "UP"
    assert (
        parse_net_health(out(call(st_, "prefill-0", "hccn_tool", "-i", "3", "-net_health", "-g")))
        == "Success"
    )
    assert parse_gateway(out(call(st_, "prefill-0", "hccn_tool", "-i", "3", "-gateway", "-g"))) == (
        "29.1.0.1",
        "eth3",
    )
    assert (
        parse_netdetect(out(call(st_, "prefill-0", "hccn_tool", "-i", "3", "-netdetect", "-g")))
        == "29.1.0.1"
    )
    assert parse_vnic(out(call(st_, "prefill-0", "hccn_tool", "-i", "3", "-vnic", "-g"))) == (
        "UP",
        vnic_ip(a3.server_index, 3),
        "255.255.255.0",
    )
    assert parse_tls_switch(out(call(st_, "prefill-0", "hccn_tool", "-i", "3", "-tls", "-g"))) == 0
    assert (
        parse_lldp_ifname(out(call(st_, "prefill-0", "hccn_tool", "-i", "3", "-lldp", "-g")))
        == "400GE1/2/5:2"
    )
    spod = parse_spod_info(
        out(call(st_, "prefill-0", "npu-smi", "info", "-t", "spod-info", "-i", "1", "-c", "1"))
    )
    assert spod == (sdid(a3.server_index, 3), 48, 0, a3.server_index)
    assert decode_sdid(spod[0] or 0) == (a3.server_index, 1, 1, 3)


def test_sim_npu_smi_a3_and_a2() -> None:
    st_ = cluster()
    st_.node("prefill-0").devices[3].processes.append(ProcessState(4242, "python", 1000))
    a3 = parse_npu_smi_info(out(call(st_, "prefill-0", "npu-smi", "info")))
    assert [(d.npu_id, d.chip_id, d.phy_id) for d in a3.devices] == [
        (0, 0, 0),
        (0, 1, 1),
        (1, 0, 2),
        (1, 1, 3),
    ]
    assert all(d.health == "OK" and d.hbm_total == 65536 for d in a3.devices)
    assert [d.hbm_used for d in a3.devices] == [
        d.hbm_used_mb for d in st_.node("prefill-0").devices
    ]
    assert a3.processes == {(1, 1): [NpuProcess(4242, "python", 1000)]}
    a2 = parse_npu_smi_info(out(call(st_, "decode-0", "npu-smi", "info")))
    assert [(d.npu_id, d.chip_id, d.phy_id, d.name) for d in a2.devices] == [
        (0, 0, None, "910B4"),
        (1, 0, None, "910B4"),
    ]
    assert parse_npu_smi_map(out(call(st_, "prefill-0", "npu-smi", "info", "-m"))) == [
        ChipMapRow(0, 0, 0, 0, "Ascend910"),
        ChipMapRow(0, 1, 1, 1, "Ascend910"),
        ChipMapRow(1, 0, 2, 2, "Ascend910"),
        ChipMapRow(1, 1, 3, 3, "Ascend910"),
    ]
    assert parse_npu_smi_list(out(call(st_, "prefill-0", "npu-smi", "info", "-l"))) == (2, 2)
    assert parse_npu_smi_list(out(call(st_, "decode-0", "npu-smi", "info", "-l"))) == (2, 1)


def test_sim_hccn_conf() -> None:
    st_ = cluster()
    conf = parse_hccn_conf(render_hccn_conf(st_.node("decode-0")))
    assert sorted(conf) == [0, 1]
    assert conf[1]["address"] == "29.1.2.101"
    apply_fault(st_, "decode-0:1:no-ip")
    assert sorted(parse_hccn_conf(render_hccn_conf(st_.node("decode-0")))) == [0]


def test_sim_no_ip_fault_gives_preset_false() -> None:
    st_ = cluster()
    apply_fault(st_, "decode-0:1:no-ip")
    o = call(st_, "decode-0", "hccn_tool", "-i", "1", "-ip", "-g")
    assert o.rc == 13
    assert parse_ip(out(o), err(o), o.rc).preset is False
    assert (
        parse_gateway(out(call(st_, "decode-0", "hccn_tool", "-i", "1", "-gateway", "-g"))) is None
    )
    assert (
        parse_netdetect(out(call(st_, "decode-0", "hccn_tool", "-i", "1", "-netdetect", "-g")))
        is None
    )


def test_sim_pings_ok_and_lost() -> None:
    st_ = cluster()
    o = call(st_, "decode-0", "hccn_tool", "-i", "0", "-ping", "-g", "address", "29.1.1.101")
    s = parse_ping(out(o), o.rc, "roce", err(o))
    assert s.ok and s.transmitted == 3 and s.avg_ms is not None and 0.05 <= s.avg_ms <= 0.15
    o = call(
        st_,
        "prefill-0",
        "hccn_tool",
        "-i",
        "0",
        "-hccs_ping",
        "-g",
        "address",
        vnic_ip(st_.node("prefill-0").server_index, 3),
    )
    s = parse_ping(out(o), o.rc, "hccs", err(o))
    assert s.ok and s.avg_ms is not None and 0.010 <= s.avg_ms <= 0.013
    apply_fault(st_, "prefill-0:0:ping-loss=prefill-0:3")
    o = call(
        st_,
        "prefill-0",
        "hccn_tool",
        "-i",
        "0",
        "-hccs_ping",
        "-g",
        "address",
        vnic_ip(st_.node("prefill-0").server_index, 3),
    )
    s = parse_ping(out(o), o.rc, "hccs", err(o))
    assert (s.ok, s.transmitted, s.received, s.loss_pct) == (False, 3, 0, 100.0)
    assert s.reason is not None and "lost 3/3" in s.reason and "L1 plane" in s.reason
    apply_fault(st_, "decode-0:0:ping-loss=prefill-0:1")
    o = call(st_, "decode-0", "hccn_tool", "-i", "0", "-ping", "-g", "address", "29.1.1.101")
    p = ping_from_raw(
        "decode-0",
        0,
        "prefill-0",
        1,
        "29.1.1.101",
        Raw("hccn_tool -i 0 -ping -g address 29.1.1.101", o.rc, out(o), err(o)),
    )
    assert not p.ok and p.reason is not None and "recv time out" in p.reason
    assert (p.transmitted, p.received) == (3, 0)


def test_sim_ping_from_device_without_ip() -> None:
    st_ = cluster()
    apply_fault(st_, "decode-0:0:no-ip")
    o = call(st_, "decode-0", "hccn_tool", "-i", "0", "-ping", "-g", "address", "29.1.1.101")
    s = parse_ping(out(o), o.rc, "roce", err(o))
    assert not s.ok and s.reason is not None and "no ip was preset" in s.reason


def test_device_and_node_from_raw_on_sim() -> None:
    st_ = cluster()
    node = st_.node("prefill-0")

    def raw(tool: str, *args: str) -> Raw:
        o = call(st_, "prefill-0", tool, *args)
        return Raw(" ".join([tool, *args]), o.rc, out(o), err(o))

    dev_raw = {}
    for d in range(4):
        checks = {
            k: raw("hccn_tool", "-i", str(d), f"-{k}", "-g")
            for k in ("lldp", "link", "net_health", "netdetect", "gateway", "ip", "vnic", "tls")
        }
        checks["spod"] = raw(
            "npu-smi", "info", "-t", "spod-info", "-i", str(d // 2), "-c", str(d % 2)
        )
        dev_raw[d] = checks
    node_raw = {
        "npu_smi_info": raw("npu-smi", "info"),
        "npu_smi_map": raw("npu-smi", "info", "-m"),
        "npu_smi_list": raw("npu-smi", "info", "-l"),
        "hccn_conf": Raw("cat /etc/hccn.conf", 0, render_hccn_conf(node), ""),
    }
    nh = node_from_raw("prefill-0", "A3", node_raw, dev_raw, taken_at=12.5)
    assert [d.id for d in nh.devices] == [0, 1, 2, 3]
    d3 = nh.devices[3]
    assert (d3.card, d3.chip, d3.phy_id) == (1, 1, 3)
    assert d3.conf["address"] == d3.ip == "29.1.1.103"
    assert d3.sdid == sdid(node.server_index, 3)
    assert d3.npu_health == "OK" and d3.hbm_total_mb == 65536
    assert d3.vnic_ip == vnic_ip(node.server_index, 3)
    assert d3.state == "unknown"  # not classified yet
    assert set(d3.raw) == {
        "lldp",
        "link",
        "net_health",
        "netdetect",
        "gateway",
        "ip",
        "vnic",
        "tls",
        "spod",
    }
    # to_dict is plain JSON data
    import json

    data = json.loads(json.dumps(nh.to_dict()))
    assert data["devices"][3]["raw"]["ip"]["rc"] == 0
    assert device_from_raw(9, {}).link is None


# =========================================================================== fuzzing

KEY_LINES = [
    "link status: UP",
    "link status: DOWN",
    "net health status: Success",
    "net health status: Init",
    "ipaddr:1.2.3.4",
    "netmask:255.0.0.0",
    "Get ipconf failed, because no ip was preset there!",
    "default gateway:1.2.3.1, Iface:eth0",
    "netdetect addr: 1.1.1.1",
    "netdetect address: 1.1.1.1",
    "vnic link status: UP",
    "vnic ipaddr: 192.1.2.199",
    "vnic netmask: 255.255.255.0",
    "Port ID TLV",
    "\tIfname: x",
    "dev_id:0, tls switch[1](0:disable, 1:enable)",
    "\tSDID : 5",
    "\tServer Index : 99999",
    "\tSuper Pod Size : 48",
    "address_0=1.2.3.4",
    "route_address_1_netmask_2_0=3",
    "tls_enable_99=1",
    "| 0     Ascend910           | OK            | 1 |",
    "| 0     0                   | 0000:9D:00.0  | 0  0 / 0  3402 / 65536 |",
    "| 0     | x |",
    "| 0 0 0 |",
    "| NPU     Chip   | Process id | Process name | mem |",
    "| 0       0                 | 582939        |                          | 19502 |",
    "| 1 2 | 3 |",
    "0 0 0 0 Ascend910",
    "0 2 - - Mcu",
    "0 0 x 1 y",
    "NPU ID  Chip ID  Chip Logic ID  Chip Phy-ID  Chip Name",
    "\tTotal Count : 8",
    "\tChip Count : 2",
    "device 0 PING 1.2.3.4",
    "recv seq=0,time=0.1ms",
    "This pkt ping success!",
    "recv seq 0, time = 1.5us, L1 plane check result = 0xff",
    "3 packets transmitted, 3 received, 0.00% packets loss",
    "average time 11.1us",
    "9999999999999999999999 packets transmitted, 99999999999 received",
    "²³ packet loss",
    "Destination Host Unreachable seq=0",
    "١٢٣",
    "\x00\xff\ufeff",
]

texts = st.one_of(
    st.text(),
    st.binary().map(lambda b: b.decode("latin-1")),
    st.binary().map(lambda b: b.decode("utf-8", errors="replace")),
    st.lists(
        st.one_of(
            st.sampled_from(KEY_LINES),
            st.text(max_size=30),
            st.tuples(st.sampled_from(KEY_LINES), st.text(max_size=10)).map(lambda t: t[0] + t[1]),
            st.tuples(st.sampled_from(KEY_LINES), st.text(max_size=10)).map(
                lambda t: t[0][: len(t[1])] + t[1]
            ),
        ),
        max_size=25,
    ).map(lambda xs: "\n".join(xs)),
)

ONE_ARG: list[Callable[[str], Any]] = [
    parse_link,
    parse_net_health,
    parse_lldp_ifname,
    parse_netdetect,
    parse_gateway,
    parse_vnic,
    parse_tls_switch,
    parse_spod_info,
    parse_hccn_conf,
    parse_npu_smi_info,
    parse_npu_smi_map,
    parse_npu_smi_list,
]


@pytest.mark.parametrize("parser", ONE_ARG, ids=lambda f: f.__name__)
@settings(max_examples=300, deadline=None)
@given(text=texts)
@pytest.mark.slow
def test_parser_is_total(parser: Callable[[str], Any], text: str) -> None:
    parser(text)


@settings(max_examples=300, deadline=None)
@given(stdout=texts, stderr=texts, rc=st.one_of(st.none(), st.integers(-300, 300)))
@pytest.mark.slow
def test_parse_ip_is_total(stdout: str, stderr: str, rc: int | None) -> None:
    info = parse_ip(stdout, stderr, rc)
    assert info.preset in (True, False, None)
    if info.preset:
        assert info.ip is not None


@settings(max_examples=300, deadline=None)
@given(
    text=texts,
    stderr=texts,
    rc=st.one_of(st.none(), st.integers(-300, 300)),
    kind=st.sampled_from(["roce", "hccs"]),
)
@pytest.mark.slow
def test_parse_ping_is_total(text: str, stderr: str, rc: int | None, kind: Any) -> None:
    s = parse_ping(text, rc, kind, stderr)
    assert (s.reason is None) == s.ok


@settings(max_examples=200, deadline=None)
@given(text=texts, n=st.integers(-10, 10**6))
@pytest.mark.slow
def test_assembly_is_total(text: str, n: int) -> None:
    r = Raw("x", 0, text, text)
    device_from_raw(
        0,
        {
            k: r
            for k in (
                "lldp",
                "link",
                "net_health",
                "netdetect",
                "gateway",
                "ip",
                "vnic",
                "tls",
                "spod",
            )
        },
    )
    node_from_raw(
        "n",
        "A3",
        {k: r for k in ("npu_smi_info", "npu_smi_map", "npu_smi_list", "hccn_conf")},
        {0: {"link": r}},
    )
    decode_sdid(n)
    logic_to_card_chip(n, [], 2)


@given(
    st.one_of(
        st.tuples(*[st.integers(0, 999)] * 4).map(lambda t: ".".join(map(str, t))),
        st.tuples(*[st.text("0123456789", min_size=1, max_size=4)] * 4).map(".".join),
        st.text("0123456789.:abcdef,", max_size=20),
    )
)
def test_address_fast_path_agrees_with_ipaddress(token: str) -> None:
    import ipaddress

    from pdtui.npu.parse import _addr

    t = token.strip().rstrip(",")
    try:
        ipaddress.ip_address(t)
        expected: str | None = t if t else None
    except ValueError:
        expected = None
    assert _addr(token) == expected
