"""A3 clusters larger than one super pod: addressing, spod-info, and a 64-node sweep."""

from __future__ import annotations

from pathlib import Path

import pytest

from pdtui.cluster import load
from pdtui.npu.health import sweep
from pdtui.npu.parse import decode_sdid, parse_spod_info, parse_vnic
from pdtui.sim.rig import Simulator, generated_spec
from pdtui.sim.state import SimState, build_state, parse_vnic_ip, sdid, vnic_ip
from pdtui.sim.tools import run
from pdtui.ssh.remote import pool_for


def a3_nodes(n: int) -> list[tuple[str, str, str, int]]:
    return [(f"n{i}", f"10.0.{i // 250}.{1 + i % 250}", "A3", 16) for i in range(n)]


def call(state: SimState, node: str, cmdline: str) -> tuple[str, str, int]:
    argv = cmdline.split()
    o = run(argv[0], argv[1:], state, state.node(node))
    return "".join(o.out), "".join(o.err), o.rc


def test_64_nodes_fill_two_super_pods_with_server_index_restarting_at_0() -> None:
    st = build_state(a3_nodes(64), latency_ms=0, server_index_base=0)
    pods = [(n.super_pod_id, n.server_index) for n in st.nodes]
    assert pods == [(0, s) for s in range(48)] + [(1, s) for s in range(16)]
    assert st.super_pod_ids() == [0, 1]
    assert st.super_pod_size == 48


def test_64_nodes_have_unique_vnic_ips_and_per_pod_unique_sdids() -> None:
    st = build_state(a3_nodes(64), latency_ms=0, server_index_base=0)
    vnics = [n.vnic_ip(d.id) for n in st.nodes for d in n.devices]
    assert len(vnics) == len(set(vnics)) == 1024
    per_pod = [(n.super_pod_id, n.sdid(d.id)) for n in st.nodes for d in n.devices]
    assert len(per_pod) == len(set(per_pod)) == 1024
    for n in st.nodes:
        for d in n.devices:
            # The driver's SDID formula from the node's in-pod Server Index.
            assert n.sdid(d.id) == sdid(n.server_index, d.id)
            assert decode_sdid(n.sdid(d.id)) == (n.server_index, d.id // 2, d.id % 2, d.id)
            assert parse_vnic_ip(n.vnic_ip(d.id)) == (n.server_index, d.id, n.super_pod_id)
    # Pod 0 is the driver's vNIC formula; pod 1 moves to third octets 4/5.
    assert st.nodes[0].vnic_ip(0) == "192.0.2.199" == vnic_ip(0, 0)
    assert st.nodes[47].vnic_ip(15) == "192.47.3.184"
    assert st.nodes[48].vnic_ip(0) == "192.0.4.199"
    assert st.nodes[48].vnic_ip(1) == "192.0.5.198"
    # The same SDID exists once in each pod.
    assert st.nodes[0].sdid(3) == st.nodes[48].sdid(3)


def test_default_base_keeps_the_reference_example_and_overflows_into_pod_1() -> None:
    st = build_state(a3_nodes(30), latency_ms=0)
    assert (st.nodes[0].super_pod_id, st.nodes[0].server_index) == (0, 25)
    assert st.nodes[0].vnic_ip(1) == "192.25.3.198" and st.nodes[0].sdid(0) == 104857600
    assert (st.nodes[22].super_pod_id, st.nodes[22].server_index) == (0, 47)
    assert [(n.super_pod_id, n.server_index) for n in st.nodes[23:]] == [(1, s) for s in range(7)]


@pytest.mark.parametrize(
    "kw",
    [
        {"super_pod_size": 49},
        {"server_index_base": 48},
        {"server_index_base": -1},
        {"super_pod_size": 0},
    ],
)
def test_bad_super_pod_layouts_are_refused(kw: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        build_state(a3_nodes(2), **kw)


def test_spod_info_and_vnic_show_each_nodes_super_pod() -> None:
    st = build_state(a3_nodes(64), latency_ms=0, server_index_base=0)
    out, err, rc = call(st, "n50", "npu-smi info -t spod-info -i 1 -c 1")
    assert (err, rc) == ("", 0)
    # SDID (2 << 22) | (1 << 18) | (1 << 16) | 3: server 2, card 1, die 1, device 3
    assert out == (
        "\tSDID                           : 8716291\n"
        "\tSuper Pod Size                 : 48\n"
        "\tSuper Pod ID                   : 1\n"
        "\tServer Index                   : 2\n"
    )
    assert parse_spod_info(out) == (sdid(2, 3), 48, 1, 2)
    out, _, rc = call(st, "n50", "hccn_tool -i 3 -vnic -g")
    assert rc == 0 and parse_vnic(out).ip == "192.2.5.196"
    out, _, _ = call(st, "n2", "npu-smi info -t spod-info -i 1 -c 1")
    assert parse_spod_info(out) == (sdid(2, 3), 48, 0, 2)


def test_hccs_ping_resolves_sdids_in_the_own_pod_and_addresses_anywhere() -> None:
    st = build_state(a3_nodes(64), latency_ms=0, server_index_base=0)
    # SDID of server 2 device 3: from pod 1 it is n50, from pod 0 it is n2.
    out, _, rc = call(st, "n49", f"hccn_tool -i 0 -hccs_ping -g sdid {sdid(2, 3)}")
    assert rc == 0 and out.startswith("device 0 PING 192.2.5.196\n")
    out, _, rc = call(st, "n1", f"hccn_tool -i 0 -hccs_ping -g sdid {sdid(2, 3)}")
    assert rc == 0 and out.startswith("device 0 PING 192.2.3.196\n")
    out, _, rc = call(st, "n1", "hccn_tool -i 0 -hccs_ping -g address 192.2.5.196")
    assert rc == 0 and "3 received" in out
    hit = st.find_device_by_ip("192.2.5.196")
    assert hit is not None and (hit[0].name, hit[1].id) == ("n50", 3)
    hit = st.find_device_by_sdid(sdid(2, 3), super_pod_id=1)
    assert hit is not None and (hit[0].name, hit[1].id) == ("n50", 3)


@pytest.mark.slow
async def test_64_node_inproc_simulator_sweeps_all_1024_devices_ok(tmp_path: Path) -> None:
    sim = Simulator(
        generated_spec(64, "A3", 16),
        tmp_path / "c64.toml",
        latency_ms=0,
        address_prefix="127.0.45",
        port=0,
        inproc=True,
    )
    async with sim:
        cluster = load(sim.cluster_file)
        async with pool_for(cluster) as pool:
            nodes = await sweep(pool, cluster)
    devices = [(n, d) for n in nodes for d in n.devices]
    assert len(devices) == 1024
    bad = [(n.name, d.id, d.state, d.reasons) for n, d in devices if d.state != "ok"]
    assert bad == []
    assert [n.devices[0].super_pod_id for n in nodes] == [0] * 48 + [1] * 16
    assert [n.devices[0].server_index for n in nodes] == list(range(48)) + list(range(16))
    vnics = {d.vnic_ip for _, d in devices}
    assert len(vnics) == 1024
    assert len({(d.super_pod_id, d.sdid) for _, d in devices}) == 1024
