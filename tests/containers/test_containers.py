"""``pdtui.containers`` against real podman, on fake nodes reached over real SSH.

The podman commands run through each fake node's SSH shell, as a real node's docker would.
Every test names its containers after itself and removes them at the end.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from simdata import runbook_sim

from pdtui import cluster as cl
from pdtui import containers as ct
from pdtui.cli import main
from pdtui.cluster import Cluster
from pdtui.place import wrap
from pdtui.sim.podman import (
    BASE_IMAGE,
    container_table,
    fake_devices,
    remove_containers,
    runtime_env,
)
from pdtui.sim.rig import Simulator
from pdtui.ssh.remote import pool_for, target

PREFIX = "127.0.91"


@pytest.fixture
def box_name(request: pytest.FixtureRequest, podman_conf: Path) -> Iterator[str]:
    """``pdtui-t-<test>-{node.name}``; both nodes' containers are removed afterwards."""
    base = re.sub(r"[^A-Za-z0-9_.-]", "-", request.node.name)[:60]
    name = f"pdtui-t-{base}-{{node.name}}"
    yield name
    remove_containers(
        podman_conf, [name.replace("{node.name}", n) for n in ("prefill-0", "decode-0")]
    )


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[Simulator]:
    async with runbook_sim(tmp_path, PREFIX) as s:
        yield s


def boxed(sim: Simulator, name: str, **options: object) -> Cluster:
    """The simulator's cluster file with a ``[defaults.container]`` for its fake nodes."""
    plain = cl.load(sim.cluster_file)
    for n in plain.nodes:
        fake_devices(sim.dir / "nodes" / n.name, n.npus)
    # the simulator's folder too: the fake tools reach the simulator through it
    table = container_table(sim.dir, name, 16, extra=(f"{sim.dir}:{sim.dir}",), **options)  # type: ignore[arg-type]
    spec = plain.spec.model_copy(
        update={"defaults": plain.spec.defaults.model_copy(update={"container": table})}
    )
    cl.atomic_write(sim.cluster_file, cl.dump_spec(spec))
    return cl.load(sim.cluster_file)


def podman(conf: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], env=runtime_env(conf), capture_output=True, text=True)


def state_of(conf: Path, name: str) -> str:
    out = podman(conf, "inspect", "--format", "{{.State.Status}}", name)
    return out.stdout.strip() if out.returncode == 0 else "absent"


@pytest.mark.slow
async def test_up_creates_starts_and_leaves_alone_status_looks_inside_down_removes(
    sim: Simulator, box_name: str, podman_conf: Path
) -> None:
    cluster = boxed(sim, box_name)
    node = cluster.node("decode-0")
    assert node.container is not None
    name = node.container.name
    async with pool_for(cluster) as pool:
        first = await ct.up(pool, node)
        assert (first.action, first.ok) == ("created", True), first
        assert state_of(podman_conf, name) == "running"
        labels = podman(podman_conf, "inspect", "--format", "{{json .Config.Labels}}", name)
        assert json.loads(labels.stdout)["pdtui.cluster"] == cluster.name

        again = await ct.up(pool, node)
        assert (again.action, again.ok) == ("running", True)

        st = await ct.status(pool, cluster, node)
        assert st.ok and st.state == "running" and st.image.endswith("pdtui-sim-base:1"), st
        assert st.mounts["/etc/hccn.conf"] and st.mounts["/usr/local/bin/npu-smi"]
        assert all(st.devices.values()) and "/dev/davinci15" in st.devices
        assert "/dev/davinci_manager" in st.devices
        assert set(st.versions) == set(ct.VERSION_KEYS)
        assert st.uptime_s is not None and 0 <= st.uptime_s < 600

        # a command placed in the container sees the node's hccn.conf at the tutorial's path
        inside = await pool.run(target(node), wrap(node, 'head -n 1 /etc/hccn.conf; echo "$0"'))
        assert inside.ok and inside.stdout.startswith("address_0="), inside

        assert podman(podman_conf, "stop", "-t", "0", name).returncode == 0
        st = await ct.status(pool, cluster, node)
        assert (st.state, st.ok) == ("exited", False)
        started = await ct.up(pool, node)
        assert (started.action, started.ok) == ("started", True)
        assert state_of(podman_conf, name) == "running"

        gone = await ct.down(pool, node)
        assert (gone.action, gone.ok) == ("removed", True)
        assert state_of(podman_conf, name) == "absent"
        st = await ct.status(pool, cluster, node)
        assert (st.state, st.ok) == ("absent", False)
        assert (await ct.down(pool, node)).action == "absent"


