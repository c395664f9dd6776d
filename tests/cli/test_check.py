"""`pdtui check` through a subprocess against `pdtui sim up`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def pdtui(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pdtui", *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow
def test_healthy_cluster_exits_0_with_plain_symbols(sim_up: Path) -> None:
    r = pdtui("check", str(sim_up))
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines[2].startswith("prefill-0") and lines[2].split()[1:17] == ["+"] * 16
    assert "\x1b[" not in r.stdout  # not a terminal: no colour codes
    assert "no problems" in r.stdout


@pytest.mark.slow
def test_faults_exit_1_and_json_names_device_state_and_reason(sim_up: Path) -> None:
    assert (
        pdtui(
            "sim", "fault", str(sim_up), "decode-0:3:link-down", "prefill-0:1:ping-loss=decode-0:1"
        ).returncode
        == 0
    )
    r = pdtui("check", str(sim_up), "--json", "--ping")
    assert r.returncode == 1
    data = json.loads(r.stdout)
    nodes = {n["name"]: n for n in data["nodes"]}
    assert set(nodes) == {"prefill-0", "decode-0"}
    d3 = nodes["decode-0"]["devices"][3]
    assert d3["id"] == 3 and d3["state"] == "fail" and "link DOWN" in d3["reasons"]
    assert d3["link"] == "DOWN" and d3["raw"]["link"]["stdout"] == "link status: DOWN\n"
    assert nodes["decode-0"]["reachable"] is True and nodes["decode-0"]["error"] is None
    lost = [p for p in data["pings"] if not p["ok"]]
    assert {(p["src_node"], p["src_dev"], p["dst_node"], p["dst_dev"]) for p in lost} == {
        ("prefill-0", 1, "decode-0", 1),
        ("decode-0", 1, "prefill-0", 1),
    }

    text = pdtui("check", str(sim_up), "--ping")
    assert "X decode-0:3  link DOWN" in text.stdout
    assert "X 15/16" in text.stdout  # the ping matrix


@pytest.mark.slow
def test_unreachable_node_is_reported_not_fatal(sim_up: Path) -> None:
    pdtui("sim", "fault", str(sim_up), "decode-0:unreachable")
    import time

    time.sleep(1)
    r = pdtui("check", str(sim_up), "--json")
    assert r.returncode == 1
    nodes = {n["name"]: n for n in json.loads(r.stdout)["nodes"]}
    assert nodes["decode-0"]["reachable"] is False and "refused" in nodes["decode-0"]["error"]
    assert nodes["prefill-0"]["state"] == "ok"


@pytest.mark.slow
def test_bad_cluster_file_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "c.toml"
    bad.write_text("[cluster]\n")
    r = pdtui("check", str(bad))
    assert r.returncode == 2 and "c.toml: cluster.name: missing required key" in r.stderr


def test_watch_shows_the_live_model_and_drops_pings_when_health_changes() -> None:
    """``--watch`` renders the live model's samples, as the app does: a newer sweep replaces
    a node's sample, and the pings go once the health under them changed."""
    from dataclasses import replace

    from pdtui.cli.check import watched
    from pdtui.cluster import load
    from pdtui.live import LiveModel
    from pdtui.npu.health import CheckReport
    from pdtui.npu.model import NodeHealth, PingResult, Raw

    cluster = load(
        Path(__file__).resolve().parents[2] / "sample_clusters" / "deepseek-v3.2-a3-1p1d.toml"
    )
    names = [n.name for n in cluster.nodes]
    first = [NodeHealth(name=n, soc="A3", reachable=True, taken_at=10.0) for n in names]
    ping = PingResult(
        names[0],
        0,
        names[1],
        0,
        "10.0.0.2",
        3,
        3,
        0.0,
        0.1,
        True,
        None,
        Raw("hccn_tool -i 0 -ping -g address 10.0.0.2", 0, "", ""),
    )
    model = LiveModel(clock=lambda: 11.0)
    shown = watched(model, cluster, CheckReport(cluster.name, first, [ping]))
    assert [n.name for n in shown.nodes] == names and shown.pings == [ping]
    later = [
        replace(first[0], taken_at=20.0, reachable=False, error="ssh: timed out"),
        replace(first[1], taken_at=20.0),
    ]
    shown = watched(model, cluster, CheckReport(cluster.name, later))
    assert shown.nodes[0].error == "ssh: timed out" and shown.pings == []
