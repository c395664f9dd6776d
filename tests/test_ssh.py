"""pdtui.ssh pieces that need no server: redaction, backoff, settings resolution, host-key store."""

from __future__ import annotations

import shlex
import stat
from pathlib import Path

import asyncssh
from hypothesis import given, settings
from hypothesis import strategies as st

from pdtui.ssh import (
    CommandTimeout,
    HostKeyStore,
    SshError,
    SshPool,
    SshTarget,
    Unreachable,
    backoff_delay,
    redact,
)


def test_redact_env_pairs_and_tokens() -> None:
    cmd = (
        "export HF_TOKEN=hf_abcdefghijklmnopqrstuvwxyz0123456789 MODEL=/m/x; "
        "env API_KEY='s3 cr3t' DB_PASSWORD=\"p w\" PATH=/bin vllm serve --api-key abc123 "
        "--port 8000; curl -H 'Authorization: Bearer eyJhbGciOi' http://x; "
        "OPENAI=sk-proj-AAAAAAAAAAAAAAAAAAAA"
    )
    out = redact(cmd)
    for secret in ("hf_abcdefghij", "s3 cr3t", "p w", "abc123", "eyJhbGciOi", "sk-proj-AAAA"):
        assert secret not in out, secret
    for kept in ("MODEL=/m/x", "PATH=/bin", "--port 8000", "vllm serve", "http://x"):
        assert kept in out, kept
    assert "HF_TOKEN=***" in out and "API_KEY=***" in out and "DB_PASSWORD=***" in out
    assert redact(out) == out  # idempotent


def test_redact_shlex_quoted_pair_and_json() -> None:
    pair = shlex.quote("MY_SECRET=it's a; $(secret)")
    out = redact(f"exec env {pair} python x.py")
    assert out == "exec env 'MY_SECRET=***' python x.py"
    assert redact('{"api_key": "zzz-top", "port": 1}') == '{"api_key": "***", "port": 1}'
    assert redact("ls -la /tmp; echo keyless") == "ls -la /tmp; echo keyless"


@settings(max_examples=200, deadline=None)
@given(
    name=st.sampled_from(["HF_TOKEN", "API_KEY", "PASSWORD", "my_secret", "AUTH_COOKIE"]),
    value=st.text(
        alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=30
    ).map(lambda v: "Zq" + v + "Xj"),
    whole=st.booleans(),
)
def test_redact_never_leaks_quoted_values(name: str, value: str, whole: bool) -> None:
    pair = shlex.quote(f"{name}={value}") if whole else f"{name}={shlex.quote(value)}"
    out = redact(f"cd /srv && exec env {pair} vllm serve /m")
    assert value not in out
    assert out.endswith(" vllm serve /m")


def test_backoff_schedule() -> None:
    assert [backoff_delay(n) for n in range(0, 8)] == [0, 1, 2, 4, 8, 16, 30, 30]


def test_errors_are_one_line_and_name_the_node() -> None:
    e = Unreachable("node07", "connection refused by 1.2.3.4:22 -\n is sshd running?")
    assert str(e) == "node07: connection refused by 1.2.3.4:22 - is sshd running?"
    t = CommandTimeout("n1", "HF_TOKEN=hf_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa sleep 9", 2)
    assert "\n" not in str(t) and str(t).startswith("n1: ") and "hf_aaaa" not in str(t)
    assert isinstance(t, SshError)


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
