"""Ranktable generation: byte-exact against hand-written goldens, clean on the simulator,
one clear line per reason it cannot be generated or read."""

from __future__ import annotations

import pytest

from pdtui import cluster as cl
from pdtui.npu.model import DeviceHealth, NodeHealth, Raw
from pdtui.ranktable import (
    RanktableError,
    dumps,
    generate,
    lint,
    loads,
)
from pdtui.sim.faults import apply_fault
from pdtui.sim.state import build_state

from .common import (
    FIXTURES,
    RUNBOOK,
    collect_all,
    example_cluster,
    example_live_a2,
    example_live_a3,
    example_toml,
    runbook_setup,
)

# =========================================================================== goldens


@pytest.mark.parametrize("soc", ["A2", "A3"])
def test_generate_matches_worked_example_byte_for_byte(soc: str) -> None:
    golden = (FIXTURES / f"example_{soc.lower()}.json").read_text(encoding="utf-8")
    live = example_live_a2() if soc == "A2" else example_live_a3()
    rt = generate(example_cluster(soc), live)
    assert dumps(rt) == golden
    assert not golden.endswith("\n")  # json.dump(indent=4) writes no trailing newline
    assert list(rt) == [
        "version",
        "server_count",
        "prefill_device_list",
        "decode_device_list",
        "status",
    ]
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
    assert [
        (e["server_id"], e["device_id"], e["cluster_id"]) for e in rt["decode_device_list"]
    ] == [("10.0.0.1", "2", "3"), ("10.0.0.2", "0", "4")]


# =========================================================================== simulator


def test_runbook_generate_then_lint_clean() -> None:
    cluster, _, live = runbook_setup()
    rt = generate(cluster, live)
    assert rt["server_count"] == "2"
    assert len(rt["prefill_device_list"]) == len(rt["decode_device_list"]) == 16
    first = rt["prefill_device_list"][0]
    assert first == {
        "server_id": "172.22.0.218",
        "device_id": "0",
        "device_ip": "192.25.2.199",
        "super_pod_id": "0",
        "super_device_id": "104857600",
        "cluster_id": "1",
    }
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
    assert set(rt["prefill_device_list"][0]) == {
        "server_id",
        "device_id",
        "device_ip",
        "cluster_id",
    }
    assert lint(rt, cluster, live) == []


# =========================================================================== errors


def test_error_no_ranktable_section() -> None:
    lines = example_toml("A2").splitlines()
    start = lines.index("[ranktable]")
    end = lines.index("[env]")
    toml = "\n".join(lines[:start] + lines[end:]).replace(
        'DISAGGREGATED_PREFILL_RANK_TABLE_PATH = "{ranktable.path}"', ""
    )
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
        "decode-0 device 0: no vNIC IP (hccn_tool -vnic -g: exit 127: hccn_tool: command not found)"
    )


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
    assert str(exc.value) == (
        "node-a device 1: no SDID (npu-smi info -t spod-info -i 0 -c 1: no SDID line in the output)"
    )


def test_error_counts_exceed_devices() -> None:
    # 2 nodes x 2 NPUs = 4, so the cluster file allows at most P + D = 4; with
    # local_device_ids = [0] only 2 devices end up in the table.
    toml = example_toml("A2").replace("local_device_ids = [0, 1]", "local_device_ids = [0]")
    cluster = cl.loads(toml, source="example.toml")
    with pytest.raises(
        RanktableError,
        match=r"^cluster file: ranktable: prefill_device_count"
        r" \+ decode_device_count = 4 exceeds the 2 devices",
    ):
        generate(cluster, example_live_a2())


def test_loads_errors() -> None:
    with pytest.raises(RanktableError, match=r"^x.json: not valid JSON: .*\(line 2, column"):
        loads('{\n  "version": }', source="x.json")
    with pytest.raises(RanktableError, match=r"^ranktable.json: expected a JSON object"):
        loads("[]")
    with pytest.raises(RanktableError, match=r"^ranktable.json: decode_device_list: missing"):
        loads('{"prefill_device_list": []}')
    with pytest.raises(
        RanktableError, match=r"^ranktable.json: prefill_device_list\[1\]: expected an object"
    ):
        loads('{"prefill_device_list": [{}, 3], "decode_device_list": []}')


def test_deeply_nested_json_is_a_clear_error() -> None:
    with pytest.raises(RanktableError, match=r"rt\.json: not a ranktable: nested too deeply"):
        loads("[" * 100_000 + "]" * 100_000, source="rt.json")


def test_an_integer_over_4300_digits_is_one_line_not_a_traceback() -> None:
    import pytest

    from pdtui.ranktable import RanktableError, loads

    with pytest.raises(RanktableError, match=r"x\.json: not a ranktable: a number over 4300"):
        loads('{"server_count": ' + "9" * 5000 + "}", source="x.json")
