"""sshd killed in the middle of a log tail and brought back: the tail resumes, nothing lost."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from procs import free_port
from sshd_rig import CLEAN_ENV, SSHD, SshdRig, sshd_unavailable_reason

from pdtui import cluster as cl
from pdtui.launch.run import tail
from pdtui.ssh import SshError
from pdtui.ssh.remote import pool_for

ADDRESS = "127.0.2.40"


def kill_sshd(proc: subprocess.Popen[bytes]) -> None:
    """The listener and every session it forked (what a crash or restart does)."""
    children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True)
    for pid in children.stdout.split():
        os.kill(int(pid), signal.SIGKILL)
    proc.kill()
    proc.wait(timeout=5)


@pytest.mark.slow
async def test_tail_resumes_at_its_offset_after_sshd_comes_back(tmp_path: Path) -> None:
    reason = sshd_unavailable_reason()
    if reason:
        pytest.skip(reason)
    port = free_port(ADDRESS)
    rig = SshdRig.start(tmp_path / "sshd", [ADDRESS], port=port)
    logdir = Path(tempfile.mkdtemp(prefix="pdtui-tail-"))
    logdir.chmod(0o755)
    log = logdir / "out.log"
    writer = subprocess.Popen(
        [
            "sh",
            "-c",
            f'i=0; while [ $i -lt 400 ]; do echo "line $i" >> {log}; i=$((i+1)); sleep 0.01; done',
        ]
    )
    try:
        known = rig.write_known_hosts(tmp_path / "known_hosts")
        cluster = cl.loads(f"""
[cluster]
name = "tail"
[[nodes]]
name = "n1"
host = "{ADDRESS}"
[nodes.ssh]
port = {port}
user = "{rig.user}"
identity_file = "{rig.client_key_path}"
known_hosts = "{known}"
connect_timeout = 3.0
[model]
path = "/m"
served_name = "m"
""")
        node = cluster.node("n1")
        got: list[str] = []
        offset = 0
        async with pool_for(cluster) as pool:
            async for line in tail(pool, node, str(log), 0):
                got.append(line.text)
                offset = line.offset
                if len(got) == 50:
                    break
            kill_sshd(rig.proc)  # type: ignore[arg-type]
            with pytest.raises(SshError):
                async for _ in tail(pool, node, str(log), offset):
                    pass
            await asyncio.sleep(0.5)  # lines keep coming while sshd is down
            rig.proc = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(rig.config_path)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=CLEAN_ENV,
            )
            deadline = time.monotonic() + 10
            while True:
                pool.reset("n1")
                try:
                    async for line in tail(pool, node, str(log), offset):
                        got.append(line.text)
                        if len(got) == 400:
                            break
                    break
                except SshError:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.2)
        assert got == [f"line {i}" for i in range(400)]  # nothing lost, nothing twice
    finally:
        writer.kill()
        rig.stop()
