"""The simulated cluster end to end: `pdtui sim up` over real SSH, faults at run time."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pdtui.cluster import load
from pdtui.sim.rig import Simulator, generated_spec, runbook_spec
from pdtui.sim.state import load_state
from pdtui.ssh import ConnectionLostError, Unreachable
from pdtui.ssh.remote import pool_for, target, targets

ROOT = Path(__file__).resolve().parents[2]
MOONCAKE = ROOT / "sample_clusters" / "mooncake-a3-2p1d.toml"
SSH = "/usr/bin/ssh"


def pdtui(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pdtui", *args], capture_output=True, text=True, timeout=60
    )


def ssh(cluster: Path, node: str, command: str) -> subprocess.CompletedProcess[str]:
    cfg = cluster.parent / f"{cluster.stem}.sim" / "ssh_config"
    return subprocess.run(
        [SSH, "-F", str(cfg), "-o", "BatchMode=yes", node, command],
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.skipif(not os.path.exists(SSH), reason="no OpenSSH client")
@pytest.mark.slow
def test_sim_up_nodes_answer_the_plain_ssh_client_with_their_identity(sim_up: Path) -> None:
    r = ssh(sim_up, "prefill-0", "hostname; hostname -I; hccn_tool -i 0 -vnic -g")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "prefill-0",
        "172.22.0.218 ",
        "vnic link status: UP",
        "vnic ipaddr: 192.25.2.199",
        "vnic netmask: 255.255.255.0",
    ]
    r = ssh(sim_up, "decode-0", "hostname -I; npu-smi info -t spod-info -i 0 -c 1 | head -1")
    assert r.stdout.splitlines() == [
        "172.22.0.155 ",
        "\tSDID                           : 109117441",
    ]


@pytest.mark.slow
def test_sim_up_writes_a_valid_cluster_matching_the_runbook(sim_up: Path) -> None:
    c = load(sim_up)
    base = runbook_spec()
    assert [n.name for n in c.nodes] == [n.name for n in base.nodes]
    assert [n.ip for n in c.nodes] == ["172.22.0.218", "172.22.0.155"]
    assert all(n.host.startswith("127.0.3.") for n in c.nodes)
    assert [i.name for i in c.instances] == [i.name for i in base.instances]
    assert c.instance("prefill-0").env["HCCL_IF_IP"] == "172.22.0.218"
    assert c.node("prefill-0").hccn_conf.endswith("nodes/prefill-0/etc/hccn.conf")


@pytest.mark.slow
async def test_faults_set_and_cleared_at_run_time_change_what_the_nodes_answer(
    sim_up: Path,
) -> None:
    c = load(sim_up)
    dec = target(c.node("decode-0"))
    async with pool_for(c) as pool:
        r = await pool.run(dec, "hccn_tool -i 3 -link -g")
        assert r.stdout == "link status: UP\n"
        f = pdtui(
            "sim", "fault", str(sim_up), "decode-0:3:link-down", "decode-0:tool-missing=npu-smi"
        )
        assert f.returncode == 0, f.stderr
        assert f.stdout.splitlines() == [
            "fault set: decode-0:3:link-down",
            "fault set: decode-0:tool-missing=npu-smi",
        ]
        r = await pool.run(dec, "hccn_tool -i 3 -link -g; hccn_tool -i 2 -link -g; npu-smi info")
        assert r.stdout.splitlines() == ["link status: DOWN", "link status: UP"]
        assert "npu-smi: command not found" in r.stderr and r.exit_status == 127

        assert pdtui("sim", "fault", str(sim_up), "decode-0:unreachable").returncode == 0
        await asyncio.sleep(1.0)  # the simulator polls its state file every 0.3 s
        with pytest.raises((Unreachable, ConnectionLostError)):
            await pool.run(dec, "true", timeout=5)
        results = await pool.run_all(targets(c), lambda t: "hostname")
        assert isinstance(results["decode-0"], (Unreachable, ConnectionLostError))
        assert getattr(results["prefill-0"], "stdout", None) == "prefill-0\n"

        cl = pdtui("sim", "clear", str(sim_up), "--node", "decode-0")
        assert cl.returncode == 0 and "fault cleared: decode-0:unreachable" in cl.stdout
        await asyncio.sleep(1.0)
        pool.reset(dec)
        r = await pool.run(dec, "hccn_tool -i 3 -link -g")
        assert r.stdout == "link status: UP\n"

    st = pdtui("sim", "status", str(sim_up))
    assert st.returncode == 0 and "decode-0" in st.stdout and "no faults" in st.stdout


@pytest.mark.slow
def test_bad_fault_spec_is_exit_2_with_the_reason(sim_up: Path) -> None:
    r = pdtui("sim", "fault", str(sim_up), "decode-0:99:link-down")
    assert r.returncode == 2
    assert "device 99 out of range" in r.stderr and "Traceback" not in r.stderr
    r = pdtui("sim", "fault", str(sim_up), "decode-0:3:melt")
    assert r.returncode == 2 and "valid kinds" in r.stderr


@pytest.mark.slow
def test_sim_commands_on_a_cluster_that_is_not_simulated_exit_2() -> None:
    r = pdtui("sim", "fault", str(MOONCAKE), "decode-0:1:link-down")
    assert r.returncode == 2 and "not a simulated cluster" in r.stderr


@pytest.mark.slow
def test_sim_up_with_an_invalid_source_cluster_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[cluster]\nname = 1\n")
    r = pdtui("sim", "up", "--from", str(bad), "--write-cluster", str(tmp_path / "c.toml"))
    assert r.returncode == 2 and "bad.toml: cluster.name: expected a string, got 1" in r.stderr


async def test_simulator_from_a_cluster_keeps_names_soc_npus_and_ips(tmp_path: Path) -> None:
    base = load(MOONCAKE).spec
    sim = Simulator(base, tmp_path / "m.toml", latency_ms=0, address_prefix="127.0.5", port=0)
    async with sim:
        c = load(tmp_path / "m.toml")
        assert [(n.name, n.ip, n.soc, n.npus) for n in c.nodes] == [
            (n.name, n.host, "A3", 16) for n in base.nodes
        ]
        assert len(list(c.processes())) == len(list(load(MOONCAKE).processes()))
        async with pool_for(c) as pool:
            res = await pool.run_all(targets(c), lambda t: "hostname; hostname -I")
        for n in c.nodes:
            out = res[n.name]
            assert not isinstance(out, Exception), out
            assert out.stdout == f"{n.name}\n{n.ip} \n"
    state = load_state(sim.state_path)
    assert [n.server_index for n in state.nodes] == [25, 26, 27, 28]


@pytest.mark.slow
async def test_generated_clusters_scale_to_32_a3_nodes(tmp_path: Path) -> None:
    spec = generated_spec(32, "A3", 16)
    sim = Simulator(spec, tmp_path / "big.toml", latency_ms=0, address_prefix="127.0.6", port=0)
    async with sim:
        c = load(tmp_path / "big.toml")
        assert len(c.nodes) == 32 and len(c.backends("decode")) == 16
        async with pool_for(c) as pool:
            res = await pool.run_all(targets(c), lambda t: "hccn_tool -i 15 -vnic -g")
        assert all(not isinstance(r, Exception) and r.exit_status == 0 for r in res.values())
        ips = {r.stdout.splitlines()[1] for r in res.values() if not isinstance(r, Exception)}
        assert len(ips) == 32  # vNIC IPs are unique within the super pod
