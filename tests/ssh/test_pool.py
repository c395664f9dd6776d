"""pdtui.ssh.pool: SshPool against in-process SimNodeServer nodes (fast, no root needed)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from pdtui.sim.sshd import SimNodeServer
from pdtui.ssh import (
    AuthFailed,
    CommandRecord,
    CommandResult,
    CommandTimeout,
    ConnectionLostError,
    HostKeyChanged,
    HostKeyStore,
    HostKeyUnknown,
    NodeState,
    SshError,
    SshPool,
    SshTarget,
    Unreachable,
    backoff_delay,
)

SimFactory = Callable[..., Any]

QUOTING_VALUES = [
    "plain",
    "with space",
    "it's",
    'dq"uote',
    "$(touch {marker})",
    "`touch {marker}`",
    "; touch {marker}",
    "a && touch {marker} || true",
    "line1\nline2",
    "*",
    "~",
    "$HOME",
    "\\backslash",
    "",
    "ünïcødé ✓",
    "--flag=--x",
]


async def gone(pid: int, within: float = 3.0) -> bool:
    """True once ``pid`` no longer runs (zombies awaiting their reaper count as gone)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return True
        if fields[0] in ("Z", "X"):
            return True
        await asyncio.sleep(0.05)
    return False


def target_for(node: SimNodeServer, client_key: Path, **kw: Any) -> SshTarget:
    fields: dict[str, Any] = {
        "name": node.name,
        "host": node.listen_host,
        "port": node.port,
        "user": "root",
        "identity_files": (str(client_key),),
        "ssh_config": None,
        "connect_timeout": 3.0,
        "command_timeout": 10.0,
    }
    fields.update(kw)
    return SshTarget(**fields)


def trusted_store(tmp_path: Path, host_key_path: Path, *nodes: SimNodeServer) -> HostKeyStore:
    key = asyncssh.read_private_key(host_key_path).export_public_key().decode().strip()
    kh = tmp_path / "known_hosts"
    kh.write_text("".join(f"[{n.listen_host}]:{n.port} {key}\n" for n in nodes))
    return HostKeyStore([kh], tmp_path / "pdtui_known_hosts")


def test_backoff_schedule() -> None:
    assert [backoff_delay(n) for n in range(0, 8)] == [0, 1, 2, 4, 8, 16, 30, 30]


# -- host keys ---------------------------------------------------------------------------------


async def test_unknown_host_key_then_trust_once(
    sim_nodes: SimFactory, sim_keys: tuple[Path, Path], tmp_path: Path
) -> None:
    host_key_path, client_key = sim_keys
    node = await sim_nodes("n1", "127.0.1.1")
    t = target_for(node, client_key)
    expected = asyncssh.read_private_key(host_key_path).get_fingerprint("sha256")
    store = HostKeyStore([tmp_path / "user_kh"], tmp_path / "pdtui_kh")
    async with SshPool(store) as pool:
        with pytest.raises(HostKeyUnknown) as ei:
            await pool.run(t, "true")
        err = ei.value
        assert err.fingerprint == expected and expected.startswith("SHA256:")
        assert (err.host, err.port, err.algorithm) == ("127.0.1.1", node.port, "ssh-ed25519")
        assert expected in str(err) and str(err).startswith("n1: ")
        assert pool.state("n1").state is NodeState.FAILED
        # terminal: no automatic retry
        connects = pool.stats.connects
        with pytest.raises(HostKeyUnknown):
            await pool.run(t, "true")
        assert pool.stats.connects == connects

        alg, fp, key = await pool.fetch_host_key(t)
        assert (alg, fp) == ("ssh-ed25519", expected)
        pool.trust_host_key(t, key, save=False)
        assert (await pool.run(t, "echo hi")).stdout == "hi\n"
        assert pool.state("n1").state is NodeState.READY
    assert not (tmp_path / "pdtui_kh").exists()