@pytest.mark.slow
async def test_status_names_a_mount_missing_inside(sim: Simulator, box_name: str) -> None:
    cluster = boxed(sim, box_name, drop=("/etc/hccn.conf",))
    node = cluster.node("prefill-0")
    async with pool_for(cluster) as pool:
        assert (await ct.up(pool, node)).ok
        st = await ct.status(pool, cluster, node)
    assert st.state == "running" and not st.ok
    assert st.missing == ["/etc/hccn.conf"]


@pytest.mark.slow
async def test_adopted_is_used_as_it_is_and_a_foreign_one_is_never_touched(
    sim: Simulator, box_name: str, podman_conf: Path
) -> None:
    cluster = boxed(sim, box_name)
    node = cluster.node("prefill-0")
    assert node.container is not None
    name = node.container.name
    made = podman(
        podman_conf,
        "run",
        "-d",
        "--init",
        "--net=host",
        "--name",
        name,
        "-v",
        "/usr:/usr:ro",
        BASE_IMAGE,
        "tail",
        "-f",
        "/dev/null",
    )
    assert made.returncode == 0, made.stderr
    async with pool_for(cluster) as pool:
        # managed mode: the operator's container of that name is refused, and left running
        for result in (await ct.up(pool, node, recreate=True), await ct.down(pool, node)):
            assert not result.ok and "pdtui did not create it" in result.message
        assert state_of(podman_conf, name) == "running"
    adopted = cluster.spec.model_copy(
        update={
            "defaults": cluster.spec.defaults.model_copy(
                update={
                    "container": cluster.spec.defaults.container.model_copy(  # type: ignore[union-attr]
                        update={"mode": "adopted"}
                    )
                }
            )
        }
    )
    cl.atomic_write(sim.cluster_file, cl.dump_spec(adopted))
    cluster = cl.load(sim.cluster_file)
    node = cluster.node("prefill-0")
    async with pool_for(cluster) as pool:
        assert (await ct.up(pool, node)).action == "running"
        assert (await ct.down(pool, node)).action == "kept"
        assert state_of(podman_conf, name) == "running"
        assert podman(podman_conf, "stop", "-t", "0", name).returncode == 0
        stopped = await ct.up(pool, node)
        assert not stopped.ok and f"podman start {name}" in stopped.message
        assert state_of(podman_conf, name) == "exited"


async def test_a_missing_image_is_never_pulled_and_says_how(
    sim: Simulator, box_name: str, podman_conf: Path
) -> None:
    cluster = boxed(sim, box_name, image="localhost/pdtui-no-such-image:0")
    node = cluster.node("decode-0")
    async with pool_for(cluster) as pool:
        result = await ct.up(pool, node)
    assert not result.ok
    assert "podman pull localhost/pdtui-no-such-image:0" in result.message
    assert "podman load" in result.message
    assert state_of(podman_conf, node.container.name) == "absent"  # type: ignore[union-attr]


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["containers", *args])
    return code, capsys.readouterr().out


