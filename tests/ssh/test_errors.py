"""pdtui.ssh.errors: one-line messages that name the node and never leak secrets."""

from __future__ import annotations

from pdtui.ssh.errors import CommandTimeout, SshError, Unreachable


def test_errors_are_one_line_and_name_the_node() -> None:
    e = Unreachable("node07", "connection refused by 1.2.3.4:22 -\n is sshd running?")
    assert str(e) == "node07: connection refused by 1.2.3.4:22 - is sshd running?"
    t = CommandTimeout("n1", "HF_TOKEN=hf_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa sleep 9", 2)
    assert "\n" not in str(t) and str(t).startswith("n1: ") and "hf_aaaa" not in str(t)
    assert isinstance(t, SshError)