async def test_trust_and_save_then_new_pool_connects(
    sim_nodes: SimFactory, sim_keys: tuple[Path, Path], tmp_path: Path
) -> None:
    _, client_key = sim_keys
    node = await sim_nodes("n1", "127.0.1.2")
    t = target_for(node, client_key)
    save = tmp_path / "state" / "known_hosts"
    async with SshPool(HostKeyStore([], save)) as pool:
        with pytest.raises(HostKeyUnknown) as ei:
            await pool.connect(t)
        assert ei.value.key is not None
        pool.trust_host_key(t, ei.value.key, save=True)
        await pool.connect(t)
    assert stat.S_IMODE(save.stat().st_mode) == 0o600
    assert save.read_text().startswith(f"[127.0.1.2]:{node.port} ssh-ed25519 ")
    async with SshPool(HostKeyStore([], save)) as pool:
        assert (await pool.run(t, ["echo", "ok"])).stdout == "ok\n"


@pytest.mark.parametrize("accept_new", [False, True])
async def test_changed_host_key_is_refused(
    sim_nodes: SimFactory, sim_keys: tuple[Path, Path], tmp_path: Path, accept_new: bool
) -> None:
    _, client_key = sim_keys
    new_key = asyncssh.generate_private_key("ssh-ed25519")
    node = await sim_nodes("n1", "127.0.1.3", host_key=new_key)
    old = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    kh = tmp_path / "known_hosts"
    kh.write_text(f"# header\n[127.0.1.3]:{node.port} {old}\n")
    save = tmp_path / "pdtui_kh"
    async with SshPool(HostKeyStore([kh], save, accept_new=accept_new)) as pool:
        t = target_for(node, client_key)
        with pytest.raises(HostKeyChanged) as ei:
            await pool.run(t, "true")
    err = ei.value
    assert err.fingerprint == new_key.get_fingerprint("sha256")
    assert (err.known_hosts_file, err.known_hosts_line) == (str(kh), 2)
    msg = str(err)
    assert "HOST KEY CHANGED" in msg and f"line 2 of {kh}" in msg and "\n" not in msg
    assert not save.exists()  # never accepted, never saved


async def test_accept_new_saves_unknown_keys(
    sim_nodes: SimFactory, sim_keys: tuple[Path, Path], tmp_path: Path
) -> None:
    _, client_key = sim_keys
    node = await sim_nodes("n1", "127.0.1.4")
    save = tmp_path / "kh"
    async with SshPool(HostKeyStore([], save, accept_new=True)) as pool:
        r = await pool.run(target_for(node, client_key), "echo $PDTUI_SIM_NODE")
        assert r.stdout == "n1\n"
    assert save.read_text().startswith(f"[127.0.1.4]:{node.port} ssh-ed25519 ")
    assert stat.S_IMODE(save.stat().st_mode) == 0o600


async def test_auth_failure_is_terminal(
    sim_nodes: SimFactory, sim_keys: tuple[Path, Path], tmp_path: Path
) -> None:
    host_key_path, client_key = sim_keys
    stranger = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    node = await sim_nodes("n1", "127.0.1.5", authorized_keys=stranger)
    async with SshPool(trusted_store(tmp_path, host_key_path, node)) as pool:
        t = target_for(node, client_key)
        with pytest.raises(AuthFailed) as ei:
            await pool.run(t, "true")
        assert "authorized_keys" in str(ei.value)
        n = pool.stats.connects
        with pytest.raises(AuthFailed):
            await pool.run(t, "true")
        assert pool.stats.connects == n
        assert pool.state("n1").retry_at is None


# -- jump hosts --------------------------------------------------------------------------------


