"""Preflight on the simulator: each problem found with what to do."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pdtui.cluster import Cluster, load, loads
from pdtui.launch.control import launch, stop_all
from pdtui.launch.preflight import preflight
from pdtui.sim.rig import Simulator, runbook_spec
from pdtui.ssh import SshPool
from pdtui.ssh.remote import pool_for


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[tuple[Cluster, SshPool]]:
    sim = Simulator(
        runbook_spec(), tmp_path / "c.toml", latency_ms=0, address_prefix="127.0.17", port=0
    )
    async with sim:
        cluster = load(sim.cluster_file)
        async with pool_for(cluster) as pool:
            yield cluster, pool
            await stop_all(pool, cluster, grace=5)


def messages(problems: list) -> list[str]:  # type: ignore[type-arg]
    return [str(p) for p in problems]


async def test_a_fresh_cluster_needs_only_its_ranktable(rig) -> None:  # type: ignore[no-untyped-def]
    cluster, pool = rig
    got = messages(await preflight(pool, cluster))
    assert len(got) == 2 and all("no ranktable at" in m and "pdtui ranktable" in m for m in got)
    for n in cluster.nodes:  # with the ranktable in place: clean
        p = Path(cluster.ranktable_path(n))
        p.parent.mkdir(parents=True)
        p.write_text("{}")
    assert await preflight(pool, cluster) == []


@pytest.mark.slow
async def test_ports_in_use_and_a_running_instance_are_errors(rig) -> None:  # type: ignore[no-untyped-def]
    cluster, pool = rig
    for n in cluster.nodes:
        p = Path(cluster.ranktable_path(n))
        p.parent.mkdir(parents=True)
        p.write_text("{}")
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", 8080))
        except OSError:
            pytest.skip("127.0.0.1:8080 is taken on this machine already")
        s.listen()
        got = messages(await preflight(pool, cluster, ["proxy"]))
    assert got == [
        "prefill-0/proxy: port 8080 is already in use - stop what listens there "
        "(ss -ltnp) or change the port"
    ]
    await launch(pool, cluster, ["decode-0"])
    got = messages(await preflight(pool, cluster, ["decode-0"]))
    assert any("decode-0/decode-0: already running" in m for m in got)


async def test_env_problems_bad_nic_foreign_ip_and_proxy_variables(rig) -> None:  # type: ignore[no-untyped-def]
    cluster, pool = rig
    text = Path(cluster.path or "").read_text()
    text = text.replace('nic = "enp23s0f3"', 'nic = "eth9"')
    text = text.replace("[env]\n", '[env]\nhttp_proxy = "http://proxy.example:3128"\n', 1)
    text = text.replace('ip = "172.22.0.155"', 'ip = "172.22.0.156"')
    bad = loads(text, path=cluster.path)
    got = messages(await preflight(pool, bad, ["decode-0"]))
    assert any("GLOO_SOCKET_IFNAME=eth9: no such interface" in m for m in got)
    assert any(
        "HCCL_IF_IP=172.22.0.156 is not an address of the node (hostname -I: 172.22.0.155)" in m
        for m in got
    )
    assert any("http_proxy is set in [env]" in m for m in got)


@pytest.mark.slow
async def test_the_doctors_errors_are_preflight_errors_of_their_process(rig) -> None:  # type: ignore[no-untyped-def]
    cluster, pool = rig
    for n in cluster.nodes:
        p = Path(cluster.ranktable_path(n))
        p.parent.mkdir(parents=True)
        p.write_text("{}")
    text = Path(str(cluster.path)).read_text()
    broken = text.replace("tensor-parallel-size = 16", "tensor-parallel-size = 8", 1)
    assert broken != text
    bad = loads(broken, source="c.toml", path=cluster.path)
    got = messages(await preflight(pool, bad, ["prefill"]))
    assert any(m.startswith("prefill-0/prefill-0: devices-vs-parallel: 16 devices") for m in got)
    decode_only = messages(await preflight(pool, bad, ["decode"]))
    assert not any(m.startswith("prefill-0/prefill-0") for m in decode_only)
    assert any(m.startswith("decode-0/decode-0: devices-vs-parallel") for m in decode_only)
