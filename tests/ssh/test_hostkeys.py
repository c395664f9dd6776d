"""pdtui.ssh.hostkeys: trusting, saving and locating host keys."""

from __future__ import annotations

import stat
from pathlib import Path

import asyncssh

from pdtui.ssh.hostkeys import HostKeyStore


def test_host_key_store_trust_and_locate(tmp_path: Path) -> None:
    user_kh = tmp_path / "user_known_hosts"
    other = asyncssh.generate_private_key("ssh-ed25519")
    user_kh.write_text(
        "# comment\nbogus line that is not a key\n"
        f"[10.0.0.5]:2222 {other.export_public_key().decode().strip()}\n"
    )
    save = tmp_path / "sub" / "pdtui_known_hosts"
    store = HostKeyStore([user_kh], save)
    key = asyncssh.generate_private_key("ssh-ed25519")
    assert store.match("10.0.0.1", "", 2222)[0] == []
    assert store.match("10.0.0.5", "", 2222)[0] == [other.convert_to_public()]
    assert store.locate("10.0.0.5", "", 2222) == [(str(user_kh), 3)]

    store.trust("10.0.0.1", 2222, key, save=False)
    assert store.match("10.0.0.1", "", 2222)[0] == [key.convert_to_public()]
    assert not save.exists()

    store.trust("10.0.0.2", 22, key, save=True)
    assert stat.S_IMODE(save.stat().st_mode) == 0o600
    line = save.read_text().strip()
    assert line.startswith("10.0.0.2 ssh-ed25519 ")
    store.trust("10.0.0.3", 2200, key, save=True)
    assert save.read_text().splitlines()[1].startswith("[10.0.0.3]:2200 ssh-ed25519 ")
    fresh = HostKeyStore([user_kh], save)
    assert fresh.match("10.0.0.3", "", 2200)[0] == [key.convert_to_public()]
    assert fresh.match("10.0.0.1", "", 2222)[0] == []  # in-memory trust is not persisted