@pytest.mark.slow
async def test_the_command_brings_every_node_up_reports_and_takes_them_down(
    sim: Simulator, box_name: str, podman_conf: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster = boxed(sim, box_name)
    path = str(sim.cluster_file)
    names = [n.container.name for n in cluster.nodes]  # type: ignore[union-attr]
    code, out = await asyncio.to_thread(_cli, capsys, path, "up")
    assert code == 0, out
    assert out.count("created") == 2 and all(state_of(podman_conf, n) == "running" for n in names)
    before = podman(podman_conf, "inspect", "--format", "{{.Id}}", names[0]).stdout
    code, out = await asyncio.to_thread(
        _cli, capsys, path, "up", "--recreate", "--only", "prefill-0"
    )
    assert code == 0 and "recreated" in out and "decode-0" not in out
    assert podman(podman_conf, "inspect", "--format", "{{.Id}}", names[0]).stdout != before
    code, out = await asyncio.to_thread(_cli, capsys, path, "status", "--json")
    rows = json.loads(out)
    assert code == 0 and [r["state"] for r in rows] == ["running", "running"]
    assert rows[0]["missing"] == [] and rows[0]["mounts"]["/etc/hccn.conf"] is True
    code, out = await asyncio.to_thread(_cli, capsys, path, "down")
    assert code == 0 and out.count("removed") == 2
    code, out = await asyncio.to_thread(_cli, capsys, path)
    assert code == 1 and "absent" in out and "containers" in out


def test_dry_run_prints_the_tutorials_docker_run_without_ssh(
    capsys: pytest.CaptureFixture[str],
) -> None:
    sample = Path(__file__).resolve().parents[2] / "sample_clusters" / "deepseek-v3.2-a3-1p1d.toml"
    code, out = _cli(capsys, str(sample), "--dry-run", "--only", "prefill-0")
    assert code == 0
    lines = out.splitlines()
    assert lines[1].startswith(
        "docker run -d --name vllm-ascend --label "
        "pdtui.cluster=deepseek-v3.2-a3-1p1d --net=host --shm-size=1g"
    )
    assert "  --device /dev/davinci15 \\" in lines
    assert "  --device /dev/hisi_hdc \\" in lines
    assert "  -v /etc/hccn.conf:/etc/hccn.conf \\" in lines
    assert lines[-2] == "  quay.io/ascend/vllm-ascend:v0.11.0rc0 tail -f /dev/null"
    assert "decode-0" not in out


def test_a_file_without_the_table_and_an_unknown_node_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sample = Path(__file__).resolve().parents[2] / "sample_clusters" / "deepseek-v3.2-a3-1p1d.toml"
    text = re.sub(r"\[defaults\.container\][^\[]*", "", sample.read_text())
    plain = tmp_path / "plain.toml"
    plain.write_text(text)
    assert main(["containers", str(plain), "--dry-run"]) == 2
    assert "no [defaults.container]" in capsys.readouterr().err
    assert main(["containers", str(sample), "--only", "nope"]) == 2
    assert "unknown node 'nope'" in capsys.readouterr().err


def test_findings_name_what_is_missing_and_how_to_fix_it() -> None:
    root = Path(__file__).resolve().parents[2] / "sample_clusters"
    moon = cl.load(root / "mooncake-a3-2p1d.toml")
    node = moon.node("decode-0")
    assert ct.uses_mooncake(moon, node)
    st = ct.Status(
        "decode-0",
        "vllm-ascend",
        "managed",
        "running",
        image="img",
        mounts={"/etc/hccn.conf": False, "/usr/local/dcmi": True},
        devices={"/dev/davinci3": False},
        tools={"hccn_tool": True, "npu-smi": False},
        versions={"vllm": "0.11.0", "vllm_ascend": "-"},
        modules={"mooncake": False},
    )
    got = [msg for _, msg, _ in ct.findings(node, st, mooncake=True)]
    assert got[0].startswith("/etc/hccn.conf is not mounted in container vllm-ascend")
    assert got[1] == "/dev/davinci3 is not visible in container vllm-ascend"
    assert got[2].startswith("npu-smi does not work inside container vllm-ascend")
    assert got[3] == "vllm_ascend is not installed in container vllm-ascend (img)"
    assert got[4].startswith("the Mooncake connector is used, but mooncake is not installed")
    gone = ct.Status("decode-0", "vllm-ascend", "managed", "absent")
    ((sev, msg, fix),) = ct.findings(node, gone)
    assert (sev, msg) == ("error", "container vllm-ascend is absent") and "up" in fix
