"""pdtui.ssh.target: settings resolved from the target and ssh config, and jump-host chains."""

from __future__ import annotations

from pathlib import Path

from pdtui.ssh.hostkeys import HostKeyStore
from pdtui.ssh.pool import SshPool
from pdtui.ssh.target import SshTarget, parse_hop


def test_effective_settings_from_ssh_config(tmp_path: Path) -> None:
    cfg = tmp_path / "config"
    cfg.write_text(
        "Host node07\n  HostName 127.0.0.1\n  Port 2222\n  User npu\n  ProxyJump bastion\n"
        "  IdentityFile /keys/id_x\n"
        "Host bastion\n  HostName 127.0.0.9\n  User jump\n"
    )
    store = HostKeyStore([], tmp_path / "kh")
    pool = SshPool(store)
    eff = pool.effective(SshTarget("n7", "node07", ssh_config=(str(cfg),)))
    assert (eff.host, eff.port, eff.user, eff.jump) == ("127.0.0.1", 2222, "npu", ("bastion",))
    assert eff.identity_files == ("/keys/id_x",)
    # explicit fields win
    eff2 = pool.effective(
        SshTarget("n7", "node07", port=22, user="root", jump=("j1", "j2"), ssh_config=(str(cfg),))
    )
    assert (eff2.port, eff2.user, eff2.jump) == (22, "root", ("j1", "j2"))
    # hops resolve through the config too, and chain on each other
    hops = pool._hop_targets(SshTarget("n7", "node07", ssh_config=(str(cfg),)))
    assert [h.name for h in hops] == ["jump:bastion"]
    assert pool.effective(hops[0]).host == "127.0.0.9"
    assert pool.effective(hops[0]).user == "jump"
    hops = pool._hop_targets(SshTarget("x", "10.0.0.1", jump=("a@h1:2200", "h2"), ssh_config=None))
    assert [(h.user, h.host, h.port, h.jump) for h in hops] == [
        ("a", "h1", 2200, ()),
        (None, "h2", None, ("a@h1:2200",)),
    ]
    # config off: nothing is read
    eff3 = pool.effective(SshTarget("n7", "node07", ssh_config=None))
    assert (eff3.host, eff3.port, eff3.jump) == ("node07", 22, ())


def test_parse_hop_forms() -> None:
    assert parse_hop("bastion") == (None, "bastion", None)
    assert parse_hop(" a@h1:2200 ") == ("a", "h1", 2200)
    assert parse_hop("u@[fd00::1]:2222") == ("u", "fd00::1", 2222)
    assert parse_hop("fd00::1") == (None, "fd00::1", None)
