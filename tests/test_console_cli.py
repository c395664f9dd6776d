"""``pdtui prompt`` as a subprocess against a loopback fake 1P1D (``--url``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_console import PD, free_port, start_pd

from pdtui.sim import textgen

SAMPLE = str(Path(__file__).resolve().parents[1] / "pdtui" / "samples"
             / "deepseek-v3.2-a3-1p1d.toml")


@pytest.fixture(scope="module")
def pd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PD]:
    with start_pd(tmp_path_factory.mktemp("pdcli"), "127.0.19") as cluster:
        yield cluster


def prompt(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "pdtui", "prompt", *args], capture_output=True,
                          text=True, timeout=30, env=env, stdin=subprocess.DEVNULL)


def test_streams_text_then_a_status_line(pd: PD) -> None:
    r = prompt(SAMPLE, "Who are you?", "--url", pd.url, "--max-tokens", "12")
    assert r.returncode == 0, r.stderr
    text, status = r.stdout.rstrip("\n").rsplit("\n", 1)
    assert text == textgen.reply_text("Who are you?", 12)
    assert status.startswith("TTFT ") and " tok/s · 4+12 tokens · HTTP 200" in status


def test_chat_no_stream_json(pd: PD) -> None:
    r = prompt(SAMPLE, "Who are you?", "--url", pd.url, "--chat", "--no-stream",
               "--max-tokens", "5", "--json", "--temperature", "0.5")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["url"] == pd.url + "/v1/chat/completions"
    assert data["status"] == 200 and data["error"] is None and data["ttft"] is None
    assert data["completion_tokens"] == 5 and data["prompt_tokens"] == 8
    assert data["text"] and data["finish_reason"] == "length"


def test_error_response_exits_1_with_status_and_body(pd: PD) -> None:
    r = prompt(SAMPLE, "Who are you?", "--url", pd.url, "--max-tokens", "100000")
    assert r.returncode == 1
    assert "error: HTTP 400: This model's maximum context length is 256" in r.stderr
    assert '"code":400}}' in r.stderr  # the raw body
    assert r.stdout.strip().endswith("HTTP 400")


def test_unreachable_url_exits_1() -> None:
    url = f"http://127.0.19.9:{free_port('127.0.19.9')}"
    r = prompt(SAMPLE, "hi", "--url", url, "--json")
    assert r.returncode == 1
    data = json.loads(r.stdout)
    assert data["status"] is None and f"cannot reach {url}/v1/completions" in data["error"]


def test_usage_and_config_errors_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[cluster]\n")
    assert prompt(str(bad), "hi", "--url", "http://127.0.0.1:1").returncode == 2
    assert prompt(SAMPLE, "hi", "--max-tokens", "0", "--url", "http://127.0.0.1:1"
                  ).returncode == 2
    assert prompt(SAMPLE, "hi", "--via", "carrier-pigeon").returncode == 2
    assert prompt(SAMPLE).returncode == 2
