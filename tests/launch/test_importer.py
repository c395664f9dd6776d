"""Importing runbook-style launch scripts, and the render -> import round trip."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pdtui.cluster import Cluster, dump_spec, load, loads, parse_spec
from pdtui.launch.importer import ScriptImportError, import_scripts, typed_value
from pdtui.launch.importer.assemble import missing_scripts
from pdtui.launch.plan import plan_cluster, plan_proxy, render_all

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = ROOT / "sample_clusters" / "deepseek-v3.2-a3-1p1d.toml"
MOONCAKE = ROOT / "sample_clusters" / "mooncake-a3-2p1d.toml"
FIXTURES = ROOT / "tests" / "fixtures" / "scripts"


def _read(*names: str) -> dict[str, str]:
    return {name: (FIXTURES / name).read_text() for name in names}


def _cluster(texts: dict[str, str], **kw: Any) -> tuple[Cluster, list[str]]:
    result = import_scripts(texts, **kw)
    return loads(dump_spec(result.spec)), result.warnings


def _procs(cluster: Cluster, *, names: bool = True) -> list[tuple[Any, ...]]:
    out = []
    for p in plan_cluster(cluster):
        row: tuple[Any, ...] = (p.host, p.port, p.env, p.argv)
        out.append((p.node, *row) if names else row)
    return out


def _proxy(cluster: Cluster) -> tuple[Any, ...] | None:
    proxy = plan_proxy(cluster)
    if proxy is None:
        return None
    return (cluster.node(proxy.node).ip, proxy.host, proxy.port, proxy.argv, proxy.env)


# --- the runbook, verbatim -----------------------------------------------------------------


RUNBOOK_FILES = ("runbook-prefill.sh", "runbook-decode.sh", "runbook-proxy.sh")


@pytest.fixture(scope="module")
def sample() -> Cluster:
    return load(RUNBOOK)


def test_runbook_scripts_import_to_the_sample(sample: Cluster) -> None:
    cluster, _ = _cluster(_read(*RUNBOOK_FILES))
    assert [(n.name, n.ip, n.nic) for n in cluster.nodes] == [
        (n.name, n.ip, n.nic) for n in sample.nodes
    ]
    for got, want in zip(cluster.instances, sample.instances, strict=True):
        assert (got.name, got.role, got.node, got.port, got.devices) == (
            want.name,
            want.role,
            want.node,
            want.port,
            want.devices,
        )
        assert list(got.env.items()) == list(want.env.items())
        assert list(got.serve.items()) == list(want.serve.items())
        assert got.kv_transfer == want.kv_transfer
    assert cluster.spec.model == sample.spec.model
    assert cluster.spec.proxy == sample.spec.proxy
    assert cluster.spec.ranktable == sample.spec.ranktable
    # the shared parts land in [env] / [serve] like the sample's
    assert cluster.spec.env == sample.spec.env
    assert cluster.spec.serve == sample.spec.serve
    assert _procs(cluster) == _procs(sample)
    assert _proxy(cluster) == _proxy(sample)


def test_runbook_missing_backslash_is_reported_and_repaired() -> None:
    result = import_scripts(_read(*RUNBOOK_FILES))
    assert result.warnings == [
        "runbook-prefill.sh: line 28: '--kv-transfer-config' starts a new command because"
        " line 27 has no trailing backslash; the flag never reaches vllm (imported as part"
        " of the command)"
    ]
    prefill = result.spec.instances[0]
    assert prefill.kv_transfer["kv_role"] == "kv_producer"
    assert prefill.serve["additional-config"] == {
        "torchair_graph_config": {"enabled": True, "graph_batch_sizes": [16]}
    }


def test_runbook_ranktable_typo_is_reported() -> None:
    result = import_scripts(_read(*RUNBOOK_FILES, "runbook-gen.sh"))
    assert len(result.warnings) == 2
    typo = result.warnings[1]
    assert typo.startswith(
        "runbook-gen.sh: line 2: gen_ranktable.sh writes"
        " vllm-ascend/examples/disaggregate_prefill_v1/ranktable.json"
    )
    assert (
        "DISAGGREGATED_PREFILL_RANK_TABLE_PATH=/vllm-workspace/vllm-ascend/examples/"
        "disaggregated_prefill_v1/ranktable.json"
    ) in typo
    spec = result.spec
    assert spec.ranktable is not None
    assert spec.ranktable.path.endswith("disaggregated_prefill_v1/ranktable.json")
    assert (spec.ranktable.prefill_device_count, spec.ranktable.decode_device_count) == (16, 16)
    assert spec.defaults.npus == 16 and spec.defaults.nic == "enp23s0f3"


def test_a_matching_ranktable_path_is_not_reported() -> None:
    gen = (
        (FIXTURES / "runbook-gen.sh")
        .read_text()
        .replace(
            "cd vllm-ascend/examples/disaggregate_prefill_v1/",
            "cd /vllm-workspace/vllm-ascend/examples/disaggregated_prefill_v1",
        )
    )
    result = import_scripts({**_read(*RUNBOOK_FILES), "gen.sh": gen})
    assert not any("gen_ranktable" in w for w in result.warnings)


# --- the samples round trip -----------------------------------------------------------------


@pytest.mark.parametrize("path", [RUNBOOK, MOONCAKE], ids=lambda p: p.name)
def test_sample_round_trip(path: Path) -> None:
    original = load(path)
    cluster, warnings = _cluster(render_all(original), name=original.name)
    assert warnings == []
    assert _procs(cluster) == _procs(original)
    assert _proxy(cluster) == _proxy(original)
    assert [i.name for i in cluster.instances] == [i.name for i in original.instances]
    assert [(i.dp, i.devices) for i in cluster.instances] == [
        (i.dp, i.devices) for i in original.instances
    ]


def test_mooncake_import_groups_dp_ranks_given_in_any_order() -> None:
    original = load(MOONCAKE)
    texts = render_all(original)
    shuffled = dict(sorted(texts.items()))  # decode-0.dp10 before decode-0.dp2, proxy last
    cluster, _ = _cluster(shuffled)
    assert sorted(_procs(cluster, names=False)) == sorted(_procs(original, names=False))
    assert len(cluster.instances) == 4


# --- shell details ---------------------------------------------------------------------------


def test_shell_variables_comments_and_prefix_assignments() -> None:
    script = """#!/bin/bash