async def test_multi_hop_jump_with_shared_hop_connections(
    sim_nodes: SimFactory, sim_keys: tuple[Path, Path], tmp_path: Path
) -> None:
    host_key_path, client_key = sim_keys
    hop1 = await sim_nodes("hop1", "127.0.1.21")
    hop2 = await sim_nodes("hop2", "127.0.1.22")
    a = await sim_nodes("a", "127.0.1.23")
    b = await sim_nodes("b", "127.0.1.24")
    store = trusted_store(tmp_path, host_key_path, hop1, hop2, a, b)
    jump = (f"root@127.0.1.21:{hop1.port}", f"127.0.1.22:{hop2.port}")
    async with SshPool(store) as pool:
        ta = target_for(a, client_key, jump=jump)
        tb = target_for(b, client_key, jump=jump)
        res = await pool.run_all([ta, tb], "echo $PDTUI_SIM_NODE")
        assert {k: v.stdout for k, v in res.items() if isinstance(v, CommandResult)} == {
            "a": "a\n",
            "b": "b\n",
        }
        # hop1 forwarded only to hop2; hop2 forwarded to both nodes
        assert set(hop1.forward_requests) == {("127.0.1.22", hop2.port)}
        assert set(hop2.forward_requests) == {("127.0.1.23", a.port), ("127.0.1.24", b.port)}
        # one shared connection per hop
        assert hop1.connections == 1 and hop2.connections == 1
        assert pool.state("jump:" + ",".join(jump)).state is NodeState.READY
        # the host key of a node behind the hops can be fetched through the tunnel
        _, fp, _ = await pool.fetch_host_key(ta)
        assert fp == asyncssh.read_private_key(host_key_path).get_fingerprint("sha256")


async def test_unknown_bastion_key_names_the_bastion(
    sim_nodes: SimFactory, sim_keys: tuple[Path, Path], tmp_path: Path
) -> None:
    host_key_path, client_key = sim_keys
    bastion = await sim_nodes(
        "bastion", "127.0.1.25", host_key=asyncssh.generate_private_key("ssh-ed25519")
    )
    node = await sim_nodes("n1", "127.0.1.26")
    store = trusted_store(tmp_path, host_key_path, node)
    async with SshPool(store) as pool:
        t = target_for(node, client_key, jump=(f"127.0.1.25:{bastion.port}",))
        with pytest.raises(HostKeyUnknown) as ei:
            await pool.run(t, "true")
        assert ei.value.host == "127.0.1.25" and ei.value.target is not None
        key = ei.value.key
        assert key is not None
        pool.trust_host_key(ei.value.target, key, save=False)
        pool.reset(t)
        assert (await pool.run(t, "echo ok")).stdout == "ok\n"


# -- failure isolation -------------------------------------------------------------------------


@pytest.mark.slow
async def test_unreachable_and_blackholed_nodes_do_not_delay_healthy_one(
    sim_nodes: SimFactory, sim_keys: tuple[Path, Path], tmp_path: Path
) -> None:
    host_key_path, client_key = sim_keys
    healthy = await sim_nodes("ok", "127.0.1.31")
    down = await sim_nodes("down", "127.0.1.32")
    await down.set_reachable(False)
    hole = socket.socket()
    hole.bind(("127.0.1.33", 0))
    hole.listen(16)  # accepts TCP, never says anything
    try:
        store = trusted_store(tmp_path, host_key_path, healthy, down)
        targets = [
            target_for(healthy, client_key),
            target_for(down, client_key, connect_timeout=1.0),
            SshTarget(
                "hole",
                "127.0.1.33",
                hole.getsockname()[1],
                "root",
                (str(client_key),),
                connect_timeout=1.0,
                ssh_config=None,
            ),
        ]
        async with SshPool(store) as pool:
            t0 = time.monotonic()
            task = asyncio.create_task(pool.run_all(targets, "echo up"))
            await asyncio.sleep(0.4)
            assert pool.state("ok").state is NodeState.READY
            assert pool.state("down").state is NodeState.FAILED
            assert pool.state("hole").state is NodeState.CONNECTING
            res = await task
            elapsed = time.monotonic() - t0
        ok = res["ok"]
        assert isinstance(ok, CommandResult) and ok.stdout == "up\n" and ok.duration < 0.5
        assert isinstance(res["down"], Unreachable) and "refused" in str(res["down"])
        assert isinstance(res["hole"], Unreachable) and "no SSH answer" in str(res["hole"])
        assert 0.9 < elapsed < 2.5
    finally:
        hole.close()


