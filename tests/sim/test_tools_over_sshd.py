"""The simulator's fake tools behind a real OpenSSH sshd, on PATH for the login user."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sshd_rig import SshdRig, sshd_unavailable_reason

from pdtui.sim.state import build_state, save_state
from pdtui.sim.tools import sync_tools
from pdtui.ssh import HostKeyStore, SshPool

ADDRS = ["127.0.4.1", "127.0.4.2"]


@pytest.fixture(scope="module")
def node_rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SshdRig, Path]]:
    reason = sshd_unavailable_reason()
    if reason:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("sim-sshd")
    state = build_state(
        [("prefill-0", "172.22.0.218", "A3", 16), ("decode-0", "172.22.0.155", "A3", 16)],
        latency_ms=0,
    )
    save_state(state, root / "state.json")
    sync_tools(state, root / "state.json", root / "nodes")
    # Each listen address plays one node: its fake tools first on PATH for the login user.
    extra = "\n".join(
        f"Match LocalAddress {addr}\n    SetEnv PATH={root / 'nodes' / name / 'bin'}:"
        "/usr/local/bin:/usr/bin:/bin"
        for addr, name in zip(ADDRS, ["prefill-0", "decode-0"], strict=True)
    )
    rig = SshdRig.start(root / "sshd", ADDRS, user="root", extra_config=extra)
    yield rig, root
    rig.stop()


@pytest.mark.slow
async def test_fake_tools_answer_through_real_sshd_as_on_an_npu_node(
    node_rig: tuple[SshdRig, Path],
    tmp_path: Path,
) -> None:
    rig, _root = node_rig
    store = HostKeyStore([rig.write_known_hosts(tmp_path / "kh")], tmp_path / "save")
    async with SshPool(store) as pool:
        p = await pool.run(
            rig.target("prefill-0", ADDRS[0]),
            "hostname; hostname -I; hccn_tool -i 1 -vnic -g; "
            "for i in 0 1; do hccn_tool -i $i -link -g; done",
        )
        assert p.exit_status == 0, p.stderr
        assert p.stdout.splitlines() == [
            "prefill-0",
            "172.22.0.218 ",
            "vnic link status: UP",
            "vnic ipaddr: 192.25.3.198",
            "vnic netmask: 255.255.255.0",
            "link status: UP",
            "link status: UP",
        ]
        d = await pool.run(
            rig.target("decode-0", ADDRS[1]),
            "hostname; hccn_tool -i 0 -hccs_ping -g address 192.25.2.199",
        )
        lines = d.stdout.splitlines()
        assert lines[0] == "decode-0"
        assert lines[1] == "device 0 PING 192.25.2.199"
        assert "3 packets transmitted, 3 received, 0.00% packets loss" in lines
