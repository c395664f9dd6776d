"""The doctor's offline rules on real, public launch scripts (tests/fixtures/configs/).

Each sample is imported with ``pdtui import``'s reader, as a user would, and the test states
exactly which rules fire on it and which stay silent, with the reason taken from the sample.
Sources and what each sample shows: tests/fixtures/configs/README.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pdtui.cluster import Cluster, dump_spec, loads
from pdtui.doctor import examine, rules
from pdtui.launch.importer import import_scripts

CONFIGS = Path(__file__).resolve().parents[1] / "fixtures" / "configs"
OFFLINE = [r.id for r in rules() if not r.live]


def _import(*names: str) -> Cluster:
    texts = {}
    for name in names:
        text = (CONFIGS / name).read_text()
        assert text.startswith("# source: https://github.com/vllm-project/vllm-ascend/blob/v0.1")
        texts[name] = text
    return loads(dump_spec(import_scripts(texts).spec))


def _fired(cluster: Cluster) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for f in examine(cluster):
        found.setdefault(f.id, []).append(f.where)
    return found


# --- LLMDataDistCMgrConnector 1P1D on one A2 node (official tutorial, v0.11.0) ---------------

LLMDD_1NODE = (
    "llmdd_1node_gen.sh",
    "llmdd_1node_prefill.sh",
    "llmdd_1node_decode.sh",
    "llmdd_1node_proxy.sh",
)
#: rule id -> fires?  (the reason, from the sample)
LLMDD_1NODE_TABLE = {
    # Both scripts say "kv_port": "20001" on the same node, but LLMDataDistCMgrConnector never
    # reads kv_port: its ports come from VLLM_ASCEND_LLMDD_RPC_PORT (5959 and 5979 here).
    "kv-port-overlap": False,
    "kv-port-reserved": False,  # not a Mooncake connector
    # Prefill and decode share 192.0.0.1 without HCCL_INTRA_ROCE_ENABLE; the tutorial (and the
    # v0.10.0rc1 release check, issue 2210) run LLMDataDist like that.
    "intra-roce": False,
    "devices-vs-parallel": False,  # ASCEND_RT_VISIBLE_DEVICES=0 / =1 with TP 1
    "max-model-len-parity": False,  # 40000 on both
    "model-parity": False,  # served name qwen25vl on both
    "connector-parity": False,  # kv_producer / kv_consumer, one connector
    "extra-config-topology": False,  # no kv_connector_extra_config
    "tp-order": False,
    "http-proxy-env": False,
    "timeout-order": False,
    "startup-timeout": False,  # a 7B model
    "nixl-side-channel": False,
}


def test_llmdatadist_single_node_tutorial_is_clean() -> None:
    cluster = _import(*LLMDD_1NODE)
    assert [(i.name, i.node, i.devices) for i in cluster.instances] == [
        ("prefill-0", "prefill-0", (0,)),
        ("decode-0", "prefill-0", (1,)),
    ]
    fired = _fired(cluster)
    assert {rule: rule in fired for rule in LLMDD_1NODE_TABLE} == LLMDD_1NODE_TABLE
    assert fired == {}


# --- MooncakeConnectorV1 1P1D on one A2 node, in the tutorial's container (v0.13.0) ----------

MOONCAKE_1NODE = (
    "mooncake_1node_docker_run.sh",
    "mooncake_1node_prefill.sh",
    "mooncake_1node_decode.sh",
    "mooncake_1node_proxy.sh",
)
MOONCAKE_1NODE_TABLE = {
    # Prefill (NPU 0) and decode (NPU 1) share 192.0.0.1 and neither script sets
    # HCCL_INTRA_ROCE_ENABLE=1: what the maintainers answered in issue 4866 for Mooncake P and
    # D on one machine.
    "intra-roce": True,
    # kv_port 30000 and 30100 on a node the docker run gives /dev/davinci0-7: above
    # [20000, 28000), the range AscendDirectTransport takes on eight NPUs.
    "kv-port-reserved": False,
    "kv-port-overlap": False,  # 30000 and 30100, one port each
    "extra-config-topology": False,  # prefill/decode dp_size 1, tp_size 1, as started
    "tp-order": False,  # TP 1 and TP 1
    "devices-vs-parallel": False,
    "max-model-len-parity": False,
    "model-parity": False,
    "connector-parity": False,
    "http-proxy-env": False,
    "timeout-order": False,
    "startup-timeout": False,
    "nixl-side-channel": False,
}


def test_mooncake_single_node_tutorial_lacks_only_intra_roce() -> None:
    cluster = _import(*MOONCAKE_1NODE)
    assert [n.npus for n in cluster.nodes] == [8]
    fired = _fired(cluster)
    assert {rule: rule in fired for rule in MOONCAKE_1NODE_TABLE} == MOONCAKE_1NODE_TABLE
    assert fired == {"intra-roce": ["node prefill-0"]}


# --- MooncakeConnector 2P1D Qwen3-235B on four A3 nodes (v0.11.0, non-layerwise) -------------

MOONCAKE_4NODE = (
    "mooncake_4node_prefill1.sh",
    "mooncake_4node_prefill2.sh",
    "mooncake_4node_decode1.sh",
    "mooncake_4node_decode2.sh",
    "mooncake_4node_proxy.sh",
)
MOONCAKE_4NODE_TABLE = {
    # kv_port 30000 / 30100 / 30200 on Atlas 800T A3 nodes (16 NPUs): inside [20000, 36000),
    # the ports AscendDirectTransport picks at random (pull 6455).
    "kv-port-reserved": True,
    # Qwen3-235B without VLLM_ENGINE_READY_TIMEOUT_S (issue 2416).
    "startup-timeout": True,
    # "prefill": {"dp_size": 2, "tp_size": 8}, "decode": {"dp_size": 32, "tp_size": 1} is
    # what the commands start: --data-parallel-size 2 / 32, --tensor-parallel-size 8 / 1.
    "extra-config-topology": False,
    # 16 NPUs each: TP 8 x --data-parallel-size-local 2 and TP 1 x local 16.
    "devices-vs-parallel": False,
    "tp-order": False,  # prefill TP 8 >= decode TP 1
    "kv-port-overlap": False,  # one instance per node
    "connector-parity": False,  # MooncakeConnector everywhere
    "max-model-len-parity": False,  # 32768 everywhere
    "model-parity": False,
    "http-proxy-env": False,  # every script unsets http_proxy and https_proxy
    "timeout-order": False,
    "intra-roce": False,
    "nixl-side-channel": False,
}


def test_mooncake_four_node_tutorial_kv_ports_and_startup_timeout() -> None:
    cluster = _import(*MOONCAKE_4NODE)
    fired = _fired(cluster)
    assert {rule: rule in fired for rule in MOONCAKE_4NODE_TABLE} == MOONCAKE_4NODE_TABLE
    assert fired == {
        "kv-port-reserved": [
            "instance prefill-0",
            "instance prefill-1",
            "instance decode-0",
            "instance decode-1",
        ],
        "startup-timeout": ["instance prefill-0"],
    }
    msg = next(f.message for f in examine(cluster) if f.id == "kv-port-reserved")
    assert msg.startswith("kv_port 30000 is inside [20000, 36000)")


@pytest.mark.parametrize(
    "table",
    [LLMDD_1NODE_TABLE, MOONCAKE_1NODE_TABLE, MOONCAKE_4NODE_TABLE],
    ids=["llmdd-1node", "mooncake-1node", "mooncake-4node"],
)
def test_each_table_covers_every_offline_rule(table: dict[str, bool]) -> None:
    assert sorted(table) == sorted(OFFLINE)
