"""`pdtui ranktable ...` through a subprocess against `pdtui sim up`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pdtui.cluster import load


def pdtui(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pdtui", *args],
        capture_output=True,
        text=True,
        timeout=120,
        input=stdin,
    )


@pytest.mark.slow
def test_generate_lint_push_diff_round_trip(sim_up: Path, tmp_path: Path) -> None:
    out = tmp_path / "rt.json"
    g = pdtui("ranktable", "generate", str(sim_up), "-o", str(out))
    assert g.returncode == 0, g.stdout + g.stderr
    # Each stage on stderr as it is reached; plain lines when piped.
    assert "NPU data: asking 2 nodes" in g.stderr and "(2 of 2 nodes)" in g.stderr
    assert "\r" not in g.stderr
    rt = json.loads(out.read_text())
    assert list(rt) == [
        "version",
        "server_count",
        "prefill_device_list",
        "decode_device_list",
        "status",
    ]
    assert rt["server_count"] == "2" and len(rt["prefill_device_list"]) == 16
    first = rt["prefill_device_list"][0]
    assert first == {
        "server_id": "172.22.0.218",
        "device_id": "0",
        "device_ip": "192.25.2.199",
        "super_pod_id": "0",
        "super_device_id": "104857600",
        "cluster_id": "1",
    }
    assert rt["decode_device_list"][-1]["cluster_id"] == "32"

    lint = pdtui("ranktable", "lint", str(out), "--cluster", str(sim_up), "--offline")
    assert lint.returncode == 0 and "clean" in lint.stdout

    d = pdtui("ranktable", "diff", str(sim_up), str(out), "--json")
    assert d.returncode == 1
    assert {n["node"]: n["state"] for n in json.loads(d.stdout)["nodes"]} == {
        "prefill-0": "missing",
        "decode-0": "missing",
    }

    p = pdtui("ranktable", "push", str(sim_up), str(out))
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.count("written, sha256") == 2
    cluster = load(sim_up)
    for n in cluster.nodes:
        assert Path(cluster.ranktable_path(n)).read_text() == out.read_text()
    assert pdtui("ranktable", "diff", str(sim_up), str(out)).returncode == 0

    # A changed local file: push shows the diff and refuses without --yes when not a tty.
    rt["prefill_device_list"][3]["device_ip"] = "192.25.3.195"
    out.write_text(json.dumps(rt, indent=4))
    p = pdtui("ranktable", "push", str(sim_up), str(out))
    assert p.returncode == 2 and "rerun with --yes" in p.stderr
    assert '-            "device_ip": "192.25.3.196",' in p.stdout  # the diff was shown
    assert '+            "device_ip": "192.25.3.195",' in p.stdout
    live_lint = pdtui("ranktable", "lint", str(out), "--cluster", str(sim_up), "--json")
    findings = json.loads(live_lint.stdout)["findings"]
    assert any(f["location"] == "prefill_device_list[3].device_ip" for f in findings)


@pytest.mark.slow
def test_lint_without_cluster_checks_the_shape(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "version": "1.2",
                "server_count": 2,
                "prefill_device_list": [],
                "decode_device_list": [],
                "status": "completed",
            }
        )
    )
    r = pdtui("ranktable", "lint", str(bad), "--json")
    assert r.returncode == 1
    assert any(f["location"] == "server_count" for f in json.loads(r.stdout)["findings"])
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    r = pdtui("ranktable", "lint", str(broken))
    assert r.returncode == 2 and "broken.json" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_a_cluster_without_a_ranktable_section_is_a_clear_error() -> None:
    root = Path(__file__).resolve().parents[2]
    r = pdtui("ranktable", "generate", str(root / "sample_clusters" / "mooncake-a3-2p1d.toml"))
    assert r.returncode == 2 and "missing [ranktable] section" in r.stderr
