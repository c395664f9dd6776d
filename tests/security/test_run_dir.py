"""The run folder on a shared node: a hostile neighbour's planted folders, files and pids.

The fake nodes share this machine; the tests run as root, so a folder chowned to ``nobody``
is another user's folder, and a ``sleep`` started here is an unrelated process on the node.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from simdata import runbook_sim

from pdtui.cluster import Cluster, load, loads
from pdtui.launch.run import run_dir, start, status, stop
from pdtui.ssh import SshPool
from pdtui.ssh.remote import pool_for

NOBODY = 65534
TICK = ["sleep", "30"]


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[tuple[Cluster, SshPool]]:
    async with runbook_sim(tmp_path, "127.0.71") as sim:
        cluster = load(sim.cluster_file)
        async with pool_for(cluster) as pool:
            yield cluster, pool


@pytest.fixture
def bystander() -> Iterator[subprocess.Popen[bytes]]:
    """An unrelated process on the node (pdtui must never signal it)."""
    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
    yield proc
    proc.kill()
    proc.wait()


def _folder(cluster: Cluster, name: str) -> Path:
    return Path(run_dir(cluster.node("decode-0"), cluster.name, name))


def test_the_default_run_folder_is_per_user_and_relative_ones_are_refused() -> None:
    text = (
        Path(__file__).resolve().parents[2] / "sample_clusters" / "deepseek-v3.2-a3-1p1d.toml"
    ).read_text()
    assert loads(text).nodes[0].run_dir == "~/.cache/pdtui/run"
    for bad in ('""', '"run"', '"./pdtui"', '"~other/run"', '"/tmp/../etc"'):
        with pytest.raises(Exception) as err:
            loads(text.replace("[defaults]\n", f"[defaults]\nrun_dir = {bad}\n", 1))
        assert "run_dir" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.slow
async def test_a_default_run_folder_lands_in_the_ssh_users_home_mode_0700(
    tmp_path: Path,
) -> None:
    async with runbook_sim(tmp_path, "127.0.71") as sim:
        text = "\n".join(
            line
            for line in sim.cluster_file.read_text().splitlines()
            if not line.startswith("run_dir")
        )
        cluster = loads(text, path=sim.cluster_file)
        node = cluster.node("decode-0")
        async with pool_for(cluster) as pool:
            s = await start(pool, node, cluster.name, "home", {}, TICK)
            assert s.error is None and s.pid
            home = sim.dir / "nodes" / "decode-0" / "home"
            d = home / ".cache" / "pdtui" / "run" / cluster.name / "home"
            assert (d / "out.log").exists()
            for folder in (d, d.parent, d.parent.parent):
                assert folder.stat().st_mode & 0o777 == 0o700
            for f in ("env.sh", "out.log", "cmd", "run_id", "pid"):
                assert (d / f).stat().st_mode & 0o777 == 0o600, f
            assert (await status(pool, node, cluster.name, "home")).state == "running"
            assert await stop(pool, node, cluster.name, "home", grace=5) == "stopped"


@pytest.mark.parametrize("plant", ["other-owner", "symlink", "world-writable"])
async def test_a_planted_run_folder_is_refused_before_anything_is_written(
    rig: tuple[Cluster, SshPool],
    tmp_path: Path,
    plant: str,
) -> None:
    cluster, pool = rig
    d = _folder(cluster, "decode-0")
    trap = tmp_path / "trap"
    trap.mkdir()
    d.parent.mkdir(parents=True, exist_ok=True)
    if plant == "symlink":
        d.symlink_to(trap)
    else:
        d.mkdir()
        if plant == "other-owner":
            os.chown(d, NOBODY, NOBODY)
        else:
            d.chmod(0o777)
    s = await start(
        pool, cluster.node("decode-0"), cluster.name, "decode-0", {"HF_TOKEN": "hf_secret"}, TICK
    )
    assert s.error is not None and s.pid is None
    assert str(d) in s.error and "\n" not in s.error
    assert list(trap.iterdir()) == []
    if plant != "symlink":
        assert list(d.iterdir()) == []


@pytest.mark.parametrize("plant", ["fifo", "symlink"])
async def test_a_planted_file_is_refused_and_nothing_follows_it(
    rig: tuple[Cluster, SshPool],
    tmp_path: Path,
    plant: str,
) -> None:
    cluster, pool = rig
    d = _folder(cluster, "decode-0")
    d.mkdir(parents=True, mode=0o700)
    victim = tmp_path / "root-owned-file"
    victim.write_text("precious\n")
    if plant == "fifo":
        os.mkfifo(d / "env.sh")
    (d / "out.log").symlink_to(victim)
    s = await asyncio.wait_for(
        start(
            pool,
            cluster.node("decode-0"),
            cluster.name,
            "decode-0",
            {"HF_TOKEN": "hf_secret"},
            TICK,
        ),
        20,
    )
    assert s.error is not None and s.pid is None
    assert "not a regular file" in s.error and "\n" not in s.error
    assert victim.read_text() == "precious\n"


async def test_a_regex_run_id_never_signals_an_unrelated_process(
    rig: tuple[Cluster, SshPool],
    bystander: subprocess.Popen[bytes],
) -> None:
    cluster, pool = rig
    d = _folder(cluster, "decode-0")
    d.mkdir(parents=True, mode=0o700)
    (d / "pid").write_text(f"{bystander.pid}\n")
    for planted in ("x\\|.*", ".*", "0123456789abcdef\\|"):
        (d / "run_id").write_text(planted + "\n")
        result = await stop(pool, cluster.node("decode-0"), cluster.name, "decode-0", grace=1)
        assert result not in ("stopped", "killed"), planted
        assert bystander.poll() is None
        st = await status(pool, cluster.node("decode-0"), cluster.name, "decode-0")
        assert st.state != "running"


@pytest.mark.slow
async def test_a_stale_pid_reused_by_another_process_does_not_block_a_relaunch(
    rig: tuple[Cluster, SshPool],
    bystander: subprocess.Popen[bytes],
) -> None:
    cluster, pool = rig
    node = cluster.node("decode-0")
    first = await start(pool, node, cluster.name, "decode-0", {}, ["true"])
    assert first.error is None
    await asyncio.sleep(0.3)
    d = _folder(cluster, "decode-0")
    (d / "pid").write_text(f"{bystander.pid}\n")  # the old pid now belongs to someone else
    assert await stop(pool, node, cluster.name, "decode-0") == "pid-reused"
    again = await start(pool, node, cluster.name, "decode-0", {}, TICK)
    assert again.error is None and again.pid and again.pid != bystander.pid
    assert (await status(pool, node, cluster.name, "decode-0")).state == "running"
    assert await stop(pool, node, cluster.name, "decode-0", grace=5) == "stopped"
    assert bystander.poll() is None


@pytest.mark.parametrize("name", ["..", ".", "a/b", ""])
def test_run_dir_never_names_a_folder_outside_the_run_folder(name: str) -> None:
    text = (
        Path(__file__).resolve().parents[2] / "sample_clusters" / "deepseek-v3.2-a3-1p1d.toml"
    ).read_text()
    node = loads(text).nodes[0]
    with pytest.raises(ValueError):
        run_dir(node, "c", name)
    with pytest.raises(ValueError):
        run_dir(node, name, "p")
