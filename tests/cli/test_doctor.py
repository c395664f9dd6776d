"""`pdtui doctor` against fake nodes over real SSH: live facts, JSON shape, exit codes."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import pytest
from simdata import runbook_sim

from pdtui.cli import main
from pdtui.cluster import load

pytestmark = pytest.mark.slow


Report = dict[str, list[dict[str, str]]]


def _doctor(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Report]:
    code = main(["doctor", *args, "--json"])
    out: Report = json.loads(capsys.readouterr().out)
    return code, out


async def test_live_doctor_finds_a_missing_hccn_conf_and_a_taken_port(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with runbook_sim(tmp_path, "127.0.60") as sim:
        cluster = load(sim.cluster_file)
        code, out = await asyncio.to_thread(_doctor, capsys, str(sim.cluster_file), "--no-npu")
        assert code == 0, out
        assert [f["id"] for f in out["findings"]] == ["startup-timeout"]

        decode = next(i for i in cluster.instances if i.role == "decode")
        node = cluster.node(decode.node)
        Path(node.hccn_conf).rename(node.hccn_conf + ".moved")
        with socket.socket() as taken:
            taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            taken.bind((node.host, decode.port))
            taken.listen()
            code, out = await asyncio.to_thread(_doctor, capsys, str(sim.cluster_file), "--no-npu")
    findings = out["findings"]
    got = {(f["id"], f["where"]) for f in findings}
    assert ("hccn-conf-missing", f"node {node.name}") in got
    assert ("port-in-use", f"node {node.name}") in got
    assert code == 1
    for f in findings:
        assert set(f) == {"id", "severity", "where", "message", "fix", "source"}
        assert f["severity"] in ("error", "warning", "info")
        assert f["source"].startswith("https://")


def test_offline_doctor_on_a_broken_file_exits_1_and_names_the_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sample = Path(__file__).resolve().parents[2] / "sample_clusters" / "mooncake-a3-2p1d.toml"
    broken = tmp_path / "c.toml"
    broken.write_text(sample.read_text().replace('kv_port = "36100"', 'kv_port = "30000"'))
    code, out = _doctor(capsys, str(broken), "--offline")
    assert code == 1
    assert [f["id"] for f in out["findings"] if f["severity"] == "error"] == ["kv-port-reserved"]


def test_doctor_usage_and_file_errors_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["doctor"]) == 2
    assert main(["doctor", str(tmp_path / "missing.toml"), "--offline"]) == 2
    assert "missing.toml" in capsys.readouterr().err


async def test_live_doctor_runs_the_ranktable_rules_when_the_connector_reads_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pdtui.npu.health import sweep
    from pdtui.ranktable import dumps, generate
    from pdtui.ranktable.sync import push
    from pdtui.ssh.remote import pool_for

    async with runbook_sim(tmp_path, "127.0.63") as sim:
        code, out = await asyncio.to_thread(_doctor, capsys, str(sim.cluster_file))
        missing = [f for f in out["findings"] if f["id"] == "ranktable"]
        assert code == 1 and missing, out
        assert {f["severity"] for f in missing} == {"error"}
        assert all(f["fix"] for f in missing)
        assert {f["where"] for f in missing} >= {"ranktable prefill-0", "ranktable decode-0"}

        cluster = load(sim.cluster_file)
        async with pool_for(cluster) as pool:
            live = {n.name: n for n in await sweep(pool, cluster)}
            await push(pool, cluster, dumps(generate(cluster, live)))
        code, out = await asyncio.to_thread(_doctor, capsys, str(sim.cluster_file))
    assert [f["id"] for f in out["findings"]] == ["startup-timeout"], out
    assert code == 0
