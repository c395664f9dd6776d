"""Terminal escape sequences from a node or a server never reach the operator's terminal
through the CLI (issue 13 item 9): ``pdtui nodes`` (the node's hostname), ``pdtui logs``,
``pdtui status`` (finding lines) and ``pdtui prompt`` (answers and error bodies) print them as
``\\x1b`` text; ``--raw`` (logs, prompt) passes the bytes on when asked.

Fake nodes over real SSH at 127.0.102.*; the prompt goes to a real HTTP server on 127.0.0.1.
The payload carries OSC 52 (clipboard write), a title change, a screen clear and a BEL.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from simdata import runbook_sim

from pdtui import cluster as cl
from pdtui.launch.control import launchables
from pdtui.launch.run import run_dir
from pdtui.sim.rig import Simulator

#: OSC 52 writing "pwned" to the clipboard, a window title, a screen clear and a BEL.
EVIL = "\x1b]52;c;cHduZWQ=\x07\x1b]0;owned\x07\x1b[2J\x07"
SHOWN = "\\x1b]52;c;cHduZWQ=\\x07"


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[Simulator]:
    async with runbook_sim(tmp_path, "127.0.102") as s:
        yield s


async def pdtui(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pdtui", *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def assert_escaped(text: str) -> None:
    assert "\x1b" not in text and "\x07" not in text, repr(text)
    assert SHOWN in text, text


def plant_log(sim: Simulator, cluster: cl.Cluster) -> str:
    """A decode log with the payload in an error line (a known fingerprint) and plain lines."""
    item = next(i for i in launchables(cluster) if i.node == "decode-0")
    d = Path(run_dir(cluster.node(item.node), cluster.name, item.name))
    d.mkdir(parents=True, mode=0o700)
    d.parent.chmod(0o700)
    (d / "pid").write_text("999999\n")
    (d / "run_id").write_text("0123456789abcdef\n")
    (d / "out.log").write_text(
        f"INFO start {EVIL}\nERROR NPU out of memory {EVIL}\nINFO last {EVIL}\n"
    )
    return item.name


@pytest.mark.slow
async def test_nodes_shows_a_hostile_hostname_escaped(sim: Simulator) -> None:
    fake = sim.dir / "nodes" / "decode-0" / "bin" / "hostname"
    fake.write_text(f"#!/bin/sh\nprintf '%s\\n' {shlex.quote(EVIL)}\n")
    fake.chmod(0o755)
    _rc, out, err = await pdtui("nodes", str(sim.cluster_file))
    assert_escaped(out + err)
    _rc, out, _ = await pdtui("nodes", str(sim.cluster_file), "--json")
    # JSON escapes control characters itself; the value arrives intact for scripts
    assert "\x1b" not in out
    assert [n["hostname"] for n in json.loads(out)["nodes"]] == ["prefill-0", EVIL]


@pytest.mark.slow
async def test_logs_and_status_escape_log_lines_unless_raw(sim: Simulator) -> None:
    cluster = cl.load(sim.cluster_file)
    name = plant_log(sim, cluster)
    _rc, out, err = await pdtui("logs", str(sim.cluster_file), name)
    assert_escaped(out + err)
    _rc, out, _ = await pdtui("logs", str(sim.cluster_file), name, "--raw")
    assert f"INFO last {EVIL}" in out
    _rc, out, err = await pdtui("status", str(sim.cluster_file))
    assert "NPU out of memory" in out
    assert_escaped(out + err)


class _Evil:
    """An OpenAI-style server answering with the payload: streamed, or as an error."""

    def __init__(self, status: int) -> None:
        self.status = status

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(x.split(b":")[1])
            for x in head.split(b"\r\n")
            if x.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
        if self.status == 200:
            event = json.dumps({"choices": [{"text": EVIL, "index": 0, "finish_reason": "stop"}]})
            body = f"data: {event}\n\ndata: [DONE]\n\n".encode()
        else:
            body = f"upstream broke {EVIL}".encode()
        writer.write(
            f"HTTP/1.1 {self.status} X\r\nContent-Length: {len(body)}\r\n"
            "Content-Type: text/event-stream\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        writer.close()


@pytest.mark.parametrize("status", [200, 500])
@pytest.mark.slow
async def test_prompt_escapes_answers_and_error_bodies_unless_raw(
    tmp_path: Path, status: int
) -> None:
    cluster = tmp_path / "c.toml"
    cluster.write_text(
        '[cluster]\nname = "c"\n[[nodes]]\nname = "n1"\nhost = "127.0.0.1"\n'
        '[model]\npath = "/m"\nserved_name = "m"\n'
    )
    srv = await asyncio.start_server(_Evil(status), "127.0.0.1", 0)
    url = f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}"
    try:
        _rc, out, err = await pdtui("prompt", str(cluster), "hi", "--url", url)
        assert_escaped(out + err)
        _rc, out, err = await pdtui("prompt", str(cluster), "hi", "--url", url, "--raw")
        assert EVIL in out + err
    finally:
        srv.close()