async def test_reconnect_after_loss_with_backoff(
    sim_nodes: SimFactory, sim_keys: tuple[Path, Path], tmp_path: Path
) -> None:
    host_key_path, client_key = sim_keys
    node = await sim_nodes("n1", "127.0.1.35")
    now = [1000.0]
    async with SshPool(trusted_store(tmp_path, host_key_path, node), clock=lambda: now[0]) as pool:
        t = target_for(node, client_key, connect_timeout=1.0)
        await pool.run(t, "true")
        await node.set_reachable(False)
        await asyncio.sleep(0.1)
        assert pool.state("n1").state is NodeState.DISCONNECTED
        assert isinstance(pool.state("n1").error, ConnectionLostError)
        with pytest.raises(Unreachable):
            await pool.run(t, "true")
        st1 = pool.state("n1")
        assert st1.state is NodeState.FAILED and st1.retry_at == 1001.0
        await node.set_reachable(True)
        n = pool.stats.connects
        with pytest.raises(Unreachable):  # still inside the 1 s backoff: no new connect
            await pool.run(t, "true")
        assert pool.stats.connects == n
        now[0] += 1.5
        assert (await pool.run(t, "echo back")).stdout == "back\n"
        assert pool.state("n1").state is NodeState.READY


# -- commands ----------------------------------------------------------------------------------


@pytest.mark.slow
async def test_command_timeout_does_not_kill_remote(
    sim_nodes: SimFactory, sim_keys: tuple[Path, Path], tmp_path: Path
) -> None:
    host_key_path, client_key = sim_keys
    node = await sim_nodes("n1", "127.0.1.41")
    marker = tmp_path / "late"
    async with SshPool(trusted_store(tmp_path, host_key_path, node)) as pool:
        t = target_for(node, client_key)
        t0 = time.monotonic()
        with pytest.raises(CommandTimeout) as ei:
            await pool.run(t, f"echo started; sleep 0.4; touch {marker}", timeout=0.2)
        assert time.monotonic() - t0 < 0.4
        assert ei.value.stdout == "started\n"
        assert pool.command_log[-1].error is not None
        await asyncio.sleep(0.6)
        assert marker.exists()  # documented: the remote process keeps running
        assert (await pool.run(t, "echo still usable")).exit_status == 0


async def test_argv_quoting_runs_nothing(
    sim_nodes: SimFactory, sim_keys: tuple[Path, Path], tmp_path: Path
) -> None:
    host_key_path, client_key = sim_keys
    node = await sim_nodes("n1", "127.0.1.42", cwd=str(tmp_path))
    marker = tmp_path / "pwned"
    values = [v.format(marker=marker) for v in QUOTING_VALUES]
    async with SshPool(trusted_store(tmp_path, host_key_path, node)) as pool:
        r = await pool.run(target_for(node, client_key), ["printf", "%s\\0", *values])
    assert r.exit_status == 0
    assert r.stdout.split("\0")[:-1] == values
    assert not marker.exists()
    assert not list(tmp_path.glob("*touch*"))


@pytest.mark.slow
async def test_channel_budget_and_refused_opens_are_retried(
    sim_nodes: SimFactory, sim_keys: tuple[Path, Path], tmp_path: Path
) -> None:
    host_key_path, client_key = sim_keys
    node = await sim_nodes("n1", "127.0.1.43", max_sessions=2)
    store = trusted_store(tmp_path, host_key_path, node)
    async with SshPool(store, channels_per_node=5) as pool:
        t = target_for(node, client_key)
        results = await asyncio.gather(*(pool.run(t, f"sleep 0.02; echo {i}") for i in range(30)))
        assert [r.stdout for r in results] == [f"{i}\n" for i in range(30)]
        assert node.sessions_refused > 0 and pool.stats.channel_open_retries > 0
        assert pool.stats.max_channels_in_use <= 5
        assert node.connections == 1


