"""The doctor's node script, run by a real bash on this machine, and its parser."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from pdtui import cluster as cl
from pdtui.doctor.facts import node_script, parse_node

NODE = cl.loads("""
[cluster]
name = "t"
[[nodes]]
name = "n0"
host = "127.0.0.1"
[model]
path = "/models/m"
served_name = "m"
""").nodes[0]


def test_script_reports_env_listening_ports_files_and_versions(tmp_path: Path) -> None:
    present = tmp_path / "hccn.conf"
    present.write_text("address_0=1.2.3.4\n")
    odd = tmp_path / "it's here; rm -rf x"
    odd.write_text("")
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        port = srv.getsockname()[1]
        script = node_script(
            NODE, [str(present), str(tmp_path / "absent"), str(odd)], python=sys.executable
        )
        out = subprocess.run(
            ["bash", "-c", script],
            capture_output=True,
            text=True,
            env={"PATH": "/usr/bin:/bin", "http_proxy": "http://p:1"},
            check=True,
        ).stdout
    facts = parse_node("n0", out)
    assert ("127.0.0.1", port) in facts.listening
    assert facts.env["http_proxy"] == "http://p:1"
    assert facts.files == {str(present): True, str(tmp_path / "absent"): False, str(odd): True}
    assert (tmp_path / "x").exists() is False


def test_parser_skips_lines_that_do_not_fit() -> None:
    text = (
        "tcp 0100007F:zzzz\ntcp 00000000:1F90\ntcp 0102A8C0:0050\ntcp XYZ:0050\n"
        "tcp 00000000000000000000000001000000:0016\nfile 2 /x\nver onlyone\ngarbage\n"
        "env NOEQ\n"
    )
    facts = parse_node("n0", text)
    assert facts.listening == frozenset({("*", 8080), ("192.168.2.1", 80), ("::1", 22)})
    assert facts.files == {} and facts.versions == {} and facts.env == {}
