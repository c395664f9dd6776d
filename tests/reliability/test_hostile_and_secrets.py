"""Operator trust: hostile values run nothing, secrets stay out of logs, full disks lose nothing."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from simdata import runbook_sim

from pdtui import cluster as cl
from pdtui.launch.control import launch, stop_all
from pdtui.launch.run import run_dir
from pdtui.sim.rig import Simulator
from pdtui.ssh.remote import pool_for

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = ROOT / "sample_clusters" / "deepseek-v3.2-a3-1p1d.toml"
TOKEN = "hf_" + "S3cr3t" * 6


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[Simulator]:
    async with runbook_sim(tmp_path, "127.0.23") as s:
        yield s


def payloads(canary: Path) -> list[str]:
    c = str(canary)
    return [
        f"$(touch {c})",
        f"`touch {c}`",
        f"; touch {c}",
        f"' ; touch {c} ; '",
        f'" ; touch {c} ; "',
        f"\n touch {c}\n",
        f"| touch {c}",
        f"&& touch {c} &&",
        '{unknown.field} {"json": 1} *',
        "$HOME ${PATH} %s %n \\ \\\\",
    ]


@pytest.mark.slow
async def test_shell_metacharacters_in_every_value_arrive_verbatim_and_run_nothing(
    sim: Simulator,
    tmp_path: Path,
) -> None:
    canary = tmp_path / "CANARY"
    values = payloads(canary)
    text = sim.cluster_file.read_text()
    env_lines = "".join(f"PAYLOAD_{i} = {json.dumps(v)}\n" for i, v in enumerate(values))
    text = text.replace("[env]\n", f"[env]\n{env_lines}HF_TOKEN = {json.dumps(TOKEN)}\n", 1)
    text = text.replace(
        'served_name = "deepseek_v3.2"', f"served_name = {json.dumps('ds ' + values[0])}"
    )
    hostile = sim.cluster_file.with_name("hostile.toml")
    hostile.write_text(text)
    cluster = cl.load(hostile)
    async with pool_for(cluster) as pool:
        started = await launch(pool, cluster, ["decode-0"])
        assert started[0].error is None
        await asyncio.sleep(1.0)
        node = cluster.node("decode-0")
        d = Path(run_dir(node, cluster.name, "decode-0"))
        # The environment file gives back every value exactly as written when sourced.
        for i, v in enumerate(values):
            got = subprocess.run(
                ["bash", "-c", f'. ./env.sh; printf %s "$PAYLOAD_{i}"'],
                cwd=d,
                capture_output=True,
                text=True,
                timeout=10,
            )
            assert got.stdout == v
        # Secrets stay out of the redacted copies and the command log.
        assert TOKEN not in (d / "env.redacted").read_text()
        assert TOKEN not in (d / "cmd").read_text()
        assert all(TOKEN not in r.command for r in pool.command_log)
        await stop_all(pool, cluster, ["decode-0"], grace=5)
    assert not canary.exists()
    assert (d / "env.sh").stat().st_mode & 0o777 == 0o600


def test_a_full_disk_while_saving_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "c.toml"
    target.write_text(RUNBOOK.read_text())
    spec = cl.load(target).spec
    spec.cluster.description = "changed"

    def full(_fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space left"):
        cl.save(spec, target)
    assert target.read_text() == RUNBOOK.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.toml"]  # no temp file left


def test_huge_files_are_refused_with_their_name_not_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pdtui.cli import main

    huge = tmp_path / "huge.toml"
    with huge.open("wb") as f:  # sparse: 1 GiB on paper, nothing on disk
        f.truncate(1 << 30)
    assert main(["validate", str(huge)]) == 2
    out = capsys.readouterr().err
    assert f"{huge}: cannot read: too large for pdtui to read (over 8 MiB)" in out
    assert "Traceback" not in out
    rt = tmp_path / "rt.json"
    rt.write_bytes(b"[" * (9 << 20))
    assert main(["ranktable", "lint", str(rt)]) == 2
    out = capsys.readouterr().err
    assert f"{rt}: cannot read: too large" in out and "Traceback" not in out
