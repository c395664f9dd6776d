"""Each doctor rule on a cluster file that breaks it and on one that does not."""

from __future__ import annotations

from pathlib import Path

import pytest

from pdtui import cluster as cl
from pdtui.doctor import Facts, NodeFacts, examine, rules

ROOT = Path(__file__).resolve().parents[2]

BASE = """
[cluster]
name = "t"

[defaults]
soc = "A3"
npus = 16

[[nodes]]
name = "p0"
host = "10.9.0.1"

[[nodes]]
name = "d0"
host = "10.9.0.2"

[model]
path = "/models/qwen3-8b"
served_name = "qwen"

[env]
{env}

[serve]
max-model-len = 8192

[[instances]]
name = "prefill-0"
role = "prefill"
node = "{pnode}"
devices = "{pdev}"
port = 8000
{penv}
[instances.serve]
tensor-parallel-size = {ptp}
{pserve}
[instances.kv_transfer]
kv_connector = "{conn}"
kv_role = "kv_producer"
kv_port = "{pport}"
{extra}

[[instances]]
name = "decode-0"
role = "decode"
node = "d0"
devices = "{ddev}"
port = {dport}
{denv}
[instances.serve]
tensor-parallel-size = {dtp}
{dserve}
[instances.kv_transfer]
kv_connector = "MooncakeConnectorV1"
kv_role = "kv_consumer"
kv_port = "{dport_kv}"
{extra}
"""

EXTRA = (
    "kv_connector_extra_config = {{ prefill = {{ dp_size = 1, tp_size = {xptp} }}, "
    "decode = {{ dp_size = 1, tp_size = {xdtp} }} }}"
)
GOOD = dict(
    env="",
    pnode="p0",
    pdev="0-3",
    ptp=4,
    pserve="",
    conn="MooncakeConnectorV1",
    pport="36000",
    xptp=4,
    xdtp=2,
    ddev="0-1",
    dport=8000,
    dtp=2,
    dserve="",
    dport_kv="36000",
    penv="",
    denv="",
)


def make(**changes: object) -> cl.Cluster:
    values = {**GOOD, **changes}
    return cl.loads(BASE.format(extra=EXTRA.format(**values), **values))


def ids(c: cl.Cluster, facts: Facts | None = None) -> list[str]:
    return [f.id for f in examine(c, facts)]


def test_a_consistent_mooncake_cluster_has_no_findings() -> None:
    assert examine(make()) == []


def test_every_rule_has_an_id_a_fix_and_a_public_source() -> None:
    seen = set()
    for rule in rules():
        assert rule.id not in seen and rule.fix and rule.source.startswith("https://")
        seen.add(rule.id)
    assert {
        "kv-port-reserved",
        "kv-port-overlap",
        "extra-config-topology",
        "tp-order",
        "max-model-len-parity",
        "model-parity",
        "http-proxy-env",
        "timeout-order",
        "intra-roce",
        "devices-vs-parallel",
    } <= seen


def test_kv_port_inside_ascend_direct_transport_range_is_an_error() -> None:
    found = examine(make(pport="30000"))
    assert [f.id for f in found] == ["kv-port-reserved"]
    assert found[0].where == "instance prefill-0" and "36000" in found[0].fix


def test_kv_port_reserved_range_follows_ascend_base_port() -> None:
    assert ids(make(pport="36000", env='ASCEND_BASE_PORT = "30000"')) == ["kv-port-reserved"] * 2
    assert ids(make(pport="50000", dport_kv="50000", env='ASCEND_BASE_PORT = "30000"')) == []


def test_kv_port_reserved_ignores_other_connectors() -> None:
    found = ids(make(pport="20001", conn="LMCacheConnectorV1"))
    assert "kv-port-reserved" not in found and "connector-parity" in found


def test_two_instances_on_one_node_with_overlapping_kv_ports() -> None:
    c = make(
        pnode="d0",
        pdev="0-3",
        ddev="4-5",
        dport=8100,
        pport="36000",
        dport_kv="36002",
        penv='[instances.env]\nHCCL_INTRA_ROCE_ENABLE = "1"\n',
        denv='[instances.env]\nHCCL_INTRA_ROCE_ENABLE = "1"\n',
    )
    assert ids(c) == ["kv-port-overlap"]
    ok = make(
        pnode="d0",
        pdev="0-3",
        ddev="4-5",
        dport=8100,
        pport="36000",
        dport_kv="36004",
        penv='[instances.env]\nHCCL_INTRA_ROCE_ENABLE = "1"\n',
        denv='[instances.env]\nHCCL_INTRA_ROCE_ENABLE = "1"\n',
    )
    assert ids(ok) == []


def test_extra_config_that_does_not_match_the_instances() -> None:
    found = examine(make(xdtp=1))
    assert {f.id for f in found} == {"extra-config-topology"}
    assert "decode.tp_size = 1" in found[0].message


def test_prefill_tp_smaller_than_decode_tp() -> None:
    c = make(pdev="0-1", ptp=2, ddev="0-3", dtp=4, xptp=2, xdtp=4)
    assert ids(c) == ["tp-order"]


def test_max_model_len_differs_between_prefill_and_decode() -> None:
    found = examine(make(dserve="max-model-len = 4096"))
    assert [f.id for f in found] == ["max-model-len-parity"]
    assert "8192" in found[0].message and "4096" in found[0].message


