"""Launch plans: argv/env per process, the runbook's scripts, the Mooncake DP layout."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from pdtui.cluster import Cluster, load, loads
from pdtui.launch.plan import (
    plan_cluster,
    plan_instance,
    plan_proxy,
    render_all,
)

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = ROOT / "sample_clusters" / "deepseek-v3.2-a3-1p1d.toml"
MOONCAKE = ROOT / "sample_clusters" / "mooncake-a3-2p1d.toml"
FIXTURES = ROOT / "tests" / "fixtures" / "scripts"

RANKTABLE = "/vllm-workspace/vllm-ascend/examples/disaggregated_prefill_v1/ranktable.json"


def runbook_exports(ip: str) -> list[tuple[str, str]]:
    """The runbook scripts' exports, in the runbook's order, values resolved."""
    return [
        ("DISAGGREGATED_PREFILL_RANK_TABLE_PATH", RANKTABLE),
        ("HCCL_IF_IP", ip),
        ("GLOO_SOCKET_IFNAME", "enp23s0f3"),
        ("TP_SOCKET_IFNAME", "enp23s0f3"),
        ("HCCL_SOCKET_IFNAME", "enp23s0f3"),
        ("OMP_PROC_BIND", "false"),
        ("OMP_NUM_THREADS", "100"),
    ]


def runbook_kv(role: str) -> dict[str, object]:
    return {
        "kv_connector": "LLMDataDistCMgrConnector",
        "kv_buffer_device": "npu",
        "kv_role": role,
        "kv_parallel_size": 1,
        "kv_port": "20001",
        "engine_id": "0",
        "kv_connector_module_path": "vllm_ascend.distributed.llmdatadist_c_mgr_connector",
    }


def runbook_argv(gpu_util: str, extra: list[str], kv_role: str) -> list[str]:
    """The runbook's ``vllm serve`` words in the runbook's order (as intended: with the flag
    after the missing backslash); the kv JSON is compared parsed."""
    return [
        "vllm",
        "serve",
        "/root/.cache/weights/dpsk_w8a8",
        "--host",
        "0.0.0.0",
        "--port",
        "8000",
        "--tensor-parallel-size",
        "16",
        "--seed",
        "1024",
        "--quantization",
        "ascend",
        "--served-model-name",
        "deepseek_v3.2",
        "--max-num-seqs",
        "16",
        "--max-model-len",
        "32768",
        "--max-num-batched-tokens",
        "32768",
        "--enable-expert-parallel",
        "--trust-remote-code",
        "--no-enable-prefix-caching",
        "--gpu-memory-utilization",
        gpu_util,
        *extra,
        "--kv-transfer-config",
        json.dumps(runbook_kv(kv_role)),
    ]


def _without_served_name(argv: list[str]) -> list[str]:
    i = argv.index("--served-model-name")
    return argv[:i] + argv[i + 2 :]


def _exports(script: str) -> list[tuple[str, str]]:
    out = []
    for line in script.splitlines():
        if line.startswith("export "):
            key, _, value = line.removeprefix("export ").partition("=")
            out.append((key, shlex.split(value)[0] if value else ""))
    return out


def _normalise_kv(argv: list[str]) -> list[str]:
    i = argv.index("--kv-transfer-config")
    return [*argv[: i + 1], json.dumps(json.loads(argv[i + 1])), *argv[i + 2 :]]


@pytest.fixture(scope="module")
def runbook() -> Cluster:
    return load(RUNBOOK)


@pytest.fixture(scope="module")
def mooncake() -> Cluster:
    return load(MOONCAKE)


# --- the runbook -------------------------------------------------------------------------


def test_runbook_plan_has_one_prefill_then_one_decode(runbook: Cluster) -> None:
    plans = plan_cluster(runbook)
    assert [(p.name, p.role, p.node, p.host, p.port) for p in plans] == [
        ("prefill-0", "prefill", "prefill-0", "172.22.0.218", 8000),
        ("decode-0", "decode", "decode-0", "172.22.0.155", 8000),
    ]
    assert [p.url for p in plans] == ["http://172.22.0.218:8000", "http://172.22.0.155:8000"]
    assert all(p.dp_rank is None and p.devices == tuple(range(16)) for p in plans)


@pytest.mark.parametrize("index,ip", [(0, "172.22.0.218"), (1, "172.22.0.155")])
def test_runbook_scripts_export_exactly_the_runbooks_env(
    runbook: Cluster, index: int, ip: str
) -> None:
    plan = plan_cluster(runbook)[index]
    assert list(plan.env.items()) == runbook_exports(ip)
    assert _exports(plan.script()) == runbook_exports(ip)
    assert "ASCEND_RT_VISIBLE_DEVICES" not in plan.env  # 16 of 16 devices: none, as in the runbook


def test_runbook_prefill_flags_match_the_runbook_in_order(runbook: Cluster) -> None:
    plan = plan_cluster(runbook)[0]
    additional = [
        "--additional-config",
        '{"torchair_graph_config":{"enabled":true,"graph_batch_sizes":[16]}}',
    ]
    expected = runbook_argv("0.92", additional, "kv_producer")
    # pdtui writes --served-model-name next to --kv-transfer-config; everything else is in the
    # runbook's order.
    assert _normalise_kv(_without_served_name(plan.argv)) == _without_served_name(expected)
    assert plan.argv[plan.argv.index("--served-model-name") + 1] == "deepseek_v3.2"


def test_runbook_decode_flags_match_the_runbook_in_order(runbook: Cluster) -> None:
    plan = plan_cluster(runbook)[1]
    expected = runbook_argv("0.9", [], "kv_consumer")
    assert _normalise_kv(_without_served_name(plan.argv)) == _without_served_name(expected)
    assert plan.argv.count("--served-model-name") == 1


def test_runbook_proxy_matches_the_runbook_command(runbook: Cluster) -> None:
    proxy = plan_proxy(runbook)
    assert proxy is not None
    runbook_cmd = shlex.split((FIXTURES / "runbook-proxy.sh").read_text().replace("\\\n", " "))
    plural = {"--prefiller-port": "--prefiller-ports", "--decoder-port": "--decoder-ports"}
    assert proxy.argv == [plural.get(w, w) for w in runbook_cmd]
    assert (proxy.node, proxy.host, proxy.port, proxy.env) == (
        "prefill-0",
        "172.22.0.218",
        8080,
        {},
    )
    assert proxy.url == "http://172.22.0.218:8080"


def test_kv_transfer_config_is_valid_json_with_the_roles_kv_role(runbook: Cluster) -> None:
    for plan in plan_cluster(runbook):
        kv = json.loads(plan.argv[plan.argv.index("--kv-transfer-config") + 1])
        assert kv["kv_role"] == {"prefill": "kv_producer", "decode": "kv_consumer"}[plan.role]


@pytest.mark.parametrize(
    "sample,names",
    [
        ("deepseek-v3.2-a3-1p1d", ["prefill-0.sh", "decode-0.sh", "proxy.sh"]),
        (
            "mooncake-a3-2p1d",
            ["prefill-0.dp0.sh", "prefill-1.dp1.sh", "decode-1.dp31.sh", "proxy.sh"],
        ),
    ],
)
def test_rendered_scripts_match_fixtures(sample: str, names: list[str]) -> None:
    rendered = render_all(load(ROOT / "sample_clusters" / f"{sample}.toml"))
    for name in names:
        assert rendered[name] == (FIXTURES / sample / name).read_text(), name


# --- the Mooncake DP layout --------------------------------------------------------------


def test_mooncake_has_one_process_per_dp_rank(mooncake: Cluster) -> None:
    plans = plan_cluster(mooncake)
    counts = [sum(1 for p in plans if p.instance == i.name) for i in mooncake.instances]
    assert counts == [2, 2, 16, 16]
    assert [p.role for p in plans] == ["prefill"] * 4 + ["decode"] * 32
    for inst in ("prefill-0", "prefill-1"):
        ranks = [p for p in plans if p.instance == inst]
        assert [p.port for p in ranks] == [7100, 7101]
        assert [p.env["ASCEND_RT_VISIBLE_DEVICES"] for p in ranks] == [
            "0,1,2,3,4,5,6,7",
            "8,9,10,11,12,13,14,15",
        ]
    for inst, start in (("decode-0", 0), ("decode-1", 16)):
        ranks = [p for p in plans if p.instance == inst]
        assert [p.port for p in ranks] == list(range(7100, 7116))
        assert [p.env["ASCEND_RT_VISIBLE_DEVICES"] for p in ranks] == [str(d) for d in range(16)]
        assert [p.dp_rank for p in ranks] == list(range(start, start + 16))
        assert [p.devices for p in ranks] == [(d,) for d in range(16)]


def _flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_mooncake_dp_flags_follow_run_dp_template(mooncake: Cluster) -> None:
    plans = plan_cluster(mooncake)
    rank = next(p for p in plans if p.name == "decode-1.dp20")
    assert rank.port == 7104 and rank.node == "decode-1" and rank.host == "192.0.0.4"
    a = rank.argv
    # run_dp_template.sh: --host, --port $2, --data-parallel-size $3, --data-parallel-rank $4,
    # --data-parallel-address $5, --data-parallel-rpc-port $6
    i = a.index("--host")
    assert a[i : i + 12] == [
        "--host",
        "0.0.0.0",
        "--port",
        "7104",
        "--data-parallel-size",
        "32",
        "--data-parallel-rank",
        "20",
        "--data-parallel-address",
        "192.0.0.3",
        "--data-parallel-rpc-port",
        "12321",
    ]
    assert _flag(a, "--tensor-parallel-size") == "1"
    assert "--data-parallel-size-local" not in a and "--data-parallel-start-rank" not in a
    kv = json.loads(_flag(a, "--kv-transfer-config"))
    assert kv == mooncake.instance("decode-1").kv_transfer  # the role's dict, unchanged
    assert rank.env["HCCL_BUFFSIZE"] == "600"
    assert list(rank.env)[-1] == "ASCEND_RT_VISIBLE_DEVICES"
    prefill = next(p for p in plans if p.name == "prefill-1.dp1")
    assert _flag(prefill.argv, "--data-parallel-address") == "192.0.0.2"
    assert _flag(prefill.argv, "--tensor-parallel-size") == "8"
    assert prefill.env["HCCL_BUFFSIZE"] == "256"


def test_mooncake_proxy_lists_every_rank(mooncake: Cluster) -> None:
    proxy = plan_proxy(mooncake)
    assert proxy is not None
    a = proxy.argv
    hosts = a[a.index("--decoder-hosts") + 1 : a.index("--decoder-ports")]
    ports = a[a.index("--decoder-ports") + 1 :]
    assert len(hosts) == len(ports) == 32
    assert hosts == ["192.0.0.3"] * 16 + ["192.0.0.4"] * 16
    assert ports == [str(p) for p in range(7100, 7116)] * 2
    pre_h = a[a.index("--prefiller-hosts") + 1 : a.index("--prefiller-ports")]
    pre_p = a[a.index("--prefiller-ports") + 1 : a.index("--decoder-hosts")]
    assert pre_h == ["192.0.0.1", "192.0.0.1", "192.0.0.2", "192.0.0.2"]
    assert pre_p == ["7100", "7101", "7100", "7101"]


# --- rendering details ---------------------------------------------------------------------

SMALL = """
[cluster]
name = "small"
[defaults]
nic = "eth0"
[[nodes]]
name = "a"
host = "10.0.0.1"
[[nodes]]
name = "b"
host = "10.0.0.2"
ip = "192.168.0.2"
[model]
path = "/m"
served_name = "m"
[env]
HCCL_IF_IP = "{node.ip}"
NOTE = "two words and 'quotes' and $(hostname -I) and \\"dq\\""
[serve]
host = "0.0.0.0"
enforce-eager = true
enable-prefix-caching = false
additional-config = { a = [1, 2], b = { c = "x y" } }
[[instances]]
name = "p"
role = "prefill"
node = "a"
devices = "0-3"
port = 9000
kv_transfer = { kv_connector = "MooncakeConnectorV1", kv_port = "36000" }
[[instances]]
name = "d"
role = "decode"
node = "b"
devices = "0-15"
port = 9001
kv_transfer = { kv_connector = "MooncakeConnectorV1", kv_role = "kv_consumer" }
[instances.env]
EXTRA = ""
[proxy]
node = "a"
host = "0.0.0.0"
port = 8080
python = "/usr/bin/python3"
args = { max-retries = 5, log-level = "DEBUG", verbose = true, quiet = false }
env = { OPENAI_API_KEY = "s e c r e t" }
"""


@pytest.fixture()
def small() -> Cluster:
    return loads(SMALL)


def test_visible_devices_only_for_a_strict_subset(small: Cluster) -> None:
    p, d = plan_cluster(small)
    assert p.env["ASCEND_RT_VISIBLE_DEVICES"] == "0,1,2,3"
    assert "ASCEND_RT_VISIBLE_DEVICES" not in d.env
    assert d.host == "192.168.0.2"  # the data-plane ip, not the ssh host
    assert list(d.env) == ["HCCL_IF_IP", "NOTE", "EXTRA"]  # [env] order, then the instance's


def test_flag_values(small: Cluster) -> None:
    p = plan_instance(small, small.instance("p"))[0]
    a = p.argv
    assert a[:5] == ["vllm", "serve", "/m", "--host", "0.0.0.0"]
    assert "--enforce-eager" in a and _flag(a, "--enforce-eager") == "--additional-config"
    assert "--enable-prefix-caching" not in a
    assert _flag(a, "--additional-config") == '{"a":[1,2],"b":{"c":"x y"}}'
    kv = json.loads(_flag(a, "--kv-transfer-config"))
    assert list(kv.items()) == [
        ("kv_connector", "MooncakeConnectorV1"),
        ("kv_role", "kv_producer"),  # added for the role
        ("kv_port", "36000"),
    ]


def test_port_goes_first_without_host() -> None:
    cluster = loads(SMALL.replace('host = "0.0.0.0"\nenforce', "enforce"))
    a = plan_cluster(cluster)[0].argv
    assert a[3:5] == ["--port", "9000"]


def test_proxy_args_and_env(small: Cluster) -> None:
    proxy = plan_proxy(small)
    assert proxy is not None
    assert proxy.argv[:6] == [
        "/usr/bin/python3",
        "load_balance_proxy_server_example.py",
        "--host",
        "0.0.0.0",
        "--port",
        "8080",
    ]
    assert proxy.argv[6:] == [
        "--prefiller-hosts",
        "10.0.0.1",
        "--prefiller-ports",
        "9000",
        "--decoder-hosts",
        "192.168.0.2",
        "--decoder-ports",
        "9001",
        "--max-retries",
        "5",
        "--log-level",
        "DEBUG",
        "--verbose",
    ]
    assert proxy.env == {"OPENAI_API_KEY": "s e c r e t"}
    assert "export OPENAI_API_KEY='s e c r e t'" in proxy.script()


def test_no_proxy_section_gives_no_proxy_plan() -> None:
    text = SMALL[: SMALL.index("[proxy]")]
    assert plan_proxy(loads(text)) is None


def test_command_line_splits_back_to_env_and_argv(small: Cluster) -> None:
    for plan in plan_cluster(small):
        words = shlex.split(plan.command_line())
        assert words[0] == "env"
        n = len(plan.env)
        assert dict(w.split("=", 1) for w in words[1 : n + 1]) == plan.env
        assert words[n + 1 :] == plan.argv


def test_script_shape(small: Cluster) -> None:
    script = plan_cluster(small)[0].script()
    lines = script.splitlines()
    assert lines[0] == "#!/bin/bash" and lines[1] == ""
    assert lines[2] == "export HCCL_IF_IP=10.0.0.1"
    assert lines[3] == (
        "export NOTE='two words and '\"'\"'quotes'\"'\"' and $(hostname -I) and \"dq\"'"
    )
    cmd = lines[lines.index("vllm serve /m \\") :]
    assert all(line.endswith(" \\") for line in cmd[:-1])
    assert all(line.startswith("--") for line in cmd[1:])
    assert cmd[-1].startswith("--kv-transfer-config '{")


def _fake_vllm(tmp_path: Path) -> dict[str, str]:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    recorder = bindir / "vllm"
    recorder.write_text(
        "#!/usr/bin/env python3\n"
        "import json, os, sys\n"
        "keys = ['HCCL_IF_IP', 'NOTE', 'EXTRA', 'ASCEND_RT_VISIBLE_DEVICES',\n"
        "        'DISAGGREGATED_PREFILL_RANK_TABLE_PATH', 'OMP_NUM_THREADS']\n"
        "print(json.dumps({'argv': sys.argv[1:],\n"
        "                  'env': {k: os.environ[k] for k in keys if k in os.environ}}))\n"
    )
    recorder.chmod(0o755)
    return {"PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}", "HOME": str(tmp_path)}


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize("which", ["small", "runbook"])
def test_bash_runs_the_script_with_exactly_the_planned_argv_and_env(
    tmp_path: Path, which: str, small: Cluster, runbook: Cluster
) -> None:
    cluster = small if which == "small" else runbook
    env = _fake_vllm(tmp_path)
    for plan in plan_cluster(cluster):
        script = tmp_path / f"{plan.name}.sh"
        script.write_text(plan.script())
        out = subprocess.run(
            ["bash", str(script)], env=env, capture_output=True, text=True, check=True
        )
        got = json.loads(out.stdout)
        assert ["vllm", *got["argv"]] == plan.argv
        for key, value in got["env"].items():
            assert plan.env[key] == value
