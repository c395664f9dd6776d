"""``pdtui sim up --containers``: fake nodes whose serving side runs in real podman containers,
created by pdtui's own ``containers up`` from the cluster file the simulator writes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pdtui import cluster as cl
from pdtui import containers as ct
from pdtui.launch.preflight import preflight
from pdtui.place import wrap
from pdtui.runbook import run_all
from pdtui.sim.podman import runtime_env
from pdtui.sim.rig import SimError, Simulator, runbook_spec
from pdtui.ssh.remote import pool_for, target

PREFIX = "127.0.92"


def _sim(tmp_path: Path, *faults: str, containers: bool = True) -> Simulator:
    return Simulator(
        runbook_spec(),
        tmp_path / "c.toml",
        latency_ms=0,
        faults=list(faults),
        address_prefix=PREFIX,
        port=0,
        containers=containers,
    )


def _state(conf: Path, name: str) -> str:
    out = subprocess.run(
        ["podman", "inspect", "--format", "{{.State.Status}}", name],
        env=runtime_env(conf),
        capture_output=True,
        text=True,
    )
    return out.stdout.strip() if out.returncode == 0 else "absent"


@pytest.mark.slow
async def test_each_node_runs_in_its_own_container_with_the_fake_tools_inside(
    tmp_path: Path, podman_conf: Path
) -> None:
    sim = _sim(tmp_path, "decode-0:container-missing-mount=/etc/hccn.conf")
    async with sim:
        cluster = cl.load(sim.cluster_file)
        names = [n.container.name for n in cluster.nodes]  # type: ignore[union-attr]
        assert len(set(names)) == 2
        assert all(_state(podman_conf, n) == "running" for n in names)
        async with pool_for(cluster) as pool:
            pre, dec = cluster.node("prefill-0"), cluster.node("decode-0")
            good = await ct.status(pool, cluster, pre)
            assert good.ok, good
            assert good.tools == {"hccn_tool": True, "npu-smi": True}
            assert good.modules == {"mooncake": True}
            assert good.versions == {
                "vllm": "0.11.0",
                "vllm_ascend": "0.11.0rc0",
                "torch_npu": "2.7.1",
                "cann": "8.3.RC1",
                "driver": "25.2.0",
            }
            problems = await preflight(pool, cluster)
            hccn = [p for p in problems if "/etc/hccn.conf is not mounted" in p.message]
            assert [p.node for p in hccn] == ["decode-0"], problems
            assert "'device ip' is not set" in hccn[0].message and "--recreate" in hccn[0].fix
            assert not [p for p in problems if p.node == "prefill-0" and "container" in p.message]
            bad = await ct.status(pool, cluster, dec)
            assert bad.state == "running" and bad.missing == ["/etc/hccn.conf"]
            # the fake tools answer inside, at the tutorial's paths
            tools = await pool.run(
                target(pre),
                wrap(
                    pre,
                    (
                        "/usr/local/Ascend/driver/tools/hccn_tool -i 0 -ip -g; "
                        "/usr/local/bin/npu-smi info -l | head -n 3; ls /dev/davinci15"
                    ),
                ),
            )
            assert tools.ok, tools.stderr
            assert "ipaddr:" in tools.stdout and "Total Count" in tools.stdout
            assert tools.stdout.rstrip().endswith("/dev/davinci15")
            report = await run_all(pool, cluster, None)
        failed = report.failed_step
        assert failed is not None and failed.key == "containers", report.steps
        assert failed.reason is not None and failed.reason.startswith(
            "decode-0: /etc/hccn.conf is not mounted"
        )
        assert report.steps[1].state == "skipped"  # not run: the containers step failed
        assert (report.steps[1].reason or "").startswith("not run: ")
    assert all(_state(podman_conf, n) == "absent" for n in names)


@pytest.mark.slow
async def test_stopped_and_gone_faults(tmp_path: Path, podman_conf: Path) -> None:
    async with _sim(tmp_path, "prefill-0:container-stopped", "decode-0:container-gone") as sim:
        cluster = cl.load(sim.cluster_file)
        async with pool_for(cluster) as pool:
            states = [(await ct.status(pool, cluster, n)).state for n in cluster.nodes]
            problems = await preflight(pool, cluster)
    assert states == ["exited", "absent"]
    boxes = [p for p in problems if p.message.startswith("container ")]
    assert [(p.node, p.message.rsplit(" ", 1)[1]) for p in boxes] == [
        ("prefill-0", "exited"),
        ("decode-0", "absent"),
    ], problems
    assert all(f"pdtui containers {sim.cluster_file} up" in p.fix for p in boxes)


async def test_container_faults_need_containers_and_a_known_node(
    tmp_path: Path, podman_conf: Path
) -> None:
    with pytest.raises(SimError, match="need --containers"):
        await _sim(tmp_path, "decode-0:container-gone", containers=False).start()
    with pytest.raises(SimError, match="unknown node 'decode-9'"):
        await _sim(tmp_path, "decode-9:container-gone").start()


@pytest.mark.slow
async def test_without_hccn_conf_the_fake_vllm_starts_and_hccl_says_device_ip_is_not_set(
    tmp_path: Path, podman_conf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pdtui.launch.control import launch, launchables, process_status, stop_all, wait_ready
    from pdtui.npu.health import check
    from pdtui.ranktable import dumps, generate
    from pdtui.ranktable.sync import push

    monkeypatch.setenv("PDTUI_SIM_VLLM_SPEED", "0.2")
    async with _sim(tmp_path, "decode-0:container-missing-mount=/etc/hccn.conf") as sim:
        cluster = cl.load(sim.cluster_file)
        async with pool_for(cluster) as pool:
            live = {n.name: n for n in (await check(pool, cluster, ping=False)).nodes}
            assert all(r.ok for r in await push(pool, cluster, dumps(generate(cluster, live))))
            try:
                started = await launch(pool, cluster, ["decode-0"])
                assert all(s.error is None for s in started), started
                await wait_ready(pool, cluster, ["decode-0"], timeout=60)
                item = next(i for i in launchables(cluster) if i.name == "decode-0")
                st = await process_status(pool, cluster, item)
            finally:
                await stop_all(pool, cluster, grace=5)
    assert st.state == "ready", st
    assert any("'device ip' is not set" in f.line for f in st.findings), st.findings


@pytest.mark.slow
async def test_sim_fault_stops_or_removes_a_container_while_the_simulator_runs(
    tmp_path: Path, podman_conf: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    from pdtui.cli import main

    async with _sim(tmp_path) as sim:
        cluster = cl.load(sim.cluster_file)
        names = {n.name: n.container.name for n in cluster.nodes}  # type: ignore[union-attr]
        path = str(sim.cluster_file)
        code = await asyncio.to_thread(main, ["sim", "fault", path, "decode-0:container-stopped"])
        assert code == 0 and _state(podman_conf, names["decode-0"]) == "exited"
        code = await asyncio.to_thread(main, ["sim", "fault", path, "prefill-0:container-gone"])
        assert code == 0 and _state(podman_conf, names["prefill-0"]) == "absent"
        code = await asyncio.to_thread(
            main, ["sim", "fault", path, "decode-0:container-missing-mount=/etc/hccn.conf"]
        )
        assert code == 2 and "from the start only" in capsys.readouterr().err


@pytest.mark.slow
async def test_the_doctor_reads_the_facts_inside_each_container(
    tmp_path: Path, podman_conf: Path
) -> None:
    from pdtui.doctor import examine
    from pdtui.doctor.facts import collect

    sim = _sim(tmp_path, "decode-0:container-missing-mount=/etc/hccn.conf")
    async with sim:
        cluster = cl.load(sim.cluster_file)
        async with pool_for(cluster) as pool:
            facts = await collect(pool, cluster, npu=False)
            assert facts.nodes["prefill-0"].files["/etc/hccn.conf"] is True
            assert facts.nodes["decode-0"].files["/etc/hccn.conf"] is False
            assert facts.nodes["decode-0"].versions["vllm_ascend"] == "0.11.0rc0"
            found = [
                (f.id, f.where, f.message)
                for f in examine(cluster, facts)
                if f.id == "hccn-conf-missing"
            ]
            name = cluster.node("decode-0").container.name  # type: ignore[union-attr]
            assert found == [
                (
                    "hccn-conf-missing",
                    "node decode-0",
                    f"/etc/hccn.conf does not exist in container {name}: HCCL logs "
                    "\"'device ip' is not set\" and answers come back garbled",
                )
            ]
