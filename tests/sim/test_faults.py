"""Fault specs: parsing, validation, registry, apply/clear, effects."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pdtui.sim.faults import (
    KINDS,
    TOOL_NAMES,
    Fault,
    FaultError,
    FaultKind,
    apply_fault,
    clear_faults,
    effective_device,
    extra_latency_ms,
    kind_names,
    parse_fault,
    ping_lost,
    register_kind,
    tool_hangs,
    tool_missing,
)
from pdtui.sim.state import NET_HEALTH_VALUES, SimState, build_state


def cluster() -> SimState:
    return build_state(
        [
            ("prefill-0", "10.0.0.1", "A3", 16),
            ("decode-0", "10.0.0.2", "A3", 16),
            ("a2-0", "10.0.0.3", "A2", 8),
        ],
        latency_ms=0,
    )


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("decode-0:3:link-down", Fault("decode-0", 3, "link-down", None)),
        (
            "prefill-0:5:net-health=Receive timeout",
            Fault("prefill-0", 5, "net-health", "Receive timeout"),
        ),
        ("decode-0:2:no-ip", Fault("decode-0", 2, "no-ip", None)),
        ("prefill-0:1:ping-loss=decode-0:1", Fault("prefill-0", 1, "ping-loss", "decode-0:1")),
        ("prefill-0:1:ping-loss=decode-0", Fault("prefill-0", 1, "ping-loss", "decode-0")),
        ("decode-0:tls-mismatch", Fault("decode-0", None, "tls-mismatch", None)),
        ("decode-0:tool-missing=hccn_tool", Fault("decode-0", None, "tool-missing", "hccn_tool")),
        ("prefill-0:tool-hang", Fault("prefill-0", None, "tool-hang", None)),
        ("prefill-0:tool-hang=npu-smi", Fault("prefill-0", None, "tool-hang", "npu-smi")),
        ("decode-0:unreachable", Fault("decode-0", None, "unreachable", None)),
        ("decode-0:slow=2000", Fault("decode-0", None, "slow", "2000")),
        (
            "decode-0:crash-on-start=RuntimeError: x=1",
            Fault("decode-0", None, "crash-on-start", "RuntimeError: x=1"),
        ),
        ("decode-0:kv-link-broken", Fault("decode-0", None, "kv-link-broken", None)),
        ("decode-0:port-in-use", Fault("decode-0", None, "port-in-use", None)),
        ("decode-0:port-in-use=8000", Fault("decode-0", None, "port-in-use", "8000")),
        ("decode-0:slow-start=30", Fault("decode-0", None, "slow-start", "30")),
        ("decode-0:slow-start=2.5", Fault("decode-0", None, "slow-start", "2.5")),
        ("7:0:link-down", Fault("7", 0, "link-down", None)),
    ],
)
def test_parse_valid(spec: str, expected: Fault) -> None:
    f = parse_fault(spec)
    assert f == expected
    assert str(f) == spec


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("decode-0", "missing ':KIND'"),
        (":3:link-down", "bad node name ''"),
        ("decode-0:3:lnk-down", "unknown kind 'lnk-down'"),
        ("decode-0:", "missing KIND"),
        ("decode-0:3", "missing ':KIND' after device 3"),
        ("decode-0:-1:link-down", "bad device '-1'"),
        ("decode-0:link-down", "kind 'link-down' needs a device"),
        ("decode-0:3:tls-mismatch", "kind 'tls-mismatch' applies to a whole node"),
        ("decode-0:3:net-health", "kind 'net-health' needs a value"),
        ("decode-0:3:net-health=", "kind 'net-health' needs a value"),
        ("decode-0:3:link-down=1", "kind 'link-down' takes no value"),
        ("decode-0:3:net-health=Bad", "bad value 'Bad' for 'net-health': net health must be"),
        ("decode-0:3:net-health=success", "bad value 'success'"),
        ("prefill-0:1:ping-loss=decode-0:x", "target must be NODE or NODE:DEVICE"),
        ("decode-0:tool-missing=ssh", "tool must be one of: hccn_tool, npu-smi, hostname"),
        ("decode-0:slow=fast", "bad value 'fast' for 'slow'"),
        ("decode-0:slow=-5", "bad value '-5' for 'slow'"),
        ("decode-0:port-in-use=0", "must be a port number"),
        ("decode-0:slow-start=inf", "bad value 'inf'"),
        ("decode-0:tool-hang=", "empty value for 'tool-hang'"),
        ("decode 0:unreachable", "bad node name 'decode 0'"),
        ("a:unreachable\nb", "must be one line"),
    ],
)
def test_parse_invalid(spec: str, fragment: str) -> None:
    with pytest.raises(FaultError) as info:
        parse_fault(spec)
    msg = str(info.value)
    assert fragment in msg
    assert "\n" not in msg
    assert "valid kinds: " in msg and "link-down" in msg and "net-health=STATUS" in msg
    if "net health must be" in fragment:
        for v in NET_HEALTH_VALUES:
            assert v in msg


def test_parse_known_nodes() -> None:
    assert parse_fault("decode-0:unreachable", ["decode-0"]).node == "decode-0"
    with pytest.raises(FaultError, match=r"unknown node 'decode-9' \(known: a, b\)"):
        parse_fault("decode-9:unreachable", ["a", "b"])


def test_apply_checks_state() -> None:
    s = cluster()
    with pytest.raises(FaultError, match=r"device 16 out of range, decode-0 has devices 0\.\.15"):
        apply_fault(s, "decode-0:16:link-down")
    with pytest.raises(FaultError, match=r"device 8 out of range, a2-0 has devices 0\.\.7"):
        apply_fault(s, "a2-0:8:no-ip")
    with pytest.raises(FaultError, match="unknown node 'zz'"):
        apply_fault(s, "zz:unreachable")
    with pytest.raises(FaultError, match="unknown ping-loss target node 'zz'"):
        apply_fault(s, "prefill-0:1:ping-loss=zz:1")
    with pytest.raises(FaultError, match="ping-loss target device 9 out of range"):
        apply_fault(s, "prefill-0:1:ping-loss=a2-0:9")
    with pytest.raises(FaultError, match="unknown node"):
        apply_fault(s, Fault("zz", None, "unreachable"))
    assert all(not n.faults for n in s.nodes)


def test_apply_replaces_and_accumulates() -> None:
    s = cluster()
    apply_fault(s, "decode-0:3:net-health=Init")
    apply_fault(s, "decode-0:3:net-health=Fault")
    apply_fault(s, "decode-0:4:net-health=Init")
    apply_fault(s, "prefill-0:1:ping-loss=decode-0:1")
    apply_fault(s, "prefill-0:1:ping-loss=decode-0:2")
    apply_fault(s, "prefill-0:1:ping-loss=decode-0:2")
    apply_fault(s, "decode-0:slow=10")
    apply_fault(s, "decode-0:slow=20")
    assert [str(f) for f in s.node("decode-0").faults] == [
        "decode-0:3:net-health=Fault",
        "decode-0:4:net-health=Init",
        "decode-0:slow=20",
    ]
    assert [str(f) for f in s.node("prefill-0").faults] == [
        "prefill-0:1:ping-loss=decode-0:1",
        "prefill-0:1:ping-loss=decode-0:2",
    ]


def test_clear_faults() -> None:
    s = cluster()
    for spec in (
        "decode-0:3:link-down",
        "decode-0:4:link-down",
        "decode-0:3:no-ip",
        "decode-0:unreachable",
        "prefill-0:2:link-down",
    ):
        apply_fault(s, spec)
    removed = clear_faults(s, node="decode-0", device=3)
    assert [str(f) for f in removed] == ["decode-0:3:link-down", "decode-0:3:no-ip"]
    assert [str(f) for f in clear_faults(s, kind="link-down")] == [
        "prefill-0:2:link-down",
        "decode-0:4:link-down",
    ]
    assert [str(f) for f in clear_faults(s)] == ["decode-0:unreachable"]
    assert clear_faults(s) == []


def test_effects_only_on_target_device() -> None:
    s = cluster()
    node = s.node("decode-0")
    base = [effective_device(node, d) for d in range(16)]
    apply_fault(s, "decode-0:3:link-down")
    apply_fault(s, "decode-0:5:net-health=Receive timeout")
    apply_fault(s, "decode-0:2:no-ip")
    after = [effective_device(node, d) for d in range(16)]
    changed = {d for d in range(16) if after[d] != base[d]}
    assert changed == {2, 3, 5}
    assert (after[3].link, after[3].net_health) == ("DOWN", "Fault")
    assert after[5].net_health == "Receive timeout" and after[5].link == "UP"
    assert (after[2].roce_ip, after[2].gateway, after[2].netdetect, after[2].net_health) == (
        None,
        None,
        None,
        "Init",
    )
    # the stored baseline is untouched
    assert node.devices[3].link == "UP" and node.devices[2].roce_ip is not None


def test_effect_order_net_health_wins() -> None:
    s = cluster()
    apply_fault(s, "decode-0:3:net-health=Unknown")
    apply_fault(s, "decode-0:3:link-down")
    apply_fault(s, "decode-0:3:no-ip")
    assert effective_device(s.node("decode-0"), 3).net_health == "Unknown"
    clear_faults(s, kind="net-health")
    assert effective_device(s.node("decode-0"), 3).net_health == "Fault"


def test_node_level_helpers() -> None:
    s = cluster()
    n = s.node("decode-0")
    apply_fault(s, "decode-0:tls-mismatch")
    assert {effective_device(n, d).tls_switch for d in range(16)} == {1}
    assert effective_device(s.node("prefill-0"), 0).tls_switch == 0
    apply_fault(s, "decode-0:tool-missing=npu-smi")
    apply_fault(s, "decode-0:tool-missing=hostname")
    assert [t for t in TOOL_NAMES if tool_missing(n, t)] == ["npu-smi", "hostname"]
    apply_fault(s, "decode-0:tool-hang=hccn_tool")
    assert tool_hangs(n, "hccn_tool") and not tool_hangs(n, "npu-smi")
    apply_fault(s, "decode-0:tool-hang")
    assert tool_hangs(n, "npu-smi")
    apply_fault(s, "decode-0:slow=250")
    assert extra_latency_ms(n) == 250 and extra_latency_ms(s.node("a2-0")) == 0


def test_ping_lost_both_directions() -> None:
    s = cluster()
    apply_fault(s, "prefill-0:1:ping-loss=decode-0:1")
    apply_fault(s, "prefill-0:2:ping-loss=decode-0")
    assert ping_lost(s, ("prefill-0", 1), ("decode-0", 1))
    assert ping_lost(s, ("decode-0", 1), ("prefill-0", 1))
    assert not ping_lost(s, ("prefill-0", 1), ("decode-0", 2))
    assert not ping_lost(s, ("prefill-0", 0), ("decode-0", 1))
    assert ping_lost(s, ("decode-0", 9), ("prefill-0", 2))


def test_instance_kinds_registered_without_tool_effect() -> None:
    for name in ("crash-on-start", "kv-link-broken", "port-in-use", "slow-start"):
        kind = KINDS[name]
        assert kind.affects_tools is False and kind.effect is None and kind.scope == "node"
    assert {
        "link-down",
        "net-health",
        "no-ip",
        "ping-loss",
        "tls-mismatch",
        "tool-missing",
        "tool-hang",
        "unreachable",
        "slow",
    } <= set(kind_names())


def test_register_kind_extends_parser() -> None:
    register_kind(FaultKind("hbm-full", "device", "optional", "MB", help="test kind"))
    try:
        assert parse_fault("decode-0:1:hbm-full=10") == Fault("decode-0", 1, "hbm-full", "10")
        with pytest.raises(FaultError, match=r"valid kinds: .*, DEVICE:hbm-full\[=MB\]"):
            parse_fault("decode-0:nope")
    finally:
        del KINDS["hbm-full"]
    with pytest.raises(ValueError):
        register_kind(FaultKind("bad:name", "node"))
    with pytest.raises(ValueError):
        register_kind(FaultKind("x", "cluster"))


# --------------------------------------------------------------------------- round trip

_node = st.from_regex(r"[a-z][a-z0-9_.-]{0,12}", fullmatch=True)
_dev = st.integers(min_value=0, max_value=15)
_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")),
    min_size=1,
).filter(lambda s: s.strip() != "")


@st.composite
def specs(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(sorted(KINDS)))
    node = draw(_node)
    dev = f":{draw(_dev)}" if KINDS[kind].scope == "device" else ""
    value_of = {
        "net-health": st.sampled_from(NET_HEALTH_VALUES),
        "ping-loss": st.builds(
            lambda n, d: n + d, _node, st.one_of(st.just(""), _dev.map(lambda i: f":{i}"))
        ),
        "tool-missing": st.sampled_from(TOOL_NAMES),
        "tool-output": st.sampled_from(["garbage", "empty"]),
        "tool-hang": st.one_of(st.none(), st.sampled_from(TOOL_NAMES)),
        "slow": st.integers(0, 10**6).map(str),
        "crash-on-start": _text,
        "kv-link-broken": st.one_of(st.none(), _text),
        "port-in-use": st.one_of(st.none(), st.integers(1, 65535).map(str)),
        "slow-start": st.one_of(
            st.integers(0, 999).map(str), st.floats(0, 999, allow_nan=False).map(str)
        ),
    }
    strategy = value_of.get(kind, st.none())
    value = draw(strategy)
    return f"{node}{dev}:{kind}" + ("" if value is None else f"={value}")


@given(specs())
@pytest.mark.slow
def test_fault_spec_round_trip(spec: str) -> None:
    assert str(parse_fault(spec)) == spec
