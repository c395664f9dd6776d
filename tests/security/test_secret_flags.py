"""Secrets given as ``vllm serve`` flags stay out of ``ps``, the command log and out.log."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

import pytest
from simdata import runbook_sim

from pdtui.cluster import loads
from pdtui.launch.control import launch, stop_all
from pdtui.launch.plan import plan_cluster
from pdtui.launch.run import run_dir
from pdtui.ssh.remote import pool_for

SECRET = "sk-" + "Zq7" * 10


def command_lines() -> list[bytes]:
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            with contextlib.suppress(OSError):
                out.append((p / "cmdline").read_bytes())
    return out


def with_serve(text: str, lines: str) -> str:
    return (
        text.replace("[serve]\n", f"[serve]\n{lines}", 1)
        if "[serve]\n" in text
        else text.replace("[[instances]]", f"[serve]\n{lines}\n[[instances]]", 1)
    )


@pytest.mark.slow
async def test_an_api_key_flag_travels_in_the_0600_env_file_not_in_ps(tmp_path: Path) -> None:
    async with runbook_sim(tmp_path, "127.0.74") as sim:
        text = with_serve(sim.cluster_file.read_text(), f"api-key = {json.dumps(SECRET)}\n")
        cluster = loads(text, path=sim.cluster_file)
        plan = next(p for p in plan_cluster(cluster) if p.name == "decode-0")
        assert SECRET not in " ".join(plan.argv) and plan.env["VLLM_API_KEY"] == SECRET
        async with pool_for(cluster) as pool:
            started = await launch(pool, cluster, ["decode-0"])
            assert started[0].error is None
            await asyncio.sleep(1.0)
            assert not any(SECRET.encode() in c for c in command_lines())
            d = Path(run_dir(cluster.node("decode-0"), cluster.name, "decode-0"))
            for name in ("out.log", "cmd", "env.redacted"):
                assert SECRET not in (d / name).read_text(), name
                assert (d / name).stat().st_mode & 0o777 == 0o600, name
            assert SECRET in (d / "env.sh").read_text()
            assert all(SECRET not in r.command for r in pool.command_log)
            await stop_all(pool, cluster, ["decode-0"], grace=5)


def test_another_secret_looking_flag_is_warned_about_at_validate() -> None:
    text = (
        Path(__file__).resolve().parents[2] / "sample_clusters" / "deepseek-v3.2-a3-1p1d.toml"
    ).read_text()
    cluster = loads(with_serve(text, 'db-password = "hunter2"\n'), source="c.toml")
    assert any("serve.db-password" in w and "ps" in w for w in cluster.warnings)