# a comment
nic_name=eth1   # trailing comment
local_ip="10.1.1.1"
ip_again=${local_ip}
export HCCL_IF_IP=${ip_again}
export GLOO_SOCKET_IFNAME="$nic_name"
export LITERAL='$nic_name stays'
export SUBST="$(hostname -I | awk '{print $1}')"
export HASH=a#b
PER_CMD=1 nohup vllm serve /m --port 7000 --served-model-name=m \\
  --kv-transfer-config '{"kv_connector":"MooncakeConnectorV1","kv_role":"kv_producer"}' \\
  > /tmp/log 2>&1 &
"""
    decode = script.replace("10.1.1.1", "10.1.1.2").replace("kv_producer", "kv_consumer")
    result = import_scripts({"p.sh": script, "d.sh": decode})
    assert result.warnings == []
    cluster = loads(dump_spec(result.spec))
    p = plan_cluster(cluster)[0]
    assert p.host == "10.1.1.1" and p.port == 7000
    assert p.env == {
        "HCCL_IF_IP": "10.1.1.1",
        "GLOO_SOCKET_IFNAME": "eth1",
        "LITERAL": "$nic_name stays",
        "SUBST": "$(hostname -I | awk '{print $1}')",
        "HASH": "a#b",
        "PER_CMD": "1",
    }
    assert cluster.nodes[0].nic == "eth1"
    assert result.spec.env["GLOO_SOCKET_IFNAME"] == "{node.nic}"
    assert p.argv[-4:-2] == ["--served-model-name", "m"]


def test_unset_variables_are_kept_and_reported() -> None:
    script = "export HCCL_IF_IP=10.0.0.9\nexport X=$UNSET_THING\nvllm serve /m --port 1\n"
    result = import_scripts({"decode.sh": script})
    assert result.spec.instances[0].role == "decode"  # from the file name, no kv_role
    assert any("$UNSET_THING is not set" in w for w in result.warnings)
    assert any("kv_role is None" in w for w in result.warnings)
    assert result.spec.env["X"] == "$UNSET_THING"


def test_proxy_problems_are_reported() -> None:
    texts = _read("runbook-prefill.sh", "runbook-decode.sh")
    texts["proxy.sh"] = (
        "python load_balance_proxy_server_example.py --host 172.22.0.218 --port 8080 \\\n"
        "  --prefiller-hosts 172.22.0.218 172.22.0.99 --prefiller-port 8000 \\\n"
        "  --decoder-hosts 172.22.0.155 --decoder-ports 8001 --max-retries 5\n"
    )
    result = import_scripts(texts)
    proxy_warnings = [w for w in result.warnings if w.startswith("proxy.sh")]
    assert proxy_warnings == [
        "proxy.sh: line 1: the proxy gets 2 prefiller hosts but 1 prefiller ports; it stops"
        " with 'Number of prefiller hosts must match number of prefiller ports'",
        "proxy.sh: line 1: proxy decoder 172.22.0.155:8001 matches no decode instance"
        " (172.22.0.155:8000)",
        "proxy.sh: line 1: decode instance 172.22.0.155:8000 is missing from the proxy's"
        " decoder list; pdtui's proxy command lists it",
    ]
    assert result.spec.proxy is not None
    assert result.spec.proxy.args == {"max-retries": 5}
    loads(dump_spec(result.spec))  # still a valid cluster


def test_proxy_missing_backslash() -> None:
    texts = _read("runbook-prefill.sh", "runbook-decode.sh")
    texts["proxy.sh"] = (
        "python load_balance_proxy_server_example.py --host 172.22.0.218 --port 8080\n"
        "  --prefiller-hosts 172.22.0.218 --prefiller-ports 8000 \\\n"
        "  --decoder-hosts 172.22.0.155 --decoder-ports 8000\n"
    )
    result = import_scripts(texts)
    assert any(
        w.startswith(
            "proxy.sh: line 2: '--prefiller-hosts' starts a new command"
            " because line 1 has no trailing backslash; the flag never"
            " reaches the proxy"
        )
        for w in result.warnings
    )
    assert not any("missing from the proxy" in w for w in result.warnings)


def test_ip_from_the_proxy_when_the_script_has_none() -> None:
    texts = {
        "prefill.sh": "vllm serve /m --port 8000 --kv-transfer-config"
        ' \'{"kv_connector":"X","kv_role":"kv_producer"}\'\n',
        "decode.sh": "export HCCL_IF_IP=10.0.0.2\nvllm serve /m --port 8000"
        ' --kv-transfer-config \'{"kv_connector":"X","kv_role":"kv_consumer"}\'\n',
        "proxy.sh": "OPENAI_API_KEY=k python3 /x/load_balance_proxy_server_example.py"
        " --host 0.0.0.0 --port 9 --prefiller-hosts 10.0.0.1 --prefiller-ports 8000"
        " --decoder-hosts 10.0.0.2 --decoder-ports 8000\n",
    }
    result = import_scripts(texts)
    assert [n.host for n in result.spec.nodes] == ["10.0.0.1", "10.0.0.2"]
    proxy = result.spec.proxy
    assert proxy is not None
    assert (proxy.node, proxy.python, proxy.script, proxy.env) == (
        "prefill-0",
        "python3",
        "/x/load_balance_proxy_server_example.py",
        {"OPENAI_API_KEY": "k"},
    )
    assert any("taken from the proxy's prefill list" in w for w in result.warnings)
    assert any("listens on '0.0.0.0'" in w for w in result.warnings)


def test_no_vllm_serve_is_an_error() -> None:
    with pytest.raises(ScriptImportError):
        import_scripts({"x.sh": "echo hi\n"})


@pytest.mark.parametrize(
    "text,value",
    [
        ("16", 16),
        ("0.92", 0.92),
        ("007", "007"),
        ("1e5", "1e5"),
        ("ascend", "ascend"),
        ('{"a":[1,2]}', {"a": [1, 2]}),
        ('{"a":null}', '{"a":null}'),
        ("{bad", "{bad"),
        ("-1", -1),
    ],
)
def test_typed_value(text: str, value: object) -> None:
    got = typed_value(text)
    assert got == value and type(got) is type(value)


# --- values survive render -> import ---------------------------------------------------------

AWKWARD = [
    "two words",
    "it's",
    'say "hi"',
    "$(hostname -I | cut -d' ' -f1)",
    "`uname -n`",
    "${HOME}/x",
    "back\\slash",
    "semi;colon && more | pipe > file",
    "# not a comment",
    "line one\nline two",
    "",
    "tab\there",
    "{curly}",
]


@pytest.mark.parametrize("value", AWKWARD)
def test_awkward_values_survive(value: str) -> None:
    text = RUNBOOK.read_text().replace(
        'OMP_NUM_THREADS = "100"', f"OMP_NUM_THREADS = {json.dumps(value)}"
    )
    text = text.replace('quantization = "ascend"', f"quantization = {json.dumps(value)}")
    original = loads(text)
    cluster, warnings = _cluster(render_all(original))
    assert _procs(cluster) == _procs(original)
    assert cluster.instances[0].env["OMP_NUM_THREADS"] == value
    assert warnings == []


# --- hypothesis round trip --------------------------------------------------------------------

ENV_TEXT = st.text(alphabet=list("ab Z09_-./:=,'\"$()`\\{}#;&|<>*?~!\n\t"), max_size=12)
SERVE_TEXT = st.sampled_from(["ascend", "x y", "a'b", "$(hostname)", "auto", "1e-05"])
SERVE_VALUE = st.one_of(
    st.integers(0, 100000),
    st.floats(0.01, 1.0, allow_nan=False),
    st.booleans(),
    SERVE_TEXT,
    st.fixed_dictionaries({"enabled": st.booleans(), "sizes": st.lists(st.integers(1, 64))}),
)
SERVE_KEYS = [
    "host",
    "seed",
    "max-model-len",
    "gpu-memory-utilization",
    "enforce-eager",
    "quantization",
    "additional-config",
    "trust-remote-code",
]
ENV_KEYS = ["FOO", "BAR_1", "OMP_NUM_THREADS", "NOTE", "HCCL_BUFFSIZE"]


@st.composite
def clusters(draw: st.DrawFn) -> Cluster:
    n_pre = draw(st.integers(1, 2))
    n_dec = draw(st.integers(1, 2))
    roles = ["prefill"] * n_pre + ["decode"] * n_dec
    ranktable = draw(st.booleans())
    connector = "LLMDataDistCMgrConnector" if ranktable else "MooncakeConnectorV1"
    nodes = []
    instances = []
    totals = {"prefill": 0, "decode": 0}
    for i, role in enumerate(roles):
        host = f"10.{i}.{draw(st.integers(0, 9))}.{i + 1}"
        node: dict[str, Any] = {"name": f"n{i}", "host": host}
        if draw(st.booleans()):
            node["nic"] = draw(st.sampled_from(["eth0", "enp23s0f3"]))
        nodes.append(node)
        inst: dict[str, Any] = {
            "name": f"i{i}",
            "role": role,
            "node": f"n{i}",
            "port": draw(st.integers(9000, 60000)),
        }
        serve = {
            k: draw(SERVE_VALUE)
            for k in draw(st.lists(st.sampled_from(SERVE_KEYS), unique=True, max_size=3))
        }
        if draw(st.booleans()):
            tp = draw(st.sampled_from([1, 2, 4]))
            local = draw(st.integers(1, 3))
            devices = draw(st.permutations(range(16)))[: tp * local]
            start = draw(st.integers(0, 3))
            inst["dp"] = {
                "size": start + local + draw(st.integers(0, 2)),
                "local": local,
                "rank_start": start,
                "address": draw(st.sampled_from([host, "1.2.3.4"])),
                "rpc_port": draw(st.integers(1000, 2000)),
            }
            if tp != 1 or draw(st.booleans()):
                serve["tensor-parallel-size"] = tp
        elif draw(st.booleans()):
            devices = list(range(16))
        else:
            devices = draw(st.lists(st.integers(0, 15), unique=True, min_size=1, max_size=15))
        totals[role] += len(devices)
        inst["devices"] = devices
        inst["serve"] = serve
        env_keys = draw(st.lists(st.sampled_from(ENV_KEYS), unique=True, max_size=2))
        inst["env"] = {k: draw(ENV_TEXT) for k in env_keys}
        kv: dict[str, Any] = {"kv_connector": connector, "kv_port": str(36000 + i)}
        if draw(st.booleans()):
            kv["kv_role"] = "kv_producer" if role == "prefill" else "kv_consumer"
        if draw(st.booleans()):
            kv["kv_connector_extra_config"] = {"prefill": {"dp_size": 2, "tp_size": 8}}
        inst["kv_transfer"] = kv
        instances.append(inst)
    env: dict[str, str] = {"HCCL_IF_IP": "{node.ip}"}
    if all("nic" in n for n in nodes) and draw(st.booleans()):
        env["GLOO_SOCKET_IFNAME"] = "{node.nic}"
    for key in draw(st.lists(st.sampled_from(ENV_KEYS), unique=True, max_size=3)):
        env[key] = draw(ENV_TEXT)
    data: dict[str, Any] = {
        "cluster": {"name": "gen"},
        "nodes": nodes,
        "model": {"path": "/weights/m", "served_name": draw(st.sampled_from(["m", "a b"]))},
        "env": env,
        "serve": {
            k: draw(SERVE_VALUE)
            for k in draw(st.lists(st.sampled_from(SERVE_KEYS), unique=True, max_size=4))
        },
        "instances": instances,
    }
    if ranktable:
        data["env"]["DISAGGREGATED_PREFILL_RANK_TABLE_PATH"] = "{ranktable.path}"
        data["ranktable"] = {
            "path": "/rt/ranktable.json",
            "prefill_device_count": totals["prefill"],
            "decode_device_count": totals["decode"],
        }
    if draw(st.booleans()):
        proxy: dict[str, Any] = {
            "node": "n0",
            "port": 8080,
            "host": draw(st.sampled_from([nodes[0]["host"], "0.0.0.0"])),
        }
        if draw(st.booleans()):
            proxy["args"] = {"max-retries": draw(st.integers(1, 9))}
        if draw(st.booleans()):
            proxy["env"] = {"OPENAI_API_KEY": draw(ENV_TEXT)}
        data["proxy"] = proxy
    spec = parse_spec(data, "generated")
    return loads(dump_spec(spec), source="generated")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(clusters())
@pytest.mark.slow
def test_round_trip_property(original: Cluster) -> None:
    result = import_scripts(render_all(original))
    cluster = loads(dump_spec(result.spec))
    assert _procs(cluster, names=False) == _procs(original, names=False)
    assert _proxy(cluster) == _proxy(original)


def test_templated_dp_script_is_reported_not_crashed() -> None:
    script = (
        'local_ip="192.0.0.1"\nexport HCCL_IF_IP=$local_ip\n'
        "export ASCEND_RT_VISIBLE_DEVICES=$1\n"
        "vllm serve /w --host 0.0.0.0 --port $2 --data-parallel-size $3 \\\n"
        "  --data-parallel-rank $4 --max_model_len 100 --kv-transfer-config \\\n"
        """  '{"kv_connector": "MooncakeConnectorV1", "kv_role": "kv_producer"}'\n"""
    )
    result = import_scripts({"run_dp_template.sh": script})
    assert (
        "run_dp_template.sh: line 3: $1 is a script argument (a template like"
        " run_dp_template.sh); kept as text"
    ) in result.warnings
    assert any("data-parallel flags are not numbers" in w for w in result.warnings)
    assert result.spec.serve["max-model-len"] == 100  # underscores read as dashes
    assert result.spec.instances[0].role == "prefill"


def test_a_missing_decode_script_is_said() -> None:
    result = import_scripts(_read("runbook-prefill.sh", "runbook-proxy.sh"))
    assert missing_scripts(result.warnings) == [
        "no decode script: runbook-prefill.sh starts only prefill instances; add the decode "
        "script too (its --kv-transfer-config has kv_role kv_consumer)"
    ]
    both = import_scripts(_read("runbook-prefill.sh", "runbook-decode.sh"))
    assert missing_scripts(both.warnings) == []
