"""Fault injection for the simulator: spec syntax, kind registry, apply/clear, effects.

Spec syntax: ``NODE[:DEVICE]:KIND[=VALUE]``, for example::

    decode-0:3:link-down
    prefill-0:5:net-health=Receive timeout
    decode-0:2:no-ip
    prefill-0:1:ping-loss=decode-0:1
    decode-0:tls-mismatch
    decode-0:tool-missing=hccn_tool
    prefill-0:tool-hang
    decode-0:unreachable
    decode-0:slow=2000

NODE is everything before the first ``:`` (node names may contain ``-``); the next
``:``-separated segment is the DEVICE when it is an integer; the rest is ``KIND`` or
``KIND=VALUE`` split on the first ``=`` (so values may contain ``:`` and ``=``).

Faults are stored in the state (``NodeState.faults``) and applied as overlays when a
tool answers (`effective_device`), so clearing a fault restores the baseline.

Adding a kind = one `register_kind(FaultKind(...))` call.

Choices made here (pdtui's own, not a real tool's):

- The fault kinds, their names and syntax are pdtui's own.
- ``link-down`` also sets net health to ``Fault`` (a link that is down reports that);
  ``no-ip`` removes the RoCE address, gateway and netdetect address and turns a
  ``Success`` net health into ``Init``; an explicit ``net-health=`` wins over both.
- ``tls-mismatch`` flips the TLS switch of every device of the node (0 -> 1).
- ``ping-loss=NODE[:DEVICE]`` loses every packet between the pair, in both directions;
  without DEVICE it covers every device of the target node.
- ``tool-hang`` hangs every fake tool of the node, or only the one named in its value.
- ``slow=MS`` adds MS milliseconds to every tool call of the node.
- ``unreachable`` makes pings to the node fail; the SSH side reads it too.
- Instance faults (no effect on the fake NPU tools, read by the fake vLLM / proxy):
  ``crash-on-start=TEXT``, ``kv-link-broken[=TEXT]``, ``kv-garbled``, ``port-in-use[=PORT]``,
  ``slow-start=SECONDS``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pdtui.sim.state import (
    NET_HEALTH_VALUES,
    DeviceState,
    Fault,
    NodeState,
    SimState,
)

__all__ = [
    "KINDS",
    "TOOL_NAMES",
    "Fault",
    "FaultError",
    "FaultKind",
    "apply_fault",
    "check_fault",
    "clear_faults",
    "effective_device",
    "kind_names",
    "parse_fault",
    "register_kind",
    "tool_output",
]

TOOL_NAMES: tuple[str, ...] = ("hccn_tool", "npu-smi", "hostname", "ip")


class FaultError(ValueError):
    """A fault spec is malformed or does not fit the state (one-line message)."""


Validator = Callable[[str], str | None]  # value -> error text, or None when fine
Effect = Callable[[NodeState, DeviceState, Fault], None]


@dataclass(frozen=True)
class FaultKind:
    """A registered fault kind.

    scope: ``"device"`` (needs ``:DEVICE``) or ``"node"`` (must not have one).
    value: ``"required"``, ``"optional"`` or ``"forbidden"``.
    value_hint: shown in help and error listings (``net-health=STATUS``).
    validate: checks a given value, returns an error text or None.
    effect: mutates an effective device copy (device kinds: the named device; node kinds:
      every device of the node). None for kinds read elsewhere (tool-hang, slow, ...).
    order: effects run in ascending order (later wins).
    multiple: several faults of this kind may coexist on one target when their values
      differ (otherwise applying replaces the old one).
    affects_tools: False for instance faults the fake NPU tools ignore.
    """

    name: str
    scope: str
    value: str = "forbidden"
    value_hint: str = ""
    help: str = ""
    validate: Validator | None = None
    effect: Effect | None = None
    order: int = 0
    multiple: bool = False
    affects_tools: bool = True

    def usage(self) -> str:
        dev = ":DEVICE" if self.scope == "device" else ""
        hint = self.value_hint or "VALUE"
        if self.value == "required":
            return f"{dev}:{self.name}={hint}".lstrip(":")
        if self.value == "optional":
            return f"{dev}:{self.name}[={hint}]".lstrip(":")
        return f"{dev}:{self.name}".lstrip(":")


KINDS: dict[str, FaultKind] = {}


def register_kind(kind: FaultKind) -> FaultKind:
    if kind.scope not in ("device", "node"):
        raise ValueError(f"bad scope {kind.scope!r}")
    if kind.value not in ("required", "optional", "forbidden"):
        raise ValueError(f"bad value rule {kind.value!r}")
    if not kind.name or any(c in kind.name for c in ":= "):
        raise ValueError(f"bad kind name {kind.name!r}")
    KINDS[kind.name] = kind
    return kind


def kind_names() -> list[str]:
    return list(KINDS)


def _kinds_listing() -> str:
    return ", ".join(k.usage() for k in KINDS.values())


# --------------------------------------------------------------------------- validators


def _v_net_health(v: str) -> str | None:
    if v in NET_HEALTH_VALUES:
        return None
    return f"net health must be one of: {', '.join(NET_HEALTH_VALUES)}"


def _v_tool(v: str) -> str | None:
    return None if v in TOOL_NAMES else f"tool must be one of: {', '.join(TOOL_NAMES)}"


def _v_nonneg_int(v: str) -> str | None:
    return None if v.isascii() and v.isdigit() else "must be a whole number >= 0"


def _v_seconds(v: str) -> str | None:
    try:
        ok = float(v) >= 0 and v.strip() == v and v.lower() not in ("inf", "infinity", "nan")
    except ValueError:
        ok = False
    return None if ok else "must be a number of seconds >= 0"


def _v_tool_output(v: str) -> str | None:
    return None if v in ("garbage", "empty") else "must be garbage or empty"


def _v_port(v: str) -> str | None:
    if v.isascii() and v.isdigit() and 1 <= int(v) <= 65535:
        return None
    return "must be a port number 1..65535"


def _v_text(v: str) -> str | None:
    return None if v.strip() and "\n" not in v else "must be non-empty text on one line"


def split_target(v: str) -> tuple[str, int | None] | None:
    """``NODE[:DEVICE]`` -> (node, device); None when malformed."""
    node, sep, dev = v.partition(":")
    if not node or any(c.isspace() for c in node):
        return None
    if not sep:
        return node, None
    if not (dev.isascii() and dev.isdigit()):
        return None
    return node, int(dev)


def _v_ping_target(v: str) -> str | None:
    return None if split_target(v) is not None else "target must be NODE or NODE:DEVICE"


# --------------------------------------------------------------------------- effects


def _e_link_down(node: NodeState, d: DeviceState, f: Fault) -> None:
    d.link = "DOWN"
    d.net_health = "Fault"


def _e_no_ip(node: NodeState, d: DeviceState, f: Fault) -> None:
    d.roce_ip = None
    d.gateway = None
    d.netdetect = None
    if d.net_health == "Success":
        d.net_health = "Init"


def _e_net_health(node: NodeState, d: DeviceState, f: Fault) -> None:
    if f.value is not None:
        d.net_health = f.value


def _e_tls(node: NodeState, d: DeviceState, f: Fault) -> None:
    d.tls_switch = 1 - d.tls_switch if d.tls_switch in (0, 1) else 1


register_kind(
    FaultKind(
        "link-down", "device", help="RoCE link DOWN, net health Fault", effect=_e_link_down, order=0
    )
)
register_kind(
    FaultKind(
        "net-health",
        "device",
        "required",
        "STATUS",
        help="net health status forced to STATUS",
        validate=_v_net_health,
        effect=_e_net_health,
        order=10,
    )
)
register_kind(
    FaultKind("no-ip", "device", help="no RoCE address/gateway/netdetect", effect=_e_no_ip, order=1)
)
register_kind(
    FaultKind(
        "ping-loss",
        "device",
        "required",
        "NODE[:DEVICE]",
        help="pings between this device and the target are lost",
        validate=_v_ping_target,
        multiple=True,
    )
)
register_kind(
    FaultKind("tls-mismatch", "node", help="TLS switch flipped on every device", effect=_e_tls)
)
register_kind(
    FaultKind(
        "tool-missing",
        "node",
        "required",
        "TOOL",
        help="the tool's command is not installed",
        validate=_v_tool,
        multiple=True,
    )
)
register_kind(
    FaultKind(
        "tool-hang",
        "node",
        "optional",
        "TOOL",
        help="tool calls never return",
        validate=_v_tool,
        multiple=True,
    )
)
register_kind(
    FaultKind(
        "tool-output",
        "device",
        "required",
        "garbage|empty",
        help="hccn_tool -g on this device prints garbage, or nothing (rc 0)",
        validate=_v_tool_output,
    )
)
register_kind(FaultKind("unreachable", "node", help="node unreachable (SSH, pings to it)"))
register_kind(
    FaultKind(
        "slow",
        "node",
        "required",
        "MS",
        help="every tool call takes MS ms longer",
        validate=_v_nonneg_int,
    )
)
# Instance faults: registered now, read by the fake vLLM / proxy; no effect on NPU tools.
register_kind(
    FaultKind(
        "crash-on-start",
        "node",
        "required",
        "TEXT",
        help="vLLM instance crashes during start-up",
        validate=_v_text,
        affects_tools=False,
    )
)
register_kind(
    FaultKind(
        "kv-link-broken",
        "node",
        "optional",
        "TEXT",
        help="KV transfer between instances fails",
        validate=_v_text,
        affects_tools=False,
    )
)
register_kind(
    FaultKind(
        "kv-garbled",
        "node",
        help="KV arrives corrupted: decode answers, with other text",
        affects_tools=False,
    )
)
register_kind(
    FaultKind(
        "port-in-use",
        "node",
        "optional",
        "PORT",
        help="the serving port is already taken",
        validate=_v_port,
        affects_tools=False,
    )
)
register_kind(
    FaultKind(
        "slow-start",
        "node",
        "required",
        "SECONDS",
        help="vLLM start-up takes SECONDS longer",
        validate=_v_seconds,
        affects_tools=False,
    )
)


# --------------------------------------------------------------------------- parsing


def _err(spec: str, what: str) -> FaultError:
    return FaultError(
        f"bad fault {spec!r}: {what}; syntax NODE[:DEVICE]:KIND[=VALUE], "
        f"valid kinds: {_kinds_listing()}"
    )


def parse_fault(spec: str, known_nodes: Iterable[str] | None = None) -> Fault:
    """Parse ``NODE[:DEVICE]:KIND[=VALUE]``; raise `FaultError` naming the bad part."""
    if "\n" in spec or "\r" in spec:
        raise _err(spec, "must be one line")
    node, rest = _split_node(spec, known_nodes)
    device, rest = _split_device(spec, rest)
    kind_name, eq, value = rest.partition("=")
    if not kind_name:
        raise _err(spec, "missing KIND")
    kind = KINDS.get(kind_name)
    if kind is None:
        raise _err(spec, f"unknown kind {kind_name!r}")
    if kind.scope == "device" and device is None:
        raise _err(spec, f"kind {kind_name!r} needs a device (NODE:DEVICE:{kind_name})")
    if kind.scope == "node" and device is not None:
        raise _err(spec, f"kind {kind_name!r} applies to a whole node, drop the device")
    val: str | None = value if eq else None
    _check_value(spec, kind, val, bool(eq))
    return Fault(node=node, device=device, kind=kind_name, value=val)


def _split_node(spec: str, known_nodes: Iterable[str] | None) -> tuple[str, str]:
    """(node name, the rest after its ``:``)."""
    node, sep, rest = spec.partition(":")
    if not sep:
        raise _err(spec, "missing ':KIND' after the node name")
    if not node or any(c.isspace() for c in node):
        raise _err(spec, f"bad node name {node!r}")
    if known_nodes is not None:
        known = list(known_nodes)
        if node not in known:
            raise _err(spec, f"unknown node {node!r} (known: {', '.join(known) or 'none'})")
    return node, rest


def _split_device(spec: str, rest: str) -> tuple[int | None, str]:
    """(device index or None, ``KIND[=VALUE]``) from what follows the node."""
    head, sep, tail = rest.partition(":")
    if head.partition("=")[0] in KINDS or not head.lstrip("-+").isdigit():
        return None, rest
    if not (head.isascii() and head.isdigit()):
        raise _err(spec, f"bad device {head!r} (must be an index >= 0)")
    if not sep:
        raise _err(spec, f"missing ':KIND' after device {head}")
    return int(head), tail


def _check_value(spec: str, kind: FaultKind, val: str | None, has_eq: bool) -> None:
    """Raise unless ``val`` suits ``kind`` (required, forbidden, non-empty, valid)."""
    if kind.value == "required" and not val:
        raise _err(spec, f"kind {kind.name!r} needs a value ({kind.usage()})")
    if kind.value == "forbidden" and val is not None:
        raise _err(spec, f"kind {kind.name!r} takes no value")
    if has_eq and not val:
        raise _err(spec, f"empty value for {kind.name!r}")
    if val is not None and kind.validate is not None:
        problem = kind.validate(val)
        if problem is not None:
            raise _err(spec, f"bad value {val!r} for {kind.name!r}: {problem}")


def check_fault(state: SimState, fault: Fault) -> None:
    """Validate a parsed fault against the state (node exists, device in range, ...)."""
    spec = str(fault)
    names = state.node_names()
    if fault.node not in names:
        raise _err(spec, f"unknown node {fault.node!r} (known: {', '.join(names) or 'none'})")
    node = state.node(fault.node)
    if fault.device is not None and not 0 <= fault.device < node.npus:
        raise _err(
            spec, f"device {fault.device} out of range, {node.name} has devices 0..{node.npus - 1}"
        )
    if fault.kind == "ping-loss" and fault.value is not None:
        target = split_target(fault.value)
        if target is None:
            raise _err(spec, "ping-loss target must be NODE or NODE:DEVICE")
        tnode, tdev = target
        if tnode not in names:
            raise _err(spec, f"unknown ping-loss target node {tnode!r}")
        tn = state.node(tnode)
        if tdev is not None and not 0 <= tdev < tn.npus:
            raise _err(
                spec,
                f"ping-loss target device {tdev} out of range, {tnode} has "
                f"devices 0..{tn.npus - 1}",
            )


def apply_fault(state: SimState, fault: Fault | str) -> Fault:
    """Validate and store `fault` on its node (replacing an older one of the same kind)."""
    f = parse_fault(fault, state.node_names()) if isinstance(fault, str) else fault
    if f.kind not in KINDS:
        raise _err(str(f), f"unknown kind {f.kind!r}")
    check_fault(state, f)
    node = state.node(f.node)
    kind = KINDS[f.kind]
    kept: list[Fault] = []
    for old in node.faults:
        same_target = old.kind == f.kind and old.device == f.device
        if same_target and (not kind.multiple or old.value == f.value):
            continue
        kept.append(old)
    kept.append(f)
    node.faults = kept
    return f


def clear_faults(
    state: SimState,
    node: str | None = None,
    device: int | None = None,
    kind: str | None = None,
) -> list[Fault]:
    """Remove matching faults (None = any); return the removed ones."""
    removed: list[Fault] = []
    for n in state.nodes:
        if node is not None and n.name != node:
            continue
        keep: list[Fault] = []
        for f in n.faults:
            match = (device is None or f.device == device) and (kind is None or f.kind == kind)
            (removed if match else keep).append(f)
        n.faults = keep
    return removed


# --------------------------------------------------------------------------- effects view


def effective_device(node: NodeState, dev: int) -> DeviceState:
    """A copy of device `dev` with the node's faults applied (effects set scalar fields only,
    so a shallow copy keeps the baseline intact)."""
    d = copy.copy(node.device(dev))
    relevant = [
        f
        for f in node.faults
        if f.kind in KINDS
        and KINDS[f.kind].effect is not None
        and (f.device is None or f.device == dev)
    ]
    relevant.sort(key=lambda f: KINDS[f.kind].order)
    for f in relevant:
        effect = KINDS[f.kind].effect
        if effect is not None:
            effect(node, d, f)
    return d


def is_unreachable(node: NodeState) -> bool:
    return bool(node.faults_of("unreachable"))


def tool_missing(node: NodeState, tool: str) -> bool:
    return any(f.value == tool for f in node.faults_of("tool-missing"))


def tool_hangs(node: NodeState, tool: str) -> bool:
    return any(f.value in (None, tool) for f in node.faults_of("tool-hang"))


def tool_output(node: NodeState, dev: int) -> str | None:
    """``garbage``/``empty`` when a tool-output fault covers the device."""
    found = node.faults_of("tool-output", dev)
    return found[-1].value if found else None


def extra_latency_ms(node: NodeState) -> int:
    return sum(int(f.value) for f in node.faults_of("slow") if f.value and f.value.isdigit())


def ping_lost(state: SimState, a: tuple[str, int], b: tuple[str, int]) -> bool:
    """True when a ping-loss fault covers the pair (either direction)."""

    def covers(src: tuple[str, int], dst: tuple[str, int]) -> bool:
        try:
            node = state.node(src[0])
        except Exception:
            return False
        for f in node.faults_of("ping-loss", src[1]):
            target = split_target(f.value or "")
            if target is None:
                continue
            tnode, tdev = target
            if tnode == dst[0] and (tdev is None or tdev == dst[1]):
                return True
        return False

    return covers(a, b) or covers(b, a)
