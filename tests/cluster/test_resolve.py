"""Resolving a cluster file: defaults, placeholders, data-parallel ranks, and one precise line
per semantic problem."""

from __future__ import annotations

import json

import pytest

from pdtui import cluster as cl

from .common import MOONCAKE, RUNBOOK, edit, problems_for


def test_runbook_sample_is_the_runbook_deployment() -> None:
    c = cl.load(RUNBOOK)
    pre, dec = c.node("prefill-0"), c.node("decode-0")
    assert (pre.host, dec.host) == ("172.22.0.218", "172.22.0.155")
    assert pre.soc == dec.soc == "A3" and pre.npus == dec.npus == 16
    assert pre.nic == dec.nic == "enp23s0f3"
    p, d = c.instance("prefill-0"), c.instance("decode-0")
    assert p.env == {
        "DISAGGREGATED_PREFILL_RANK_TABLE_PATH": (
            "/vllm-workspace/vllm-ascend/examples/disaggregated_prefill_v1/ranktable.json"
        ),
        "HCCL_IF_IP": "172.22.0.218",
        "GLOO_SOCKET_IFNAME": "enp23s0f3",
        "TP_SOCKET_IFNAME": "enp23s0f3",
        "HCCL_SOCKET_IFNAME": "enp23s0f3",
        "OMP_PROC_BIND": "false",
        "OMP_NUM_THREADS": "100",
    }
    assert d.env["HCCL_IF_IP"] == "172.22.0.155"
    assert list(p.serve) == [
        "host",
        "tensor-parallel-size",
        "seed",
        "quantization",
        "max-num-seqs",
        "max-model-len",
        "max-num-batched-tokens",
        "enable-expert-parallel",
        "trust-remote-code",
        "no-enable-prefix-caching",
        "gpu-memory-utilization",
        "additional-config",
    ]
    assert p.serve["gpu-memory-utilization"] == 0.92 and d.serve["gpu-memory-utilization"] == 0.9
    assert p.serve["additional-config"] == {
        "torchair_graph_config": {"enabled": True, "graph_batch_sizes": [16]}
    }
    assert "additional-config" not in d.serve
    assert p.port == d.port == 8000 and p.devices == tuple(range(16))
    expected_kv = {
        "kv_connector": "LLMDataDistCMgrConnector",
        "kv_buffer_device": "npu",
        "kv_role": "kv_producer",
        "kv_parallel_size": 1,
        "kv_port": "20001",
        "engine_id": "0",
        "kv_connector_module_path": "vllm_ascend.distributed.llmdatadist_c_mgr_connector",
    }
    assert p.kv_transfer == expected_kv
    assert d.kv_transfer == {**expected_kv, "kv_role": "kv_consumer"}
    assert c.spec.model.path == "/root/.cache/weights/dpsk_w8a8"
    assert c.spec.model.served_name == "deepseek_v3.2"
    assert c.spec.proxy is not None
    assert (c.spec.proxy.node, c.spec.proxy.host, c.spec.proxy.port) == (
        "prefill-0",
        "172.22.0.218",
        8080,
    )
    assert c.backends("prefill") == ["172.22.0.218:8000"]
    assert c.backends("decode") == ["172.22.0.155:8000"]
    assert c.spec.ranktable is not None
    assert (c.spec.ranktable.prefill_device_count, c.spec.ranktable.decode_device_count) == (16, 16)