@pytest.mark.slow
async def test_stream_lines_live_exit_status_and_cancel(
    sim_nodes: SimFactory, sim_keys: tuple[Path, Path], tmp_path: Path
) -> None:
    host_key_path, client_key = sim_keys
    node = await sim_nodes("n1", "127.0.1.44")
    pidfile = tmp_path / "pid"
    async with SshPool(trusted_store(tmp_path, host_key_path, node)) as pool:
        t = target_for(node, client_key)
        t0 = time.monotonic()
        seen: list[tuple[str, float]] = []
        async with pool.stream(t, "echo one; sleep 0.4; echo two; echo err >&2; exit 3") as s:
            async for line in s:
                seen.append((line, time.monotonic() - t0))
        assert [x[0] for x in seen] == ["one", "two"]
        assert seen[0][1] < 0.3 < seen[1][1]
        assert s.exit_status == 3 and s.stderr == "err\n"

        got: list[str] = []

        async def consume() -> None:
            async with pool.stream(
                t, f"echo $$ > {pidfile}; while true; do echo tick; sleep 0.05; done"
            ) as s2:
                async for line in s2:
                    got.append(line)

        task = asyncio.create_task(consume())
        while len(got) < 3:
            await asyncio.sleep(0.02)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.3)
        assert node.open_sessions == 0  # channel closed
        pid = int(pidfile.read_text())
        assert await gone(pid), "remote loop should die of SIGPIPE on its next write"
        assert pool.command_log[-1].error is not None
        assert (await pool.run(t, "echo fine")).stdout == "fine\n"


async def test_atomic_put(
    sim_nodes: SimFactory, sim_keys: tuple[Path, Path], tmp_path: Path
) -> None:
    host_key_path, client_key = sim_keys
    node = await sim_nodes("n1", "127.0.1.45")
    d = tmp_path / "remote"
    d.mkdir()
    dest = d / "ranktable.json"
    dest.write_text("old")
    async with SshPool(trusted_store(tmp_path, host_key_path, node)) as pool:
        t = target_for(node, client_key)
        r = await pool.put(t, str(dest), b'{"version": "1.0"}\n', mode=0o640)
        assert r.method == "sftp" and r.size == 19
        assert dest.read_bytes() == b'{"version": "1.0"}\n'
        assert stat.S_IMODE(dest.stat().st_mode) == 0o640
        r = await pool.put(t, str(dest), b"second", mode=0o600, use_sftp=False)
        assert r.method == "shell" and dest.read_bytes() == b"second"
        assert stat.S_IMODE(dest.stat().st_mode) == 0o600
        nested = d / "a" / "b" / "x.txt"
        await pool.put(t, str(nested), b"deep", makedirs=True)
        assert nested.read_bytes() == b"deep"
        assert sorted(p.name for p in d.iterdir()) == ["a", "ranktable.json"]  # no temp files
        assert any(rec.command.startswith(f"put {dest}") for rec in pool.command_log)


async def test_forward_reaches_service_behind_node(
    sim_nodes: SimFactory, sim_keys: tuple[Path, Path], tmp_path: Path
) -> None:
    host_key_path, client_key = sim_keys
    node = await sim_nodes("n1", "127.0.1.46")

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.readline()
        writer.write(b"echo:" + data)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.1.47", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with SshPool(trusted_store(tmp_path, host_key_path, node)) as pool:
            fwd = await pool.forward(target_for(node, client_key), "127.0.1.47", port)
            async with fwd:
                reader, writer = await asyncio.open_connection("127.0.0.1", fwd.local_port)
                writer.write(b"hello\n")
                await writer.drain()
                assert await reader.readline() == b"echo:hello\n"
                writer.close()
            assert ("127.0.1.47", port) in node.forward_requests
    finally:
        server.close()
        await server.wait_closed()


async def test_command_log_redacts_and_notifies(
    sim_nodes: SimFactory, sim_keys: tuple[Path, Path], tmp_path: Path
) -> None:
    host_key_path, client_key = sim_keys
    node = await sim_nodes("n1", "127.0.1.48")
    seen: list[CommandRecord] = []
    token = "hf_" + "A1b2" * 10
    async with SshPool(trusted_store(tmp_path, host_key_path, node)) as pool:
        pool.add_listener(seen.append)
        t = target_for(node, client_key)
        r = await pool.run(t, ["env", f"HF_TOKEN={token}", "API_KEY=xyz", "sh", "-c", "exit 2"])
        assert r.exit_status == 2
        assert token not in r.command
    rec = seen[-1]
    assert rec.node == "n1" and rec.exit_status == 2 and rec.error is None
    assert token not in rec.command and "xyz" not in rec.command
    assert "HF_TOKEN=***" in rec.command and "API_KEY=***" in rec.command
    assert rec.duration >= 0 and rec.started_at > 0
    assert list(pool.command_log)[-1] == rec


