"""`pdtui nodes`: reachability and identity over real SSH, and the CLI's host-key policy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import asyncssh
import pytest


def pdtui(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pdtui", *args], capture_output=True, text=True, timeout=60
    )


def known_hosts(cluster: Path) -> Path:
    return cluster.parent / f"{cluster.stem}.sim" / "known_hosts"


@pytest.mark.slow
def test_every_node_reachable_with_its_data_plane_ip(sim_up: Path) -> None:
    r = pdtui("nodes", str(sim_up))
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("✓ prefill-0") and "172.22.0.218" in lines[0]
    assert lines[1].startswith("✓ decode-0") and "172.22.0.155" in lines[1]
    assert lines[-1] == "2/2 nodes reachable and consistent"


@pytest.mark.slow
def test_json_output_has_every_node(sim_up: Path) -> None:
    r = pdtui("nodes", str(sim_up), "--json")
    data = json.loads(r.stdout)
    assert [(n["name"], n["reachable"], n["hostname"], n["ip_ok"]) for n in data["nodes"]] == [
        ("prefill-0", True, "prefill-0", True),
        ("decode-0", True, "decode-0", True),
    ]


@pytest.mark.slow
def test_a_data_plane_ip_the_node_does_not_have_is_a_finding(sim_up: Path) -> None:
    text = sim_up.read_text().replace('ip = "172.22.0.155"', 'ip = "172.22.0.156"')
    wrong = sim_up.with_name("wrong.toml")
    wrong.write_text(text)
    r = pdtui("nodes", str(wrong))
    assert r.returncode == 1
    assert (
        "data-plane ip 172.22.0.156 is not an address of the node (hostname -I: 172.22.0.155)"
    ) in r.stdout


@pytest.mark.slow
def test_unknown_host_keys_are_refused_unless_accept_new(sim_up: Path) -> None:
    kh = known_hosts(sim_up)
    original = kh.read_text()
    kh.write_text("")
    r = pdtui("nodes", str(sim_up))
    assert r.returncode == 1
    assert "unknown host key for [127.0.3.1]:" in r.stdout and "SHA256:" in r.stdout
    assert "--accept-new-host-keys" in r.stdout
    assert kh.read_text() == ""

    r = pdtui("nodes", str(sim_up), "--accept-new-host-keys")
    assert r.returncode == 0, r.stdout
    saved = {line.split()[2] for line in kh.read_text().splitlines()}
    assert saved == {line.split()[2] for line in original.splitlines()}
    assert pdtui("nodes", str(sim_up)).returncode == 0


@pytest.mark.slow
def test_a_changed_host_key_is_refused_even_with_accept_new(sim_up: Path) -> None:
    kh = known_hosts(sim_up)
    lines = kh.read_text().splitlines()
    impostor = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    kh.write_text(f"{lines[0].split()[0]} {impostor}\n{lines[1]}\n")
    r = pdtui("nodes", str(sim_up), "--accept-new-host-keys")
    assert r.returncode == 1
    assert "HOST KEY CHANGED" in r.stdout and "refused" in r.stdout
    assert kh.read_text().count("\n") == 2  # nothing was added or replaced
