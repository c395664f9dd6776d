"""The fake ``vllm serve``: start-up log, HTTP API shapes, faults, signals (real processes)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from procs import Proc, free_port

from pdtui.sim import textgen, vllm
from pdtui.sim.faults import apply_fault
from pdtui.sim.state import build_state, save_state

# --------------------------------------------------------------------------- helpers


def vllm_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "pdtui.sim.vllm", "serve", *args]


def sim_state(tmp: Path, *faults: str) -> Path:
    st = build_state(
        [("prefill-0", "172.22.0.218", "A3", 16), ("decode-0", "172.22.0.155", "A3", 16)],
        latency_ms=0,
    )
    for f in faults:
        apply_fault(st, f)
    path = tmp / "state.json"
    save_state(st, path)
    return path


STARTUP_ORDER = [
    "[parallel_state.py:",
    "Using model weights format ['*.safetensors']",
    "Loading safetensors checkpoint shards:   0% Completed",
    "Loading safetensors checkpoint shards: 100% Completed",
    "] Loading weights took ",
    "Loading model weights took ",
    "Available memory: ",
    "GPU KV cache size: ",
    "Maximum concurrency for ",
    "Graph capturing finished in ",
    "init engine (profile, create kv cache, warmup model) took ",
    "Starting vLLM API server 0 on http://0.0.0.0:",
    "Available routes are:",
    "Route: /v1/completions, Methods: POST",
    "INFO:     Started server process [",
    "INFO:     Waiting for application startup.",
    "INFO:     Application startup complete.",
]


# --------------------------------------------------------------------------- a running server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Proc, str]]:
    tmp = tmp_path_factory.mktemp("vllm")
    addr = "127.0.3.2"
    port = free_port(addr)
    proc = Proc(
        vllm_argv(
            "/root/.cache/weights/dpsk_w8a8",
            "--host",
            "0.0.0.0",
            "--port",
            str(port),
            "--served-model-name",
            "deepseek_v3.2",
            "--max-model-len",
            "64",
            "-tp",
            "2",
            "--enable-expert-parallel",
            "--trust-remote-code",
            "--enable-prompt-tokens-details",
            "--additional-config",
            '{"torchair_graph_config":{"enabled":true}}',
        ),
        {"PDTUI_SIM_LISTEN": addr},
        tmp / "vllm.log",
    )
    try:
        proc.wait_for("Application startup complete.")
        yield proc, f"http://{addr}:{port}"
    finally:
        proc.stop()


def test_startup_lines_in_reference_order(server: tuple[Proc, str]) -> None:
    proc, _ = server
    text = proc.text()
    pos = -1
    for needle in STARTUP_ORDER:
        i = text.find(needle, pos + 1)
        assert i > pos, f"{needle!r} missing or out of order:\n{text}"
        pos = i
    startup = text[: text.index("Application startup complete.")]
    assert "(APIServer pid=" in startup and "(EngineCore_DP0 pid=" in startup
    assert "(Worker_DP0_TP1_EP1 pid=" in startup
    assert (
        "rank 1 in world size 2 is assigned as DP rank 0, PP rank 0, TP rank 1, EP rank 1"
        in startup
    )
    # nothing but the access log / stats after the readiness line
    first = text.splitlines()[0]
    assert first.startswith("(APIServer pid=") and " INFO " in first and "[api_server.py:" in first


def test_health_models_and_metrics(server: tuple[Proc, str]) -> None:
    proc, base = server
    with httpx.Client(base_url=base) as c:
        r = c.get("/health")
        assert r.status_code == 200 and r.content == b""
        m = c.get("/v1/models").json()
        assert m["object"] == "list"
        d = m["data"][0]
        assert d["id"] == "deepseek_v3.2" and d["root"] == "/root/.cache/weights/dpsk_w8a8"
        assert d["max_model_len"] == 64 and d["owned_by"] == "vllm" and d["parent"] is None
        before = c.get("/metrics").text
        c.post("/v1/completions", json={"prompt": "count me", "max_tokens": 5})
        after = c.get("/metrics").text

    def val(text: str, name: str) -> float:
        for line in text.splitlines():
            if line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        raise AssertionError(name)

    assert val(after, "vllm:prompt_tokens_total") - val(before, "vllm:prompt_tokens_total") == 2
    assert (
        val(after, "vllm:generation_tokens_total") - val(before, "vllm:generation_tokens_total")
        == 5
    )
    for name in (
        "vllm:num_requests_running",
        "vllm:num_requests_waiting",
        "vllm:kv_cache_usage_perc",
        "vllm:prefix_cache_queries_total",
        "vllm:prefix_cache_hits_total",
        "vllm:time_to_first_token_seconds_count",
        "vllm:e2e_request_latency_seconds_count",
    ):
        val(after, name)
    assert 'finished_reason="length"' in after
    proc.wait_for('"GET /v1/models HTTP/1.1" 200 OK')


def test_completion_and_chat_non_stream(server: tuple[Proc, str]) -> None:
    _, base = server
    with httpx.Client(base_url=base) as c:
        r = c.post(
            "/v1/completions",
            json={
                "model": "deepseek_v3.2",
                "prompt": "Who are you?",
                "max_tokens": 12,
                "temperature": 0,
            },
        )
        body = r.json()
        assert r.status_code == 200 and body["object"] == "text_completion"
        assert body["id"].startswith("cmpl-")
        ch = body["choices"][0]
        assert ch["finish_reason"] == "length" and ch["text"] == textgen.reply_text(
            "Who are you?", 12
        )
        assert body["usage"]["prompt_tokens"] == 4 and body["usage"]["completion_tokens"] == 12
        assert body["usage"]["prompt_tokens_details"] == {"cached_tokens": 0}
        assert body["kv_transfer_params"] is None
        again = c.post("/v1/completions", json={"prompt": "Who are you?", "max_tokens": 12})
        assert again.json()["choices"][0]["text"] == ch["text"]
        r = c.post(
            "/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "hello"}], "max_tokens": 40},
            headers={"X-Request-Id": "abc"},
        )
        body = r.json()
        assert body["object"] == "chat.completion" and body["id"] == "chatcmpl-abc"
        msg = body["choices"][0]["message"]
        assert msg["role"] == "assistant" and msg["content"] and not msg["content"][0].isspace()
        assert body["choices"][0]["finish_reason"] in ("stop", "length")


def _events(text: str) -> list[str]:
    assert text.endswith("data: [DONE]\n\n")
    return [e.removeprefix("data: ") for e in text.split("\n\n") if e]


def test_streams(server: tuple[Proc, str]) -> None:
    _, base = server
    with httpx.Client(base_url=base) as c:
        r = c.post("/v1/completions", json={"prompt": "Stream it", "max_tokens": 6, "stream": True})
        assert r.headers["content-type"].startswith("text/event-stream")
        ev = _events(r.text)
        chunks = [json.loads(e) for e in ev[:-1]]
        assert ev[-1] == "[DONE]" and len(chunks) == 6
        assert all(ch["object"] == "text_completion" for ch in chunks)
        assert "".join(ch["choices"][0]["text"] for ch in chunks) == textgen.reply_text(
            "Stream it", 6
        )
        assert chunks[-1]["choices"][0]["finish_reason"] == "length"
        r = c.post(
            "/v1/chat/completions",
            json={
                "messages": [{"role": "user", "content": "hi"}],
                "max_tokens": 3,
                "stream": True,
                "stream_options": {"include_usage": True},
            },
        )
        chunks = [json.loads(e) for e in _events(r.text)[:-1]]
        assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
        assert chunks[0]["object"] == "chat.completion.chunk"
        assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 3
        assert chunks[-2]["choices"][0]["finish_reason"] == "length"


def test_max_model_len_400(server: tuple[Proc, str]) -> None:
    proc, base = server
    with httpx.Client(base_url=base) as c:
        r = c.post("/v1/completions", json={"prompt": "one two three", "max_tokens": 62})
        assert r.status_code == 400
        err = r.json()["error"]
        assert err["type"] == "BadRequestError" and err["code"] == 400
        assert "maximum context length is 64 tokens" in err["message"]
        assert "65 tokens (3 in the prompt, 62 in the completion)" in err["message"]
        assert (
            c.post(
                "/v1/completions", json={"prompt": "one two three", "max_tokens": 61}
            ).status_code
            == 200
        )
        r = c.post("/v1/completions", json={"model": "nope", "prompt": "x"})
        assert r.status_code == 404
    proc.wait_for('"POST /v1/completions HTTP/1.1" 400 Bad Request')


def test_prefill_role_answer_without_connector_is_plain(server: tuple[Proc, str]) -> None:
    _, base = server
    r = httpx.post(
        base + "/v1/completions",
        json={"prompt": "x y", "max_tokens": 1, "kv_transfer_params": {"do_remote_decode": True}},
    )
    assert r.json()["kv_transfer_params"] is None


# --------------------------------------------------------------------------- one-shot processes


@pytest.mark.slow
def test_sigterm_graceful(tmp_path: Path) -> None:
    addr = "127.0.3.3"
    proc = Proc(
        vllm_argv("m", "--port", str(free_port(addr))), {"PDTUI_SIM_LISTEN": addr}, tmp_path / "log"
    )
    proc.wait_for("Application startup complete.")
    assert proc.stop() == 0
    text = proc.text()
    i = text.index("Shutting down FastAPI HTTP server.")
    assert text.index("INFO:     Shutting down", i) < text.index(
        "INFO:     Application shutdown complete.", i
    )


@pytest.mark.parametrize(
    ("kind", "needle", "plog_needle"),
    [
        ("hccl-timeout", "Get_Socket_Timeout(EI0006): Getting socket times out.", None),
        ("oom", "ValueError: No available memory for the cache blocks.", None),
        # HCCL reports these only in the CANN plog; stdout has torch_npu's generic error
        (
            "port",
            "HCCL function error",
            "and specific port[16666] fail. Please check the port status",
        ),
        (
            "device-ip",
            "HCCL function error",
            "'device ip' is not set correctly, must be set when "
            "multi Server or HCCL INTRA ROCE ENABLE enabled",
        ),
        (
            "link-timeout",
            "HCCL function error",
            "wait socket establish timeout, role[0] rank[0] timeout[120 s]",
        ),
        ("api-died", "RuntimeError: Process ApiServer_0 (PID: ", None),
    ],
)
def test_crash_on_start(tmp_path: Path, kind: str, needle: str, plog_needle: str | None) -> None:
    state = sim_state(tmp_path, f"prefill-0:crash-on-start={kind}")
    addr = "127.0.3.4"
    proc = Proc(
        vllm_argv("m", "--port", str(free_port(addr))),
        {
            "PDTUI_SIM_LISTEN": addr,
            "PDTUI_SIM_STATE": str(state),
            "PDTUI_SIM_NODE": "prefill-0",
            "ASCEND_PROCESS_LOG_PATH": str(tmp_path / "ascend"),
        },
        tmp_path / "log",
    )
    assert proc.wait_exit() == 1
    text = proc.text()
    assert needle in text, text
    assert "Application startup complete." not in text
    assert "Starting vLLM API server" not in text
    plogs = list((tmp_path / "ascend" / "debug" / "plog").glob("plog-*.log"))
    if plog_needle is None:
        assert plogs == []
    else:
        assert len(plogs) == 1 and plog_needle not in text
        record = plogs[0].read_text().splitlines()[0]
        assert re.match(
            r"^\[ERROR\] HCCL\(\d+,python\):\d{4}-\d\d-\d\d-\d\d:\d\d:\d\d\.\d{3}"
            r"\.\d{3} \[\w+\.cc:\d+\] \[\d+\]",
            record,
        ), record
        assert plog_needle in plogs[0].read_text()
    if kind == "api-died":
        assert "died with exit code 1" in text
    if kind == "oom":
        assert text.index("Available memory") < text.index(needle)


def test_llmdatadist_needs_ranktable_env(tmp_path: Path) -> None:
    addr = "127.0.3.5"
    env = {k: v for k, v in os.environ.items() if k != "DISAGGREGATED_PREFILL_RANK_TABLE_PATH"}
    kv = json.dumps(
        {
            "kv_connector": "LLMDataDistCMgrConnector",
            "kv_role": "kv_producer",
            "kv_port": "20001",
            "engine_id": "0",
        }
    )
    log = tmp_path / "log"
    with open(log, "wb") as fh:
        p = subprocess.run(
            vllm_argv("m", "--port", str(free_port(addr)), "--kv-transfer-config", kv),
            env={**env, "PDTUI_SIM_LISTEN": addr, "PDTUI_SIM_VLLM_SPEED": "0"},
            stdout=fh,
            stderr=subprocess.STDOUT,
            timeout=20,
        )
    text = log.read_text()
    assert p.returncode == 1
    assert (
        "AssertionError: Please set path of rank_table to env variable "
        "DISAGGREGATED_PREFILL_RANK_TABLE_PATH"
    ) in text


@pytest.mark.slow
def test_llmdatadist_server_id_must_match(tmp_path: Path) -> None:
    rt = tmp_path / "ranktable.json"
    rt.write_text(
        json.dumps(
            {
                "version": "1.2",
                "server_count": "2",
                "status": "completed",
                "prefill_device_list": [
                    {
                        "server_id": "10.0.0.1",
                        "device_id": "0",
                        "device_ip": "29.1.1.100",
                        "cluster_id": "1",
                    }
                ],
                "decode_device_list": [],
            }
        )
    )
    addr = "127.0.3.6"
    kv = json.dumps(
        {
            "kv_connector": "LLMDataDistCMgrConnector",
            "kv_role": "kv_producer",
            "kv_port": "20001",
            "engine_id": "0",
        }
    )
    proc = Proc(
        vllm_argv("m", "--port", str(free_port(addr)), "--kv-transfer-config", kv),
        {
            "PDTUI_SIM_LISTEN": addr,
            "DISAGGREGATED_PREFILL_RANK_TABLE_PATH": str(rt),
            "VLLM_HOST_IP": "10.0.0.9",
        },
        tmp_path / "log",
    )
    assert proc.wait_exit() == 1
    assert (
        "Can't read the target server_id 10.0.0.9 and device_rank 0 from rank table" in proc.text()
    )


@pytest.mark.slow
def test_port_in_use_fault_and_real_busy_port(tmp_path: Path) -> None:
    state = sim_state(tmp_path, "decode-0:port-in-use")
    addr = "127.0.3.7"
    port = free_port(addr)
    proc = Proc(
        vllm_argv("m", "--port", str(port)),
        {"PDTUI_SIM_LISTEN": addr, "PDTUI_SIM_STATE": str(state), "PDTUI_SIM_NODE": "decode-0"},
        tmp_path / "log",
    )
    assert proc.wait_exit() == 1
    assert "OSError: [Errno 98] Address already in use" in proc.text()
    with socket.socket() as holder:
        holder.bind((addr, port))
        holder.listen()
        proc = Proc(
            vllm_argv("m", "--port", str(port)), {"PDTUI_SIM_LISTEN": addr}, tmp_path / "log2"
        )
        assert proc.wait_exit() == 1
    assert "OSError: [Errno 98] Address already in use" in proc.text()


@pytest.mark.slow
def test_slow_start(tmp_path: Path) -> None:
    state = sim_state(tmp_path, "prefill-0:slow-start=0.6")
    addr = "127.0.3.8"
    t0 = time.monotonic()
    proc = Proc(
        vllm_argv("m", "--port", str(free_port(addr))),
        {"PDTUI_SIM_LISTEN": addr, "PDTUI_SIM_STATE": str(state), "PDTUI_SIM_NODE": "prefill-0"},
        tmp_path / "log",
    )
    try:
        proc.wait_for("Application startup complete.")
        assert time.monotonic() - t0 >= 0.6
    finally:
        assert proc.stop() == 0


# --------------------------------------------------------------------------- in-process units


def test_parse_runbook_flags() -> None:
    a = vllm.parse_serve_args(
        [
            "/root/.cache/weights/dpsk_w8a8",
            "--host",
            "0.0.0.0",
            "--port=8000",
            "--tensor-parallel-size",
            "16",
            "--seed",
            "1024",
            "--quantization",
            "ascend",
            "--served-model-name",
            "deepseek_v3.2",
            "--max_model_len",
            "32768",
            "--enable-expert-parallel",
            "--trust-remote-code",
            "--no-enable-prefix-caching",
            "--gpu-memory-utilization",
            "0.92",
            "--additional-config",
            '{"torchair_graph_config":{"enabled":true}}',
            "--kv-transfer-config",
            '{"kv_connector": "LLMDataDistCMgrConnector",\n'
            '  "kv_role": "kv_producer", "kv_port": "20001"}',
            "--compilation-config",
            '{"cudagraph_mode":"FULL_DECODE_ONLY"}',
        ]
    )
    assert a.model == "/root/.cache/weights/dpsk_w8a8"
    assert a.int_("port", 0) == 8000 and a.int_("max-model-len", 0) == 32768
    assert a.flag("enable-expert-parallel") and a.flag("enable-prefix-caching", True) is False
    assert a.get("kv-transfer-config")["kv_role"] == "kv_producer"
    assert a.get("served-model-name") == ["deepseek_v3.2"]
    assert a.float_("gpu-memory-utilization", 0) == 0.92


def test_unknown_flag_is_an_argparse_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert vllm.main(["serve", "m", "--bogus-flag", "3"]) == 2
    err = capsys.readouterr().err
    assert "vllm serve: error: unrecognized arguments: --bogus-flag 3" in err
    assert vllm.main(["serve", "m", "--kv-transfer-config", "{nope"]) == 2
    assert "argument --kv-transfer-config: invalid loads value" in capsys.readouterr().err
    assert vllm.main(["serve", "m", "--trust-remote-code=yes"]) == 2


@pytest.mark.slow
def test_textgen_is_deterministic() -> None:
    a, fa = textgen.reply("Who are you?", 50)
    b, _ = textgen.reply("Who are you?", 80)
    assert a == b[: len(a)]
    assert fa in ("length", "stop")
    assert textgen.reply_text("p", None, seed=1) != textgen.reply_text("p", None, seed=2)
    toks, fin = textgen.reply("natural", None)
    assert fin == "stop" and toks[-1] in (".", "!") and 24 <= len(toks) <= 100
    assert textgen.count_tokens("Who are you?") == 4
    assert textgen.token_ids("a b") == textgen.token_ids("a  b")
