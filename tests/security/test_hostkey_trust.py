"""Host keys that go wrong: a key whose type changed, a known_hosts file pdtui cannot write."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncssh
import pytest
from simdata import runbook_sim

from pdtui.cluster import Cluster, load, loads
from pdtui.sim.rig import Simulator
from pdtui.ssh import HostKeyChanged, SshError
from pdtui.ssh.remote import pool_for, target


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[Simulator]:
    async with runbook_sim(tmp_path, "127.0.73") as s:
        yield s


@pytest.mark.slow
async def test_a_host_key_whose_type_changed_gets_the_changed_key_guidance(
    sim: Simulator,
) -> None:
    cluster = load(sim.cluster_file)
    known = sim.dir / "known_hosts"
    rsa = asyncssh.generate_private_key("ssh-rsa", key_size=2048).export_public_key()
    # The same hosts, recorded with an RSA key; the fake nodes offer ed25519 only.
    known.write_text(
        "".join(
            f"{line.split()[0]} {rsa.decode().strip()}\n"
            for line in known.read_text().splitlines()
            if line.strip()
        )
    )
    async with pool_for(cluster) as pool:
        with pytest.raises(HostKeyChanged) as err:
            await pool.run(target(cluster.node("decode-0")), "true", timeout=10)
    msg = str(err.value)
    assert "HOST KEY CHANGED" in msg and "ssh-keygen -R" in msg and str(known) in msg
    assert "retry later" not in msg and "\n" not in msg


@pytest.mark.parametrize("where", ["a-folder", "no-such-dir/known_hosts"])
async def test_an_unwritable_known_hosts_with_accept_new_is_one_line(
    sim: Simulator,
    tmp_path: Path,
    where: str,
) -> None:
    bad = tmp_path / where
    (tmp_path / "a-folder").mkdir()
    (tmp_path / "no-such-dir").write_text("a file where a folder should be\n")
    text = sim.cluster_file.read_text()
    old = next(line for line in text.splitlines() if line.startswith("known_hosts"))
    cluster: Cluster = loads(text.replace(old, f'known_hosts = "{bad}"'), path=sim.cluster_file)
    async with pool_for(cluster, accept_new=True) as pool:
        with pytest.raises(SshError) as err:
            await pool.run(target(cluster.node("decode-0")), "true", timeout=10)
    msg = str(err.value)
    assert str(bad) in msg and "cannot save" in msg and "\n" not in msg
