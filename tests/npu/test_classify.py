"""Classification: each rule on hand-made devices, and every tool-affecting simulator fault
through the whole parse + classify path landing on exactly the right device."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from simdata import collect

from pdtui.npu.classify import HCCS_OK_REASON, classify_cluster, classify_device, worst
from pdtui.npu.model import (
    STATE_ORDER,
    DeviceHealth,
    NodeHealth,
    NpuProcess,
    PingResult,
    Raw,
)
from pdtui.npu.parse import node_from_raw, ping_from_raw
from pdtui.npu.probe import DEVICE_CHECKS
from pdtui.sim.faults import apply_fault
from pdtui.sim.state import SimState, build_state, vnic_ip
from pdtui.sim.tools import run

# =========================================================================== sim helpers


def all_pings(state: SimState) -> list[PingResult]:
    """RoCE pings between every pair of devices with a baseline RoCE IP (A2 and A3), and
    hccs pings between every pair of A3 devices."""
    out: list[PingResult] = []
    for sn in state.nodes:
        for sd in sn.devices:
            for tn in state.nodes:
                for td in tn.devices:
                    if (sn.name, sd.id) == (tn.name, td.id):
                        continue
                    targets = []
                    if td.roce_ip is not None:
                        targets.append(("roce", "-ping", td.roce_ip))
                    if sn.soc == tn.soc == "A3":
                        targets.append(("hccs", "-hccs_ping", vnic_ip(tn.server_index, td.id)))
                    for kind, flag, addr in targets:
                        args = ["-i", str(sd.id), flag, "-g", "address", addr]
                        o = run("hccn_tool", args, state, sn)
                        r = Raw("hccn_tool " + " ".join(args), o.rc, "".join(o.out), "".join(o.err))
                        out.append(
                            ping_from_raw(
                                sn.name,
                                sd.id,
                                tn.name,
                                td.id,
                                addr,
                                r,
                                "hccs" if kind == "hccs" else "roce",
                            )
                        )
    return out


def classify_sim(state: SimState, pings: bool = False) -> dict[tuple[str, int], DeviceHealth]:
    nodes = [collect(state, n.name) for n in state.nodes]
    result = classify_cluster(nodes, all_pings(state) if pings else None)
    return {(n.name, d.id): d for n in result for d in n.devices}


def a2_pair() -> SimState:
    return build_state([("prefill-0", "10.0.0.1", "A2", 4), ("decode-0", "10.0.0.2", "A2", 4)])


def a3_pair() -> SimState:
    return build_state([("prefill-0", "10.0.0.1", "A3", 4), ("decode-0", "10.0.0.2", "A3", 4)])


def only_bad(devs: dict[tuple[str, int], DeviceHealth]) -> dict[tuple[str, int], str]:
    return {k: d.state for k, d in devs.items() if d.state != "ok"}


# =========================================================================== simulator faults


@pytest.mark.parametrize("make", [a2_pair, a3_pair], ids=["A2", "A3"])
def test_healthy_sim_cluster_is_all_ok(make: object) -> None:
    assert callable(make)
    devs = classify_sim(make(), pings=True)
    assert {k: (d.state, d.reasons) for k, d in devs.items() if d.state != "ok"} == {}


@pytest.mark.parametrize("make", [a2_pair, a3_pair], ids=["A2", "A3"])
def test_link_down_fault_fails_exactly_that_device(make: object) -> None:
    assert callable(make)
    state = make()
    apply_fault(state, "decode-0:3:link-down")
    devs = classify_sim(state)
    assert only_bad(devs) == {("decode-0", 3): "fail"}
    reasons = devs[("decode-0", 3)].reasons
    assert "link DOWN" in reasons
    assert "net health 'Fault' (expected Success)" in reasons


@pytest.mark.parametrize("value", ["Receive timeout", "Init", "Unknown", "Detect ip set"])
def test_net_health_fault_fails_exactly_that_device(value: str) -> None:
    state = a2_pair()
    apply_fault(state, f"prefill-0:2:net-health={value}")
    devs = classify_sim(state)
    assert only_bad(devs) == {("prefill-0", 2): "fail"}
    assert devs[("prefill-0", 2)].reasons == [f"net health '{value}' (expected Success)"]


def test_no_ip_fault_on_a2_fails_with_reason() -> None:
    state = a2_pair()
    apply_fault(state, "decode-0:1:no-ip")
    devs = classify_sim(state)
    assert only_bad(devs) == {("decode-0", 1): "fail"}
    reasons = devs[("decode-0", 1)].reasons
    assert "no RoCE IP preset (hccn_tool -ip -g rc 13)" in reasons
    assert "net health 'Init' (expected Success)" in reasons


def test_no_ip_fault_on_a3_is_hccs_only_warn_and_hccs_ping_ok() -> None:
    state = a3_pair()
    apply_fault(state, "decode-0:1:no-ip")
    devs = classify_sim(state)
    assert only_bad(devs) == {("decode-0", 1): "warn"}
    (reason,) = devs[("decode-0", 1)].reasons
    assert reason.startswith("RoCE plane not configured (net health 'Init', no RoCE IP preset)")
    assert "hccs_ping is the ground truth" in reason
    devs = classify_sim(state, pings=True)
    assert only_bad(devs) == {("decode-0", 1): "warn"}
    assert devs[("decode-0", 1)].reasons == [HCCS_OK_REASON]


def test_a3_link_down_without_ip_is_hccs_only_warn() -> None:
    state = a3_pair()
    apply_fault(state, "prefill-0:2:link-down")
    apply_fault(state, "prefill-0:2:no-ip")
    devs = classify_sim(state)
    assert only_bad(devs) == {("prefill-0", 2): "warn"}
    assert (
        devs[("prefill-0", 2)]
        .reasons[0]
        .startswith("RoCE plane not configured (link DOWN, net health 'Fault', no RoCE IP preset)")
    )


def test_a3_link_down_with_ip_is_still_fail() -> None:
    state = a3_pair()
    apply_fault(state, "prefill-0:2:link-down")
    devs = classify_sim(state)
    assert only_bad(devs) == {("prefill-0", 2): "fail"}
    assert "link DOWN" in devs[("prefill-0", 2)].reasons


FIX = "set one TLS switch value on every device of every node"


@pytest.mark.parametrize("make", [a2_pair, a3_pair], ids=["A2", "A3"])
def test_tls_mismatch_between_two_nodes_is_a_disagreement_on_both_sides(make: object) -> None:
    assert callable(make)
    state = make()
    apply_fault(state, "decode-0:tls-mismatch")
    devs = classify_sim(state)
    # One node against one: no majority, so neither side is blamed alone.
    assert only_bad(devs) == {(n, i): "fail" for n in ("prefill-0", "decode-0") for i in range(4)}
    assert devs[("decode-0", 0)].reasons == [
        f"TLS switch 1 here, 0 on prefill-0 (the nodes disagree): {FIX}"
    ]
    assert devs[("prefill-0", 3)].reasons == [
        f"TLS switch 0 here, 1 on decode-0 (the nodes disagree): {FIX}"
    ]


def test_tls_mismatch_the_value_more_nodes_have_wins() -> None:
    state = build_state(
        [("p0", "10.0.0.1", "A2", 2), ("p1", "10.0.0.2", "A2", 2), ("d0", "10.0.0.3", "A2", 2)]
    )
    apply_fault(state, "p0:tls-mismatch")
    apply_fault(state, "p1:tls-mismatch")
    devs = classify_sim(state)
    assert only_bad(devs) == {("d0", 0): "fail", ("d0", 1): "fail"}
    assert devs[("d0", 0)].reasons == [
        f"TLS switch 0 here, 1 on p0, p1 (the value most nodes have): {FIX}"
    ]


def test_tls_one_device_that_differs_from_its_node_fails_alone() -> None:
    state = build_state([("p0", "10.0.0.1", "A2", 4), ("d0", "10.0.0.3", "A2", 4)])
    healths = [collect(state, n.name) for n in state.nodes]
    healths[0].devices[2].tls_switch = 1
    devs = {(n.name, d.id): d for n in classify_cluster(healths) for d in n.devices}
    assert only_bad(devs) == {("p0", 2): "fail"}
    assert devs[("p0", 2)].reasons[0] == (
        f"TLS switch 1 differs from the other devices of p0 (0): {FIX}"
    )


@pytest.mark.parametrize("make", [a2_pair, a3_pair], ids=["A2", "A3"])
def test_ping_loss_fault_fails_both_ends_only(make: object) -> None:
    assert callable(make)
    state = make()
    apply_fault(state, "prefill-0:1:ping-loss=decode-0:2")
    devs = classify_sim(state, pings=True)
    assert only_bad(devs) == {("prefill-0", 1): "fail", ("decode-0", 2): "fail"}
    src = devs[("prefill-0", 1)].reasons
    assert "ping to decode-0:2 29.1.2.102 lost 3/3" in src
    assert "ping from decode-0:2 29.1.1.101 lost 3/3" in src
    dst = devs[("decode-0", 2)].reasons
    assert "ping from prefill-0:1 29.1.2.102 lost 3/3" in dst
    if state.nodes[0].soc == "A3":
        v = vnic_ip(state.node("decode-0").server_index, 2)
        assert f"hccs_ping to decode-0:2 {v} lost 3/3" in src


def test_unreachable_node_devices_unknown_with_error() -> None:
    state = a2_pair()
    nodes = [
        collect(state, "prefill-0"),
        NodeHealth(
            name="decode-0",
            soc="A2",
            reachable=False,
            error="ssh: timed out",
            devices=[DeviceHealth(id=0), DeviceHealth(id=1)],
        ),
    ]
    out = classify_cluster(nodes)
    assert out[0].state == "ok"
    assert out[1].state == "unknown"
    assert [d.state for d in out[1].devices] == ["unknown", "unknown"]
    assert out[1].devices[0].reasons == ["no data: node unreachable (ssh: timed out)"]
    assert out[1].reasons == ["node unreachable (ssh: timed out)"]


def test_unreachable_fault_makes_pings_to_it_fail() -> None:
    state = a2_pair()
    apply_fault(state, "decode-0:unreachable")
    out = classify_cluster([collect(state, n.name) for n in state.nodes], all_pings(state))
    assert out[1].state == "unknown" and not out[1].devices
    assert out[0].state == "fail"
    assert any(
        r.startswith("ping to decode-0:0 29.1.2.100 lost 3/3") for r in out[0].devices[0].reasons
    )


def test_missing_hccn_tool_makes_devices_unknown() -> None:
    state = a2_pair()
    apply_fault(state, "decode-0:tool-missing=hccn_tool")
    out = classify_cluster([collect(state, n.name) for n in state.nodes])
    dec = out[1]
    assert dec.state == "unknown"
    assert "hccn_tool not found on decode-0" in dec.reasons
    assert all(d.state == "unknown" for d in dec.devices)
    assert (
        "no data: link (hccn_tool rc 127: hccn_tool: command not found)" in dec.devices[0].reasons
    )
    assert out[0].state == "ok"


def test_missing_npu_smi_makes_health_unknown() -> None:
    state = a3_pair()
    apply_fault(state, "prefill-0:tool-missing=npu-smi")
    out = classify_cluster([collect(state, n.name) for n in state.nodes])
    d0 = out[0].devices[0]
    assert d0.state == "unknown"  # a missing tool gives no data: no verdict on the device
    assert any(r.startswith("no data: SDID (npu-smi rc 127") for r in d0.reasons)
    assert "no data: npu-smi health (npu-smi rc 127: npu-smi: command not found)" in d0.reasons


def test_classified_node_is_json_ready() -> None:
    state = a3_pair()
    apply_fault(state, "decode-0:3:link-down")
    out = classify_cluster([collect(state, n.name) for n in state.nodes])
    data = json.loads(json.dumps([n.to_dict() for n in out]))
    assert data[1]["devices"][3]["state"] == "fail"
    again = NodeHealth.from_dict(data[1])
    assert again == out[1]


def test_classify_cluster_is_idempotent_and_pure() -> None:
    state = a2_pair()
    apply_fault(state, "decode-0:3:link-down")
    nodes = [collect(state, n.name) for n in state.nodes]
    once = classify_cluster(nodes)
    twice = classify_cluster(once)
    assert once == twice
    assert nodes[1].devices[3].state == "unknown"  # input untouched


# =========================================================================== unit rules


def good(dev_id: int = 0, soc: str = "A2", **kw: object) -> DeviceHealth:
    d = DeviceHealth(
        id=dev_id,
        link="UP",
        net_health="Success",
        ip=f"29.1.1.{100 + dev_id}",
        netmask="255.255.0.0",
        ip_preset=True,
        tls_switch=0,
        npu_health="OK",
        hbm_used_mb=3000,
        hbm_total_mb=65536,
        raw={k: Raw(f"hccn_tool -i {dev_id} -{k} -g", 0, "x", "") for k in DEVICE_CHECKS},
    )
    if soc == "A3":
        d.vnic_link, d.vnic_ip, d.vnic_netmask = "UP", vnic_ip(25, dev_id), "255.255.255.0"
        d.sdid = (25 << 22) | ((dev_id // 2) << 18) | ((dev_id % 2) << 16) | dev_id
        d.super_pod_id, d.server_index, d.super_pod_size = 0, 25, 48
        d.raw["vnic"] = Raw("hccn_tool -vnic", 0, "x", "")
        d.raw["spod"] = Raw("npu-smi info -t spod-info", 0, "x", "")
    for k, v in kw.items():
        setattr(d, k, v)
    return d


def test_worst_order() -> None:
    assert STATE_ORDER == ("ok", "warn", "unknown", "fail")
    assert worst([]) == "ok"
    assert worst(["ok", "warn"]) == "warn"
    assert worst(["warn", "unknown"]) == "unknown"
    assert worst(["unknown", "fail", "ok"]) == "fail"
    assert worst(["bogus"]) == "unknown"


@given(st.lists(st.sampled_from(STATE_ORDER)))
@pytest.mark.slow
def test_worst_is_max_by_order(states: list[str]) -> None:
    expected = max(states, key=STATE_ORDER.index) if states else "ok"
    assert worst(states) == expected


@pytest.mark.parametrize("soc", ["A2", "A3"])
def test_good_device_is_ok(soc: str) -> None:
    d = classify_device(good(0, soc), soc)
    assert (d.state, d.reasons) == ("ok", [])


def test_missing_link_is_unknown_not_ok() -> None:
    d = good(link=None)
    d.raw["link"] = Raw("hccn_tool -i 0 -link -g", 1, "", "Cmd execute failed!\n")
    out = classify_device(d, "A2")
    assert out.state == "unknown"
    assert out.reasons == ["no data: link (hccn_tool rc 1: Cmd execute failed!)"]


def test_not_collected_and_unparsable_are_unknown() -> None:
    d = good(net_health=None, tls_switch=None)
    del d.raw["net_health"]
    d.raw["tls"] = Raw("hccn_tool -i 0 -tls -g", 0, "weird output", "")
    out = classify_device(d, "A2")
    assert out.state == "unknown"
    assert out.reasons == [
        "no data: net health (not collected)",
        "no data: TLS switch (unparsable output: 'weird output')",
    ]
    assert out.raw["tls"].stdout == "weird output"


def test_timeout_without_rc_is_unknown() -> None:
    d = good(link=None)
    d.raw["link"] = Raw("hccn_tool -i 0 -link -g", None, "", "The cmd line execute timeout!")
    assert classify_device(d, "A2").reasons == [
        "no data: link (hccn_tool gave no exit status: The cmd line execute timeout!)"
    ]


def test_link_down_is_fail() -> None:
    out = classify_device(good(link="DOWN"), "A2")
    assert (out.state, out.reasons) == ("fail", ["link DOWN"])


def test_net_health_not_success_is_fail() -> None:
    out = classify_device(good(net_health="Receive timeout"), "A2")
    assert (out.state, out.reasons) == ("fail", ["net health 'Receive timeout' (expected Success)"])


def test_a3_hccs_only_needs_vnic_up() -> None:
    d = good(
        0,
        "A3",
        link="DOWN",
        net_health="Init",
        ip=None,
        netmask=None,
        ip_preset=False,
        vnic_link="DOWN",
    )
    out = classify_device(d, "A3")
    assert out.state == "fail"
    assert "link DOWN" in out.reasons and "vNIC link DOWN" in out.reasons
    assert "no RoCE IP preset (hccn_tool -ip -g rc ?)" not in out.reasons


def test_a3_hccs_only_other_net_health_still_fails() -> None:
    d = good(0, "A3", net_health="Receive timeout", ip=None, ip_preset=False)
    out = classify_device(d, "A3")
    assert out.state == "fail"
    assert "net health 'Receive timeout' (expected Success)" in out.reasons


def test_hccs_only_warn_survives_failed_roce_ping_and_becomes_ok_note_on_hccs_ping() -> None:
    d = good(0, "A3", link="DOWN", net_health="Init", ip=None, netmask=None, ip_preset=False)
    peer = good(1, "A3")
    node = NodeHealth(name="n", soc="A3", reachable=True, devices=[d, peer])
    bad = PingResult("n", 1, "n", 0, "?", 3, 0, 100.0, None, False, "lost 3/3", Raw("", 1, "", ""))
    ok = PingResult(
        "n", 1, "n", 0, vnic_ip(25, 0), 3, 3, 0.0, 0.011, True, None, Raw("", 0, "", ""), "hccs"
    )
    (out,) = classify_cluster([node], [bad])
    assert out.devices[0].state == "warn" and out.devices[1].state == "ok"
    (out,) = classify_cluster([node], [bad, ok])
    assert out.devices[0].reasons == [HCCS_OK_REASON]
    assert out.devices[0].state == "warn"


def test_a3_missing_vnic_ip_or_sdid_is_fail() -> None:
    d = good(0, "A3", vnic_ip=None, sdid=None)
    d.raw["vnic"] = Raw("hccn_tool -i 0 -vnic -g", 1, "", "Cmd execute failed!")
    d.raw["spod"] = Raw(
        "npu-smi info -t spod-info -i 0 -c 0",
        1,
        "",
        "This device does not support querying spod-info.",
    )
    out = classify_device(d, "A3")
    assert out.state == "fail"
    assert out.reasons[0].startswith(
        "A3 links need the vNIC IP and SDID; missing vNIC IP "
        "(hccn_tool rc 1: Cmd execute failed!), SDID (npu-smi rc 1"
    )


def test_a3_sdid_decode_mismatch_is_warn() -> None:
    out = classify_device(good(3, "A3", sdid=104857600), "A3")
    assert out.state == "warn"
    assert out.reasons == [
        "SDID 104857600 decodes to server 25 device 0, expected server 25 device 3"
    ]


def test_hccn_conf_address_differs_is_warn() -> None:
    d = good(1, conf={"address": "29.1.1.100"})
    out = classify_device(d, "A2")
    assert (out.state, out.reasons) == (
        "warn",
        ["hccn.conf address 29.1.1.100 differs from hccn_tool -ip 29.1.1.101"],
    )


def test_hccn_conf_missing_address_and_unreadable_file() -> None:
    conf = {"hccn_conf": Raw("cat /etc/hccn.conf", 0, "", "")}
    out = classify_device(good(2), "A2", conf)
    assert out.reasons == ["hccn.conf has no address_2 (hccn_tool -ip 29.1.1.102)"]
    conf = {
        "hccn_conf": Raw(
            "cat /etc/hccn.conf", 1, "", "cat: /etc/hccn.conf: No such file or directory"
        )
    }
    out = classify_device(good(2), "A2", conf)
    assert out.state == "warn"
    assert out.reasons == [
        "/etc/hccn.conf unreadable (cat rc 1: cat: /etc/hccn.conf: No such file or directory)"
    ]


def test_hccn_conf_tls_differs_is_warn() -> None:
    out = classify_device(good(0, conf={"address": "29.1.1.100", "tls_enable": "1"}), "A2")
    assert out.reasons == ["hccn.conf tls_enable 1 differs from hccn_tool -tls switch 0"]


@pytest.mark.parametrize(
    ("health", "state"),
    [("Warning", "warn"), ("Alarm", "fail"), ("Critical", "fail"), ("OK", "ok")],
)
def test_npu_smi_health(health: str, state: str) -> None:
    out = classify_device(good(npu_health=health), "A2")
    assert out.state == state
    if state != "ok":
        assert out.reasons == [f"npu-smi health {health} (expected OK)"]


def test_npu_smi_health_missing_is_unknown() -> None:
    smi = {"npu_smi_info": Raw("npu-smi info", 0, "| table |", "")}
    out = classify_device(good(npu_health=None), "A2", smi)
    assert out.reasons == ["no data: npu-smi health (device not in npu-smi info)"]


def test_busy_device_is_warn() -> None:
    procs = [NpuProcess(582939, "python", 19502), NpuProcess(582940, "", 100)]
    out = classify_device(good(processes=procs), "A2")
    assert (out.state, out.reasons) == ("warn", ["busy: 2 processes, pid 582939, 582940"])


def test_reasons_sorted_most_severe_first() -> None:
    out = classify_device(good(processes=[NpuProcess(1, "x", 1)], link="DOWN"), "A2")
    assert out.reasons == ["link DOWN", "busy: 1 process, pid 1"]


def test_duplicate_sdid_and_vnic_ip_in_super_pod_fail() -> None:
    a = NodeHealth(name="a", soc="A3", reachable=True, devices=[good(0, "A3")])
    b = NodeHealth(name="b", soc="A3", reachable=True, devices=[good(0, "A3", ip="29.1.2.100")])
    out = classify_cluster([a, b])
    for n in out:
        d = n.devices[0]
        assert d.state == "fail"
        assert "SDID 104857600 duplicated in super pod 0: a:0, b:0" in d.reasons
        assert "vNIC IP 192.25.2.199 duplicated in super pod 0: a:0, b:0" in d.reasons


def test_same_sdid_in_different_super_pods_is_fine() -> None:
    a = NodeHealth(name="a", soc="A3", reachable=True, devices=[good(0, "A3")])
    b = NodeHealth(
        name="b", soc="A3", reachable=True, devices=[good(0, "A3", ip="29.1.2.100", super_pod_id=1)]
    )
    assert [n.state for n in classify_cluster([a, b])] == ["ok", "ok"]


def test_duplicate_roce_ip_fails() -> None:
    a = NodeHealth(name="a", soc="A2", reachable=True, devices=[good(0)])
    b = NodeHealth(name="b", soc="A2", reachable=True, devices=[good(0)])
    out = classify_cluster([a, b])
    assert out[0].devices[0].reasons == ["RoCE IP 29.1.1.100 duplicated: a:0, b:0"]


def test_failed_ping_without_summary_names_reason() -> None:
    a = NodeHealth(name="a", soc="A2", reachable=True, devices=[good(0)])
    b = NodeHealth(name="b", soc="A2", reachable=True, devices=[good(0, ip="29.1.2.100")])
    p = PingResult(
        "a",
        0,
        "b",
        0,
        "29.1.2.100",
        None,
        None,
        None,
        None,
        False,
        "no ping summary in output (Cmd execute failed) rc 1",
        Raw("", 1, "", ""),
    )
    out = classify_cluster([a, b], [p])
    assert out[0].devices[0].reasons == [
        "ping to b:0 29.1.2.100 failed: no ping summary in output (Cmd execute failed) rc 1"
    ]
    assert out[1].devices[0].reasons == [
        "ping from a:0 29.1.2.100 failed: no ping summary in output (Cmd execute failed) rc 1"
    ]


def test_reachable_node_without_devices_is_unknown() -> None:
    (n,) = classify_cluster([NodeHealth(name="a", soc="A2", reachable=True)])
    assert (n.state, n.reasons) == ("unknown", ["no NPU devices found"])


_RAW_TEXT = st.one_of(
    st.text(max_size=200),
    st.sampled_from(
        [
            "link status: DOWN\n",
            "net health status: Init\n",
            "ipaddr:1.1.1.1\n",
            "Get ipconf failed, because no ip was preset there!\n",
            "vnic link status: UP\nvnic ipaddr: 192.25.2.199\n",
            "\tSDID : 104857600\n\tServer Index : 25\n",
            "tls switch[1]",
            "address_0=1.1.1.2\ntls_enable_0=1\n",
        ]
    ),
)


@given(
    texts=st.lists(_RAW_TEXT, min_size=13, max_size=13),
    rcs=st.lists(st.one_of(st.none(), st.integers(-1, 200)), min_size=13, max_size=13),
    soc=st.sampled_from(["A2", "A3", "??"]),
    ok=st.booleans(),
)
@pytest.mark.slow
def test_classification_is_total_on_arbitrary_evidence(
    texts: list[str], rcs: list[int | None], soc: str, ok: bool
) -> None:
    keys = [*DEVICE_CHECKS, "vnic", "spod"]
    dev = {k: Raw(k, rcs[i], texts[i], texts[-1 - i]) for i, k in enumerate(keys)}
    node_keys = ("npu_smi_info", "npu_smi_map", "npu_smi_list", "hccn_conf")
    node_raw = {k: Raw(k, rcs[9 + i], texts[9 + i], "") for i, k in enumerate(node_keys)}
    n = node_from_raw("n", soc, node_raw, {0: dev, 1: dev})
    p = ping_from_raw(
        "n", 0, "n", 1, "x", Raw("p", rcs[0], texts[0], texts[1]), "hccs" if ok else "roce"
    )
    out = classify_cluster([n, n], [p])
    for node in out:
        for d in node.devices:
            assert d.state in STATE_ORDER
            assert d.state == "ok" or d.reasons


def test_a_ping_whose_tool_hung_names_the_tool_and_node_on_both_ends() -> None:
    state = a3_pair()
    nodes = [collect(state, n.name) for n in state.nodes]
    hung = ping_from_raw(
        "prefill-0",
        1,
        "decode-0",
        1,
        "192.26.3.198",
        Raw("hccn_tool -i 1 -hccs_ping -g address 192.26.3.198", 124, "", ""),
        "hccs",
    )
    out = {(n.name, d.id): d for n in classify_cluster(nodes, [hung]) for d in n.devices}
    why = "hccs_ping to decode-0:1 192.26.3.198 failed: hccn_tool timed out on prefill-0"
    assert out[("prefill-0", 1)].reasons[0] == why
    assert out[("decode-0", 1)].reasons[0] == (
        "hccs_ping from prefill-0:1 192.26.3.198 failed: hccn_tool timed out on prefill-0"
    )
