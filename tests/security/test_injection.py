"""Shell injection through names the cluster file gives: NICs and environment keys.

Each hostile file is refused at load with one line naming the key and value; and should a
value get past the loader (a plan built in code), the scripts that reach the node still run
nothing: a canary file proves it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from simdata import runbook_sim

from pdtui.cluster import Cluster, ClusterError, load, loads
from pdtui.launch.control import launchables
from pdtui.launch.preflight import check_node
from pdtui.launch.run import start
from pdtui.sim.rig import Simulator
from pdtui.ssh.remote import pool_for


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[Simulator]:
    async with runbook_sim(tmp_path, "127.0.72") as s:
        yield s


def refused(text: str, path: Path) -> str:
    with pytest.raises(ClusterError) as err:
        loads(text, path=path)
    return str(err.value)


def nic_files(base: str, canary: Path) -> dict[str, str]:
    evil = f"eth0;touch {canary}"
    return {
        "node nic": base.replace('nic = "enp23s0f3"', f"nic = {json.dumps(evil)}"),
        "[env] *_SOCKET_IFNAME": base.replace(
            'GLOO_SOCKET_IFNAME = "{node.nic}"', f"GLOO_SOCKET_IFNAME = {json.dumps(evil)}"
        ),
    }


async def test_a_hostile_nic_is_refused_at_load_and_runs_nothing_in_preflight(
    sim: Simulator,
    tmp_path: Path,
) -> None:
    canary = tmp_path / "CANARY"
    base = sim.cluster_file.read_text()
    for what, text in nic_files(base, canary).items():
        msg = refused(text, sim.cluster_file)
        assert "\n" not in msg and "touch" in msg and "interface" in msg, what
    cluster = load(sim.cluster_file)
    items = [
        dataclasses.replace(
            i,
            env={
                **i.env,
                "GLOO_SOCKET_IFNAME": f"eth0;touch {canary}",
                "HCCL_SOCKET_IFNAME": f"$(touch {canary})",
            },
        )
        for i in launchables(cluster, ["decode-0"])
    ]
    async with pool_for(cluster) as pool:
        problems = await check_node(pool, cluster, cluster.node("decode-0"), items)
    assert not canary.exists()
    assert any(
        "GLOO_SOCKET_IFNAME" in str(p) and "no such interface" in str(p) for p in problems
    ), problems


async def test_a_hostile_env_key_in_any_table_is_refused_at_load(
    sim: Simulator,
    tmp_path: Path,
) -> None:
    canary = tmp_path / "CANARY"
    key = json.dumps(f"X=1; touch {canary}; Y")
    base = sim.cluster_file.read_text()
    for table in ("[proxy.env]", "[env]"):
        text = (
            base + f'\n{table}\n{key} = "1"\n'
            if table == "[proxy.env]"
            else base.replace("[env]\n", f'[env]\n{key} = "1"\n', 1)
        )
        msg = refused(text, sim.cluster_file)
        assert "\n" not in msg and table.strip("[]") in msg
        assert "not a valid environment variable name" in msg and "touch" in msg


async def test_a_hostile_env_key_given_in_code_never_reaches_a_shell(
    sim: Simulator,
    tmp_path: Path,
) -> None:
    canary = tmp_path / "CANARY"
    cluster: Cluster = load(sim.cluster_file)
    async with pool_for(cluster) as pool:
        s = await start(
            pool,
            cluster.node("decode-0"),
            cluster.name,
            "evil",
            {f"X=1; touch {canary}; Y": "1"},
            ["true"],
        )
    assert s.error is not None and "environment variable name" in s.error
    assert not canary.exists()