@pytest.mark.parametrize(
    "flag", ['quantization = "ascend"', 'dtype = "bfloat16"', "block-size = 64"]
)
def test_model_settings_that_must_match(flag: str) -> None:
    assert ids(make(pserve=flag)) == ["model-parity"]
    assert ids(make(pserve=flag, dserve=flag)) == []


def test_http_proxy_without_no_proxy_for_the_cluster() -> None:
    found = examine(make(env='http_proxy = "http://proxy.corp:3128"'))
    assert {f.id for f in found} == {"http-proxy-env"}
    assert "10.9.0.1" in found[0].message
    covered = 'HTTPS_PROXY = "http://p:1"\nNO_PROXY = "localhost,10.9.0.0/16"'
    assert ids(make(env=covered)) == []


def test_http_proxy_from_the_nodes_login_shell_counts_when_live() -> None:
    facts = Facts(
        nodes={"p0": NodeFacts("p0", env={"https_proxy": "http://p:1"}), "d0": NodeFacts("d0")}
    )
    assert "http-proxy-env" in ids(make(), facts)


def test_mooncake_timeout_in_seconds_must_exceed_ascend_timeout_in_ms() -> None:
    assert ids(make(env='MC_TRANSFER_TIMEOUT = "10"')) == ["timeout-order"] * 2
    assert ids(make(env='MC_TRANSFER_TIMEOUT = "11"')) == []
    bad = 'MC_TRANSFER_TIMEOUT = "20"\nASCEND_TRANSFER_TIMEOUT = "30000"'
    assert set(ids(make(env=bad))) == {"timeout-order"}


def test_prefill_and_decode_on_one_node_need_intra_roce() -> None:
    c = make(pnode="d0", pdev="0-3", ddev="4-5", dport=8100, dport_kv="36100")
    found = examine(c)
    assert [f.id for f in found] == ["intra-roce"]
    assert found[0].where == "node d0"


def test_devices_must_equal_tp_times_local_dp() -> None:
    found = examine(make(pdev="0-7"))
    assert [f.id for f in found] == ["devices-vs-parallel"]
    assert "8 devices" in found[0].message


def test_big_model_with_default_engine_timeout_is_a_warning() -> None:
    text = BASE.format(extra=EXTRA.format(**GOOD), **GOOD)
    text = text.replace("/models/qwen3-8b", "/models/DeepSeek-V3.2-Exp")
    found = examine(cl.loads(text))
    assert [(f.id, f.severity) for f in found] == [("startup-timeout", "warning")]
    text = text.replace("[env]\n", '[env]\nVLLM_ENGINE_READY_TIMEOUT_S = "3600"\n')
    assert examine(cl.loads(text)) == []


def test_live_rules_are_skipped_offline_and_run_with_facts() -> None:
    c = make()
    libs = {"LD_LIBRARY_PATH": "/usr/local/lib", "LD_PRELOAD": "libjemalloc.so.2"}
    facts = Facts(
        nodes={
            "p0": NodeFacts(
                "p0",
                files={"/etc/hccn.conf": False},
                listening=frozenset({("*", 8000)}),
                env=dict(libs),
            ),
            "d0": NodeFacts("d0", failed_devices=frozenset({1}), env=dict(libs)),
        }
    )
    assert examine(c) == []
    got = {(f.id, f.where) for f in examine(c, facts)}
    assert got == {
        ("hccn-conf-missing", "node p0"),
        ("port-in-use", "node p0"),
        ("npu-unhealthy", "instance decode-0"),
    }
    running = Facts(nodes=facts.nodes, running=frozenset({"prefill-0"}))
    assert ("port-in-use", "node p0") not in {(f.id, f.where) for f in examine(c, running)}


def test_mooncake_library_environment_when_live() -> None:
    facts = Facts(nodes={"p0": NodeFacts("p0"), "d0": NodeFacts("d0")})
    found = [f for f in examine(make(), facts) if f.id == "mooncake-env"]
    assert len(found) == 4
    assert {f.source.rsplit("/", 1)[1] for f in found} == {"6949", "5609"}


@pytest.mark.parametrize("sample", sorted((ROOT / "sample_clusters").glob("*.toml")))
def test_the_sample_clusters_have_no_doctor_errors(sample: Path) -> None:
    found = examine(cl.load(sample))
    assert [f for f in found if f.severity == "error"] == []


def test_kv_port_of_vllm_ascends_own_launcher_template_is_flagged_on_a_16_npu_node() -> None:
    """A real public sample: run_dp_template.sh's kv_port 30200 lies inside [20000, 36000),
    the ports AscendDirectTransport takes at random on a 16-NPU A3 node."""
    import re

    text = (ROOT / "tests/fixtures/configs/run_dp_template_kv.sh").read_text()
    assert text.startswith("# source: https://github.com/vllm-project/vllm-ascend/")
    found = re.search(r'"kv_port": "(\d+)"', text)
    connector = re.search(r'"kv_connector": "(\w+)"', text)
    assert found and connector and connector.group(1) == "MooncakeLayerwiseConnector"
    port = found.group(1)
    c = make(pport=port, dport_kv=port, conn=connector.group(1))
    hits = [f for f in examine(c) if f.id == "kv-port-reserved"]
    assert [f.where for f in hits] == ["instance prefill-0", "instance decode-0"]
    assert "30200 is inside [20000, 36000)" in hits[0].message