async def test_sim_signal_kills_process_group(
    sim_nodes: SimFactory, sim_keys: tuple[Path, Path], tmp_path: Path
) -> None:
    host_key_path, client_key = sim_keys
    node = await sim_nodes("n1", "127.0.1.49")
    store = trusted_store(tmp_path, host_key_path, node)
    async with SshPool(store) as pool:
        t = target_for(node, client_key)
        conn = await pool._connection(t)
        proc = await conn.create_process(f"sleep 30 & echo $! > {tmp_path}/bg; sleep 30; echo x")
        await asyncio.sleep(0.3)
        proc.terminate()
        done = await asyncio.wait_for(proc.wait(), 3)
        assert done.exit_signal is not None and done.exit_signal[0] == "TERM"
        bg = int((tmp_path / "bg").read_text())
        assert await gone(bg), "background child survived the SSH signal"


async def test_sim_env_and_ssh_connection(
    sim_nodes: SimFactory, sim_keys: tuple[Path, Path], tmp_path: Path
) -> None:
    host_key_path, client_key = sim_keys
    node = await sim_nodes(
        "n9", "127.0.1.50", env={"PDTUI_SIM_STATE": "/x/state", "HOME": str(tmp_path)}
    )
    async with SshPool(trusted_store(tmp_path, host_key_path, node)) as pool:
        r = await pool.run(
            target_for(node, client_key),
            "echo $PDTUI_SIM_NODE $PDTUI_SIM_STATE $HOME; echo $SSH_CONNECTION; cat",
            input="from-stdin",
        )
    lines = r.stdout.splitlines()
    assert lines[0] == f"n9 /x/state {tmp_path}"
    client_ip, _cport, server_ip, server_port = lines[1].split()
    assert (server_ip, int(server_port)) == ("127.0.1.50", node.port)
    assert lines[2] == "from-stdin"
    assert client_ip.startswith("127.")


async def test_run_all_maps_internal_errors(
    sim_nodes: SimFactory, sim_keys: tuple[Path, Path], tmp_path: Path
) -> None:
    host_key_path, client_key = sim_keys
    node = await sim_nodes("n1", "127.0.1.51")

    def cmd(t: SshTarget) -> str:
        if t.name == "bad":
            raise RuntimeError("boom")
        return "echo $PDTUI_SIM_NODE"

    async with SshPool(trusted_store(tmp_path, host_key_path, node)) as pool:
        res = await pool.run_all(
            [target_for(node, client_key), SshTarget("bad", "127.0.1.51", ssh_config=None)], cmd
        )
    assert isinstance(res["n1"], CommandResult)
    assert isinstance(res["bad"], SshError) and "boom" in str(res["bad"])


async def test_aes_gcm_first_unless_the_ssh_config_names_ciphers(
    sim_nodes: SimFactory, sim_keys: tuple[Path, Path], tmp_path: Path
) -> None:
    host_key_path, client_key = sim_keys
    node = await sim_nodes("n1", "127.0.1.77")
    cfg = tmp_path / "ssh_config"
    cfg.write_text("Host *\n  Ciphers aes128-ctr\n")
    store = trusted_store(tmp_path, host_key_path, node)
    for config, cipher in ((None, "aes256-gcm@openssh.com"), ((str(cfg),), "aes128-ctr")):
        async with SshPool(store) as pool:
            await pool.run(target_for(node, client_key, ssh_config=config), "true")
            conn = pool._nodes["n1"].conn
            assert conn is not None and conn.get_extra_info("send_cipher") == cipher