def test_mooncake_sample_expands_data_parallel_ranks_on_consecutive_ports() -> None:
    c = cl.load(MOONCAKE)
    p0 = c.instance("prefill-0")
    assert [(p.port, p.devices, p.dp_rank) for p in p0.processes] == [
        (7100, tuple(range(8)), 0),
        (7101, tuple(range(8, 16)), 1),
    ]
    d1 = c.instance("decode-1")
    assert [p.port for p in d1.processes] == list(range(7100, 7116))
    assert [p.dp_rank for p in d1.processes] == list(range(16, 32))
    assert len(c.backends("decode")) == 32 and len(c.backends("prefill")) == 4
    assert c.instance("decode-0").env["HCCL_BUFFSIZE"] == "600"
    assert p0.env["HCCL_BUFFSIZE"] == "256"
    assert p0.kv_transfer["kv_connector"] == "MooncakeConnectorV1"
    assert c.spec.ranktable is None


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            'name = "decode-0"\nhost = "172.22.0.155"',
            'name = "prefill-0"\nhost = "172.22.0.155"',
            "cluster.toml: nodes[1].name: duplicate node name 'prefill-0'",
        ),
        (
            'host = "172.22.0.155"',
            'host = "172.22.0.218"',
            "cluster.toml: nodes[1].host: '172.22.0.218' is also node 'prefill-0'",
        ),
        (
            'node = "decode-0"\ndevices',
            'node = "decode-9"\ndevices',
            "cluster.toml: instances[1].node: unknown node 'decode-9' (nodes: 'prefill-0',"
            " 'decode-0')",
        ),
        (
            'node = "decode-0"\ndevices',
            'node = "prefill-0"\ndevices',
            "cluster.toml: instances[1].port: port 8000 on node 'prefill-0' is also used by"
            " 'prefill-0'",
        ),
        (
            'devices = "0-15"\nport = 8000',
            'devices = "0-16"\nport = 8000',
            "cluster.toml: instances[0].devices: device 16 does not exist on node 'prefill-0'"
            " (16 NPUs: 0-15)",
        ),
        (
            '"{node.ip}"',
            '"{node.ipp}"',
            "cluster.toml: env.HCCL_IF_IP: unknown placeholder {node.ipp} (known: {node.name},"
            " {node.host}, {node.ip}, {node.nic}, {node.soc})",
        ),
        (
            'kv_role = "kv_consumer"',
            'kv_role = "kv_producer"',
            "cluster.toml: instances[1].kv_transfer.kv_role: 'kv_producer' does not fit a decode"
            " instance (expected 'kv_consumer')",
        ),
        (
            "port = 8080",
            'port = 8080\ndecoders = ["172.22.0.155:8001"]',
            "cluster.toml: proxy.decoders: ['172.22.0.155:8001'] does not match the decode"
            " instances ['172.22.0.155:8000'] (leave the key out to derive it)",
        ),
        (
            '[proxy]\nnode = "prefill-0"',
            '[proxy]\nnode = "nowhere"',
            "cluster.toml: proxy.node: unknown node 'nowhere' (nodes: 'prefill-0', 'decode-0')",
        ),
        (
            "seed = 1024",
            "--seed = 1024",
            "cluster.toml: serve.--seed: write the flag without leading dashes ('seed')",
        ),
        (
            "seed = 1024",
            "port = 9000",
            "cluster.toml: serve.port: set this with instances[].port instead",
        ),
        (
            "prefill_device_count = 16",
            "prefill_device_count = 8",
            "cluster.toml: ranktable.prefill_device_count: 8 is fewer than the 16 devices of the"
            " prefill instances",
        ),
    ],
)
def test_bad_input_gets_one_line_naming_file_key_and_value(
    old: str, new: str, expected: str
) -> None:
    """Semantic problems: names, addresses, ports, devices, placeholders, roles."""
    assert expected in problems_for(edit(old, new))


def test_two_instances_sharing_a_device_on_one_node_is_an_error() -> None:
    text = edit(
        'node = "decode-0"\ndevices = "0-15"\nport = 8000',
        'node = "prefill-0"\ndevices = "15"\nport = 8001',
    )
    probs = problems_for(text)
    assert (
        "cluster.toml: instances[1].devices: device 15 on node 'prefill-0' is also used by"
        " 'prefill-0'"
    ) in probs


def test_node_values_override_defaults() -> None:
    text = edit(
        'name = "decode-0"\nhost = "172.22.0.155"',
        'name = "decode-0"\nhost = "172.22.0.155"\nnic = "eth9"\n'
        'ssh = { user = "npu", port = 2222, jump = "bastion" }',
    )
    c = cl.loads(text)
    d = c.node("decode-0")
    assert (d.nic, d.ssh.user, d.ssh.port, d.ssh.jump) == ("eth9", "npu", 2222, ("bastion",))
    assert c.instance("decode-0").env["GLOO_SOCKET_IFNAME"] == "eth9"
    p = c.node("prefill-0")
    assert (p.nic, p.ssh.user, p.ssh.port, p.ssh.jump) == ("enp23s0f3", "root", None, ())


def test_values_are_taken_literally_except_placeholders() -> None:
    nasty = "hello world; $(rm -rf /) `id` {\"a\": 1} {unknown.x} 'q'"
    text = edit('OMP_PROC_BIND = "false"', f"OMP_PROC_BIND = {json.dumps(nasty)}")
    assert cl.loads(text).instance("prefill-0").env["OMP_PROC_BIND"] == nasty
