"""The simulator's tool server answers exactly as the Python tool does, without a Python start."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from pdtui.sim.faults import apply_fault
from pdtui.sim.state import build_state, load_state, save_state
from pdtui.sim.tools import sync_tools
from pdtui.sim.toolserver import ToolServer

CALLS = [
    ["hccn_tool", "-i", "3", "-link", "-g"],
    ["hccn_tool", "-i", "2", "-ip", "-g"],  # no-ip fault: stderr + rc 13
    ["hccn_tool", "-i", "0", "-lldp", "-g"],
    ["hccn_tool", "-i", "1", "-hccs_ping", "-g", "address", "192.26.3.198"],
    ["hccn_tool", "-i", "99", "-link", "-g"],
    ["npu-smi", "info"],
    ["npu-smi", "info", "-t", "spod-info", "-i", "7", "-c", "1"],
    ["hostname", "-I"],
    ["hccn_tool", "-i", "0", "-link", "-g", 'it\'s "odd" $(x)\nline'],
]


@pytest.fixture
def sim_dir(tmp_path: Path) -> Path:
    state = build_state(
        [("prefill-0", "172.22.0.218", "A3", 16), ("decode-0", "172.22.0.155", "A3", 16)],
        latency_ms=0,
    )
    apply_fault(state, "prefill-0:2:no-ip")
    save_state(state, tmp_path / "state.json")
    sync_tools(state, tmp_path / "state.json", tmp_path / "nodes")
    return tmp_path


async def call(sim_dir: Path, argv: list[str]) -> tuple[int, bytes, bytes]:
    proc = await asyncio.create_subprocess_exec(
        str(sim_dir / "nodes" / "prefill-0" / "bin" / argv[0]),
        *argv[1:],
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={"PATH": os.environ["PATH"]},
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out, err


@pytest.mark.slow
async def test_server_answers_byte_for_byte_like_the_python_tool(sim_dir: Path) -> None:
    direct = [await call(sim_dir, argv) for argv in CALLS]  # no server yet: Python fallback
    server = ToolServer(sim_dir / "state.json")
    await server.start()
    try:
        served = [await call(sim_dir, argv) for argv in CALLS]
    finally:
        await server.stop()
    assert server.calls == len(CALLS)
    assert served == direct
    assert direct[1][0] == 13 and b"no ip was preset" in direct[1][2]


async def test_a_stale_port_file_falls_back_to_the_python_tool(sim_dir: Path) -> None:
    (sim_dir / "toolserver.port").write_text("1\n")  # nothing listens on port 1
    rc, out, _err = await call(sim_dir, ["hccn_tool", "-i", "3", "-link", "-g"])
    assert (rc, out) == (0, b"link status: UP\n")


@pytest.mark.slow
async def test_a_hanging_tool_never_answers_until_killed(sim_dir: Path) -> None:
    state = load_state(sim_dir / "state.json")
    apply_fault(state, "prefill-0:tool-hang=hccn_tool")
    save_state(state, sim_dir / "state.json")
    server = ToolServer(sim_dir / "state.json")
    await server.start()
    try:
        rc, out, _ = await call(sim_dir, ["npu-smi", "info", "-l"])  # only hccn_tool hangs
        assert rc == 0 and b"Total Count" in out
        proc = await asyncio.create_subprocess_exec(
            "timeout",
            "0.5",
            str(sim_dir / "nodes" / "prefill-0" / "bin" / "hccn_tool"),
            "-i",
            "0",
            "-link",
            "-g",
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await proc.communicate()
        assert proc.returncode == 124 and out == b""
    finally:
        await server.stop()
