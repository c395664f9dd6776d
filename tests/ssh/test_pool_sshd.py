"""SshPool end to end against a real OpenSSH sshd on loopback (skipped without sshd/root)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import socket
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest
from sshd_rig import SshdRig, process_gone

from pdtui.ssh import (
    CommandResult,
    CommandTimeout,
    HostKeyStore,
    HostKeyUnknown,
    NodeState,
    SshPool,
    SshTarget,
    Unreachable,
)

pytestmark = pytest.mark.sshd


def store_for(tmp_path: Path, *rigs: SshdRig) -> HostKeyStore:
    kh = tmp_path / "known_hosts"
    for rig in rigs:
        rig.write_known_hosts(kh)
    return HostKeyStore([kh], tmp_path / "pdtui_known_hosts")


@pytest.fixture
def user_dir(sshd_node: SshdRig) -> Iterator[Path]:
    """A scratch directory the rig's login user can write (pytest's tmp_path is root-only)."""
    d = Path(tempfile.mkdtemp(prefix="pdtui-sshd-"))
    pw = pwd.getpwnam(sshd_node.user)
    os.chown(d, pw.pw_uid, pw.pw_gid)
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


async def test_unknown_host_key_fingerprint_and_trust(sshd_node: SshdRig, tmp_path: Path) -> None:
    expected = asyncssh.read_public_key(str(sshd_node.host_key_path) + ".pub").get_fingerprint(
        "sha256"
    )
    save = tmp_path / "kh"
    t = sshd_node.target("n1")
    async with SshPool(HostKeyStore([], save)) as pool:
        with pytest.raises(HostKeyUnknown) as ei:
            await pool.run(t, "true")
        assert ei.value.fingerprint == expected
        _, fp, key = await pool.fetch_host_key(t)
        assert fp == expected
        pool.trust_host_key(t, key, save=True)
        r = await pool.run(t, "id -un")
        assert r.stdout.strip() == sshd_node.user
    assert stat.S_IMODE(save.stat().st_mode) == 0o600


@pytest.mark.slow
async def test_100_commands_behind_max_sessions_10(sshd_node: SshdRig, tmp_path: Path) -> None:
    store = store_for(tmp_path, sshd_node)
    for channels in (4, 10, 32):
        async with SshPool(store, channels_per_node=channels) as pool:
            t = sshd_node.target("n1")
            await pool.connect(t)
            t0 = time.monotonic()
            results = await asyncio.gather(*(pool.run(t, f"echo {i}") for i in range(100)))
            elapsed = time.monotonic() - t0
            assert [r.stdout for r in results] == [f"{i}\n" for i in range(100)]
            assert all(r.exit_status == 0 for r in results)
            print(
                f"\n100 cmds, channels_per_node={channels}: {elapsed:.2f}s, "
                f"refused opens retried: {pool.stats.channel_open_retries}"
            )
            assert elapsed < 10


async def test_jump_through_bastion_sshd(
    sshd_node: SshdRig, sshd_bastion: SshdRig, tmp_path: Path
) -> None:
    store = store_for(tmp_path, sshd_node, sshd_bastion)
    async with SshPool(store) as pool:
        targets = [
            sshd_node.target(f"n{i}", addr, jump=(sshd_bastion.hop(),))
            for i, addr in enumerate(sshd_node.addresses)
        ]
        res = await pool.run_all(targets, "echo $SSH_CONNECTION")
        for t in targets:
            r = res[t.name]
            assert isinstance(r, CommandResult), r
            assert r.stdout.split()[2:] == [t.host, str(sshd_node.port)]
        assert pool.state("jump:" + sshd_bastion.hop()).state is NodeState.READY
    log = sshd_bastion.log_text()
    assert log.count("Accepted publickey") >= 1
    assert "127.0.2.1" in log  # the bastion opened the direct-tcpip channel


async def test_bastion_permit_open_refusal_is_clear(
    sshd_node: SshdRig, sshd_bastion: SshdRig, tmp_path: Path
) -> None:
    store = store_for(tmp_path, sshd_node, sshd_bastion)
    async with SshPool(store) as pool:
        t = SshTarget(
            "far",
            "127.0.2.99",
            sshd_node.port,
            sshd_node.user,
            (str(sshd_node.client_key_path),),
            jump=(sshd_bastion.hop(),),
            ssh_config=None,
            connect_timeout=3,
        )
        with pytest.raises(Unreachable) as ei:
            await pool.run(t, "true")
        assert "far:" in str(ei.value) and "jump host" in str(ei.value)


@pytest.mark.slow
async def test_unreachable_nodes_do_not_delay_sshd_node(sshd_node: SshdRig, tmp_path: Path) -> None:
    hole = socket.socket()
    hole.bind(("127.0.2.50", 0))
    hole.listen(4)
    refused_port = sshd_node.port  # nothing listens on 127.0.2.51
    try:
        targets = [
            sshd_node.target("ok"),
            sshd_node.target("refused", "127.0.2.51", port=refused_port, connect_timeout=1.0),
            sshd_node.target("hole", "127.0.2.50", port=hole.getsockname()[1], connect_timeout=1.0),
        ]
        async with SshPool(store_for(tmp_path, sshd_node)) as pool:
            t0 = time.monotonic()
            res = await pool.run_all(targets, "echo up")
            elapsed = time.monotonic() - t0
        ok = res["ok"]
        assert isinstance(ok, CommandResult) and ok.stdout == "up\n" and ok.duration < 0.9
        assert isinstance(res["refused"], Unreachable)
        assert isinstance(res["hole"], Unreachable)
        assert elapsed < 2.5
    finally:
        hole.close()


@pytest.mark.slow
async def test_timeout_quoting_put_stream_forward(
    sshd_node: SshdRig, tmp_path: Path, user_dir: Path
) -> None:
    t = sshd_node.target("n1", command_timeout=5)
    async with SshPool(store_for(tmp_path, sshd_node)) as pool:
        # command timeout
        with pytest.raises(CommandTimeout):
            await pool.run(t, "sleep 2", timeout=0.3)

        # quoting through a real login shell
        marker = user_dir / "pwned"
        values = ["a b", "it's", '"', f"$(touch {marker})", f"; touch {marker}", "x\ny", "*", ""]
        r = await pool.run(t, ["printf", "%s\\0", *values])
        assert r.stdout.split("\0")[:-1] == values
        assert not marker.exists()

        # atomic put over SFTP (posix-rename onto an existing file) and via the shell recipe
        dest = user_dir / "ranktable.json"
        await pool.put(t, str(dest), b"v1", mode=0o640)
        await pool.put(t, str(dest), b'{"v": 2}', mode=0o644)
        assert dest.read_bytes() == b'{"v": 2}' and stat.S_IMODE(dest.stat().st_mode) == 0o644
        await pool.put(t, str(dest), b"v3", mode=0o600, use_sftp=False)
        assert dest.read_bytes() == b"v3" and stat.S_IMODE(dest.stat().st_mode) == 0o600
        assert [p.name for p in user_dir.iterdir()] == ["ranktable.json"]

        # stream + cancel closes the channel; the remote loop dies of SIGPIPE
        pidfile = user_dir / "pid"
        got: list[str] = []

        async def consume() -> None:
            async with pool.stream(
                t, f"echo $$ > {pidfile}; while true; do echo tick; sleep 0.05; done"
            ) as s:
                async for line in s:
                    got.append(line)

        task = asyncio.create_task(consume())
        while len(got) < 3:
            await asyncio.sleep(0.02)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        pid = int(pidfile.read_text())
        assert await process_gone(pid), "remote loop still running after the stream was cancelled"

        # forward to a TCP service reachable from the node
        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"echo:" + await reader.readline())
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        try:
            port = server.sockets[0].getsockname()[1]
            async with await pool.forward(t, "127.0.0.1", port) as fwd:
                reader, writer = await asyncio.open_connection("127.0.0.1", fwd.local_port)
                writer.write(b"ping\n")
                await writer.drain()
                assert await reader.readline() == b"echo:ping\n"
                writer.close()
        finally:
            server.close()
            await server.wait_closed()
