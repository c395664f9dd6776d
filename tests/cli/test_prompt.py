"""``pdtui prompt`` as a subprocess against a loopback fake 1P1D (``--url``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from procs import free_port
from test_console import PD, start_pd

from pdtui.sim import textgen

SAMPLE = str(
    Path(__file__).resolve().parents[2] / "pdtui" / "samples" / "deepseek-v3.2-a3-1p1d.toml"
)


@pytest.fixture(scope="module")
def pd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PD]:
    with start_pd(tmp_path_factory.mktemp("pdcli"), "127.0.19") as cluster:
        yield cluster


def prompt(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "pdtui", "prompt", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.slow
def test_streams_text_then_a_status_line(pd: PD) -> None:
    r = prompt(SAMPLE, "Who are you?", "--url", pd.url, "--max-tokens", "12")
    assert r.returncode == 0, r.stderr
    text, status = r.stdout.rstrip("\n").rsplit("\n", 1)
    assert text == textgen.reply_text("Who are you?", 12)
    assert status.startswith("TTFT ") and " tok/s · 4+12 tokens · HTTP 200" in status


@pytest.mark.slow
def test_chat_no_stream_json(pd: PD) -> None:
    r = prompt(
        SAMPLE,
        "Who are you?",
        "--url",
        pd.url,
        "--chat",
        "--no-stream",
        "--max-tokens",
        "5",
        "--json",
        "--temperature",
        "0.5",
    )
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["url"] == pd.url + "/v1/chat/completions"
    assert data["status"] == 200 and data["error"] is None and data["ttft"] is None
    assert data["completion_tokens"] == 5 and data["prompt_tokens"] == 8
    assert data["text"] and data["finish_reason"] == "length"


@pytest.mark.slow
def test_error_response_exits_1_with_status_and_body(pd: PD) -> None:
    r = prompt(SAMPLE, "Who are you?", "--url", pd.url, "--max-tokens", "100000")
    assert r.returncode == 1
    assert "error: HTTP 400: This model's maximum context length is 256" in r.stderr
    assert '"code":400}}' in r.stderr  # the raw body
    assert r.stdout.strip().endswith("HTTP 400")


@pytest.mark.slow
def test_unreachable_url_exits_1() -> None:
    url = f"http://127.0.19.9:{free_port('127.0.19.9')}"
    r = prompt(SAMPLE, "hi", "--url", url, "--json")
    assert r.returncode == 1
    data = json.loads(r.stdout)
    assert data["status"] is None and f"cannot reach {url}/v1/completions" in data["error"]


@pytest.mark.slow
def test_usage_and_config_errors_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[cluster]\n")
    assert prompt(str(bad), "hi", "--url", "http://127.0.0.1:1").returncode == 2
    assert prompt(SAMPLE, "hi", "--max-tokens", "0", "--url", "http://127.0.0.1:1").returncode == 2
    assert prompt(SAMPLE, "hi", "--via", "carrier-pigeon").returncode == 2
    assert prompt(SAMPLE).returncode == 2


@pytest.mark.slow
async def test_default_target_is_the_proxy_through_an_ssh_forward(tmp_path: Path) -> None:
    import asyncio

    from test_console import read_request

    from pdtui.cluster import load
    from pdtui.sim.rig import Simulator, runbook_spec

    sim = Simulator(
        runbook_spec(), tmp_path / "c.toml", latency_ms=0, address_prefix="127.0.20", port=0
    )
    bodies: list[dict[str, object]] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        bodies.append(json.loads(await read_request(reader)))
        body = json.dumps(
            {
                "object": "text_completion",
                "choices": [{"index": 0, "text": "via ssh", "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 2},
            }
        ).encode()
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            + f"content-length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        writer.close()

    async with sim:
        cluster = load(sim.cluster_file)
        assert cluster.spec.proxy is not None
        node = next(n for n in sim.nodes if n.name == cluster.spec.proxy.node)
        # stand in for the proxy at proxy.port on the proxy node's (loopback) address
        server = await asyncio.start_server(handler, node.listen_host, cluster.spec.proxy.port)
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "pdtui",
                "prompt",
                str(sim.cluster_file),
                "hi",
                "--no-stream",
                "--json",
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
            )
            out, errb = await asyncio.wait_for(proc.communicate(), 30)
        finally:
            server.close()
    assert proc.returncode == 0, errb.decode()
    data = json.loads(out)
    assert data["url"].startswith("http://127.0.0.1:") and data["text"] == "via ssh"
    assert bodies and bodies[0]["model"] == cluster.spec.model.served_name
