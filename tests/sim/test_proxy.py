"""The fake PD proxy with fake vLLM instances: the runbook's 1P1D over real loopback sockets."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from procs import Proc, free_port
from test_vllm import sim_state, vllm_argv

from pdtui.sim import proxy as proxy_mod
from pdtui.sim import textgen
from pdtui.sim.faults import apply_fault, clear_faults
from pdtui.sim.state import modify_state

P_IP, D_IP = "172.22.0.218", "172.22.0.155"
P_ADDR, D_ADDR = "127.0.4.2", "127.0.4.3"

RUNBOOK_FLAGS = [
    "/root/.cache/weights/dpsk_w8a8",
    "--host",
    "0.0.0.0",
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
]


def kv_config(role: str) -> str:
    return json.dumps(
        {
            "kv_connector": "LLMDataDistCMgrConnector",
            "kv_buffer_device": "npu",
            "kv_role": role,
            "kv_parallel_size": 1,
            "kv_port": "20001",
            "engine_id": "0",
            "kv_connector_module_path": "vllm_ascend.distributed.llmdatadist_c_mgr_connector",
        },
        indent=2,
    )


def ranktable() -> dict[str, object]:
    def devs(ip: str, node: int, start: int) -> list[dict[str, str]]:
        return [
            {
                "server_id": ip,
                "device_id": str(d),
                "device_ip": f"29.1.{node}.{100 + d}",
                "super_pod_id": "0",
                "super_device_id": str(104857600 + d),
                "cluster_id": str(start + d),
            }
            for d in range(16)
        ]

    return {
        "version": "1.2",
        "server_count": "2",
        "prefill_device_list": devs(P_IP, 1, 1),
        "decode_device_list": devs(D_IP, 2, 17),
        "status": "completed",
    }


@dataclass
class Cluster:
    p: Proc
    d: Proc
    proxy: Proc
    url: str
    p_url: str
    d_url: str
    state: Path


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("pd")
    state = sim_state(tmp)
    rt = tmp / "ranktable.json"
    rt.write_text(json.dumps(ranktable(), indent=4))
    port = free_port(P_ADDR)
    d_port = free_port(D_ADDR)
    rpc = free_port(P_ADDR)
    amap = f"{P_IP}={P_ADDR},{D_IP}={D_ADDR}"
    common = {
        "DISAGGREGATED_PREFILL_RANK_TABLE_PATH": str(rt),
        "PDTUI_SIM_ADDR_MAP": amap,
        "PDTUI_SIM_STATE": str(state),
        "VLLM_ASCEND_LLMDD_RPC_PORT": str(rpc),
    }
    p = Proc(
        vllm_argv(
            *RUNBOOK_FLAGS,
            "--port",
            str(port),
            "--gpu-memory-utilization",
            "0.92",
            "--kv-transfer-config",
            kv_config("kv_producer"),
        ),
        {**common, "PDTUI_SIM_LISTEN": P_ADDR, "PDTUI_SIM_NODE": "prefill-0", "HCCL_IF_IP": P_IP},
        tmp / "p.log",
    )
    d = Proc(
        vllm_argv(
            *RUNBOOK_FLAGS,
            "--port",
            str(d_port),
            "--gpu-memory-utilization",
            "0.9",
            "--kv-transfer-config",
            kv_config("kv_consumer"),
        ),
        {**common, "PDTUI_SIM_LISTEN": D_ADDR, "PDTUI_SIM_NODE": "decode-0", "HCCL_IF_IP": D_IP},
        tmp / "d.log",
    )
    # run the proxy as a script file, as the simulator installs it
    script = tmp / "load_balance_proxy_server_example.py"
    shutil.copy(proxy_mod.__file__, script)
    pport = free_port(P_ADDR)
    px = Proc(
        [
            sys.executable,
            str(script),
            "--host",
            P_IP,
            "--port",
            str(pport),
            "--prefiller-hosts",
            P_IP,
            "--prefiller-port",
            str(port),
            "--decoder-hosts",
            D_IP,
            "--decoder-ports",
            str(d_port),
        ],
        {"PDTUI_SIM_ADDR_MAP": amap},
        tmp / "proxy.log",
    )
    try:
        for proc in (p, d, px):
            proc.wait_for("Application startup complete.")
        yield Cluster(
            p,
            d,
            px,
            f"http://{P_ADDR}:{pport}",
            f"http://{P_ADDR}:{port}",
            f"http://{D_ADDR}:{d_port}",
            state,
        )
    finally:
        for proc in (px, p, d):
            proc.stop()


@pytest.mark.slow
def test_instances_checked_the_ranktable(cluster: Cluster) -> None:
    assert (
        "local device info: server_id 172.22.0.218, device_id 0, device_ip 29.1.1.100"
        in cluster.p.text()
    )
    assert "server_id 172.22.0.155" in cluster.d.text()


def test_1p1d_completion_fetches_kv_from_prefiller(cluster: Cluster) -> None:
    before = cluster.p.text().count("sent to 127.0.4.3:")
    prompt = "Who are you?"
    r = httpx.post(
        cluster.url + "/v1/completions",
        json={"model": "deepseek_v3.2", "prompt": prompt, "max_tokens": 20, "temperature": 0},
        timeout=20,
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["choices"][0]["text"] == textgen.reply_text(prompt, 20)
    assert body["usage"]["prompt_tokens_details"] == {"cached_tokens": 0}
    # the prefiller served the fetch, the decoder linked to it first
    cluster.p.wait_for("Application startup complete.")
    assert cluster.p.text().count("sent to 127.0.4.3:") == before + 1
    assert "try link with remote, comm id: pd_comm_29.1.1.100_29.1.2.100" in cluster.d.text()
    assert "Linking success, comm id: pd_comm_29.1.1.100_29.1.2.100" in cluster.d.text()
    # same text straight from the decoder without PD
    direct = httpx.post(
        cluster.d_url + "/v1/completions", json={"prompt": prompt, "max_tokens": 20}
    ).json()
    assert direct["choices"][0]["text"] == body["choices"][0]["text"]


def test_prefiller_answers_with_kv_transfer_params(cluster: Cluster) -> None:
    r = httpx.post(
        cluster.p_url + "/v1/completions",
        headers={"X-Request-Id": "rid1"},
        json={
            "prompt": "hello there",
            "max_tokens": 1,
            "min_tokens": 1,
            "stream": False,
            "kv_transfer_params": {
                "do_remote_decode": True,
                "do_remote_prefill": False,
                "remote_engine_id": None,
                "remote_block_ids": None,
                "remote_host": None,
                "remote_port": None,
            },
        },
    )
    body = r.json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 1
    kvp = body["kv_transfer_params"]
    assert kvp["do_remote_prefill"] is True and kvp["do_remote_decode"] is False
    assert kvp["remote_host"] == P_IP and kvp["remote_engine_id"] == "0"
    assert kvp["remote_request_id"] == "cmpl-rid1-0" and kvp["remote_tp_size"] == "16"
    assert isinstance(kvp["remote_port"], int) and kvp["remote_block_ids"]


def test_1p1d_streaming_chat(cluster: Cluster) -> None:
    with httpx.stream(
        "POST",
        cluster.url + "/v1/chat/completions",
        json={
            "model": "deepseek_v3.2",
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 5,
            "stream": True,
            "stream_options": {"include_usage": True},
        },
        timeout=20,
    ) as r:
        assert r.headers["content-type"] == "text/event-stream; charset=utf-8"
        text = r.read().decode()
    events = [e.removeprefix("data: ") for e in text.split("\n\n") if e]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert (
        "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[:-1])
        == textgen.reply_text("user: hi\nassistant:", 5).lstrip()
    )
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["prompt_tokens_details"] == {"cached_tokens": 0}


def test_healthcheck_models_and_error_forwarding(cluster: Cluster) -> None:
    with httpx.Client(base_url=cluster.url, timeout=20) as c:
        assert c.get("/healthcheck").json() == {
            "status": "ok",
            "prefill_instances": 1,
            "decode_instances": 1,
            "request_num": 0,
        }
        assert c.get("/v1/models").json()["data"][0]["id"] == "deepseek_v3.2"
        r = c.post("/v1/completions", json={"prompt": "hi", "max_tokens": 40000})
        assert r.status_code == 400
        assert "maximum context length is 32768" in r.json()["error"]["message"]


@pytest.mark.slow
def test_kv_link_broken_fails_the_request(cluster: Cluster) -> None:
    with modify_state(cluster.state) as st:
        apply_fault(st, "decode-0:kv-link-broken")
    before = cluster.p.text().count("sent to")
    try:
        r = httpx.post(
            cluster.url + "/v1/completions",
            json={"prompt": "broken link", "max_tokens": 5},
            timeout=20,
        )
    finally:
        with modify_state(cluster.state) as st:
            clear_faults(st, kind="kv-link-broken")
    assert r.status_code == 500
    assert "Linking failed" in r.json()["error"]["message"]
    d = cluster.d.text()
    assert "is still in WAITING_FOR_REMOTE_KVS state." in d
    assert "Running: 0 reqs, Waiting: 1 reqs" in d
    assert "Linking failed, comm id: pd_comm_29.1.1.100_29.1.2.100" in d
    assert d.index("WAITING_FOR_REMOTE_KVS") < d.index("Linking failed")
    assert cluster.p.text().count("sent to") == before
    # cleared: works again
    r = httpx.post(
        cluster.url + "/v1/completions", json={"prompt": "broken link", "max_tokens": 5}, timeout=20
    )
    assert r.status_code == 200


# --------------------------------------------------------------------------- in-process


def test_cli_prefix_matching_and_count_check() -> None:
    a = proxy_mod.parse_args(
        ["--prefiller-port", "8000", "--decoder-port", "8000", "8001", "--decoder-hosts", "a", "b"]
    )
    assert a.prefiller_ports == [8000] and a.decoder_ports == [8000, 8001]
    assert a.host == "localhost" and a.port == 8000 and a.max_retries == 3
    assert a.retry_delay == 0.001
    with pytest.raises(
        ValueError, match="Number of prefiller hosts must match number of prefiller ports"
    ):
        proxy_mod.parse_args(["--prefiller-hosts", "a", "b"])


def test_script_count_error_exits_with_traceback(tmp_path: Path) -> None:
    script = tmp_path / "load_balance_proxy_server_example.py"
    shutil.copy(proxy_mod.__file__, script)
    p = subprocess.run(
        [sys.executable, str(script), "--decoder-hosts", "a", "b"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert p.returncode == 1
    assert "ValueError: Number of decoder hosts must match number of decoder ports" in p.stderr


async def test_unreachable_backend_gives_500() -> None:
    args = proxy_mod.parse_args(
        [
            "--prefiller-hosts",
            "10.9.9.9",
            "--prefiller-ports",
            "1",
            "--decoder-hosts",
            "10.9.9.8",
            "--decoder-ports",
            "1",
        ]
    )
    app = proxy_mod.Proxy(args).app()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://proxy"
    ) as c:
        r = await c.post("/v1/completions", json={"prompt": "x"})
        assert r.status_code == 500 and r.text == "Internal Server Error"
        r = await c.get("/v1/models")
        assert r.status_code == 503
        assert r.json() == {
            "error": "All backend instances failed to serve /v1/models",
            "failed": ["10.9.9.9:1", "10.9.9.8:1"],
        }


@pytest.mark.slow
def test_cached_tokens_injection() -> None:
    ev = b'data: {"choices": [], "usage": {"prompt_tokens": 3, "prompt_tokens_details": null}}'
    out = proxy_mod._fix_event(ev, 7)
    assert json.loads(out.removeprefix(b"data: "))["usage"]["prompt_tokens_details"] == {
        "cached_tokens": 7
    }
    assert proxy_mod._fix_event(b"data: [DONE]", 7) == b"data: [DONE]\n\n"
    token = b'data: {"choices": [{"text": "a"}]}'
    assert proxy_mod._fix_event(token, 7) == token + b"\n\n"
    body = json.loads(proxy_mod._fix_body(b'{"choices": [{}], "usage": {}}', 5))
    assert body["usage"]["prompt_tokens_details"] == {"cached_tokens": 5}
    assert proxy_mod.build_parser().parse_args([]).workers == 1
