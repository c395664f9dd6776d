"""pdtui.ssh.redaction: secrets masked in command lines, JSON and tokens."""

from __future__ import annotations

import shlex

from hypothesis import given, settings
from hypothesis import strategies as st

from pdtui.ssh.redaction import redact


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
