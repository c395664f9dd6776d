"""Fake ``hccn_tool``, ``npu-smi`` and ``hostname`` for the simulator.

Run as ``python -m pdtui.sim.tools <tool> ARGS...`` (normally through the ``#!/bin/sh``
wrappers written by `install_tools`). The node is chosen by the environment:
``PDTUI_SIM_STATE`` (path to the state JSON) and ``PDTUI_SIM_NODE`` (node name). The state
file is re-read on every call, so fault changes take effect on the next call. Each call
first sleeps the state's ``latency_ms`` plus the node's ``slow`` fault.

Output texts follow the real tools byte for byte where they are known (the Ascend driver's
hccn_tool prints results with TOOL_PRINT_INFO and failures with TOOL_PRINT_ERR): success
lines on stdout, failures on stderr with a non-zero exit code.

Choices made here, where the real output is not known:

- Exit codes: 13 for every "... was preset there!" failure (ip, gateway, netdetect; 13 is
  documented only for ``-ip -g``), 1 for every other hccn_tool/npu-smi failure,
  127 + ``<tool>: command not found`` if a missing tool is run directly, 2 + a message
  when ``PDTUI_SIM_STATE``/``PDTUI_SIM_NODE`` are unusable.
- ``-netdetect -g`` with no address: ``Get netdetect address failed, because no netdetect
  address was preset there!`` (by analogy with the gateway text).
- Malformed hccn_tool command lines, unknown commands, ``-vnic``/``-hccs_ping`` on A2,
  and ``-s`` on anything other than ``-tls -s enable 0|1``: ``Cmd execute failed!``.
- ``-tls -s enable X`` persists into the state (so ``-tls -g`` and hccn.conf show X).
- ``-lldp -g``: a full lldptool-style dump (Chassis ID, Port ID with the tab-indented
  ``Ifname:`` line, TTL, Port Description, System Name/Description/Capabilities,
  Management Address, End of LLDPDU). With the link DOWN the dump is empty (rc 0).
- ``-tls -g`` prints only the one documented line.
- ``-ping`` failures: after the ``device N PING ip`` header, one line per packet:
  ``Destination Host Unreachable seq=N`` (own link DOWN, unknown target, target link DOWN
  or target node unreachable) or ``recv time out seq=N`` (ping-loss), then
  ``N packets transmitted, 0 received, 100.00% packet loss`` on stdout and
  ``Cmd execute failed!`` on stderr, rc 1. Ping from a device without a RoCE address:
  the ``no ip was preset`` text, rc 13. Round-trip times 0.050-0.150 ms.
- ``-hccs_ping`` failures: each packet prints ``This pkt send fail!`` (no such vNIC) or
  ``This pkt check recv msg fail!`` (ping-loss, unreachable node) followed by
  ``recv seq N, time = 0.000us, L1 plane check result = 0x1`` and a blank line; the summary
  says 0 received, 100.00% packets loss, without the max/min/average/TP95 lines;
  ``Cmd execute failed!`` on stderr, rc 1. A malformed vNIC address:
  ``The ip address you configured is invalid!``, rc 1. With ``sdid N`` the header shows
  the vNIC IP computed from the SDID in the pinging node's super pod (vNIC addressing across
  super pods: see `pdtui.sim.state`). Times 10-13 us; TP95 = the ceil(0.95 n)-th fastest.
- ``npu-smi info`` starts with a ``+----+`` border line, then the version row and a
  ``+---+---+---+`` column line above the headers, as real captures show; A2 Name
  ``910B4``. The process table opens with a column-separator line, then its header, ``=``
  separators after every NPU; the "No running processes" rows are padded to the table width
  (published samples abbreviate them as ``| No running processes found in NPU 2 |``).
- ``npu-smi info -l``: only ``NPU ID`` and ``Chip Count`` per NPU, blocks separated by
  blank lines. ``npu-smi info -m``: tab-indented columns padded to 31 characters, one Mcu
  row per NPU (Chip ID = chips per NPU, ``-`` for logic/phy id); A2 chip name ``910B4``.
- npu-smi errors (stderr, rc 1): unknown arguments ->
  ``Invalid command. Use "npu-smi info -h" for help.``; bad ``-i``/``-c`` ->
  ``Error: NPU ID <i> or Chip ID <c> is invalid.``; spod-info on A2 ->
  ``This device does not support querying spod-info.``
- ``hostname -s``/``-f`` print the node name, ``-i`` the IP without the trailing space;
  other options -> ``hostname: invalid option -- 'X'`` + ``Try 'hostname --help' for more
  information.``, rc 1.
"""

from __future__ import annotations

import math
import os
import shlex
import stat
import sys
import time
from collections.abc import Callable
from pathlib import Path

from pdtui.sim.faults import (
    TOOL_NAMES,
    effective_device,
    extra_latency_ms,
    is_unreachable,
    ping_lost,
    tool_hangs,
    tool_missing,
    tool_output,
)
from pdtui.sim.state import (
    VNIC_NETMASK,
    DeviceState,
    NodeState,
    SimState,
    StateError,
    _mix,
    load_state,
    modify_state,
    parse_vnic_ip,
    render_hccn_conf,
    sdid_fields,
    vnic_ip,
)

ENV_STATE = "PDTUI_SIM_STATE"
ENV_NODE = "PDTUI_SIM_NODE"
NPU_SMI_VERSION = "24.1.rc3.3"

CMD_FAILED = "Cmd execute failed!"
NO_IP = "Get ipconf failed, because no ip was preset there!"
NO_GATEWAY = "Get gateway failed, because no gateway was preset there!"
NO_NETDETECT = "Get netdetect address failed, because no netdetect address was preset there!"
NO_DEVICE = "The device is not exist!"
RC_NOT_PRESET = 13


class Out:
    """Collected output of one tool call."""

    def __init__(self) -> None:
        self.out: list[str] = []
        self.err: list[str] = []
        self.rc = 0

    def line(self, text: str = "") -> None:
        self.out.append(text + "\n")

    def fail(self, text: str, rc: int = 1) -> Out:
        self.err.append(text + "\n")
        self.rc = rc
        return self


# =========================================================================== hccn_tool


def _garbage(node: str, dev: int, cmd: str, o: Out) -> Out:
    """What a broken driver might print: control bytes, a half line, no known field."""
    o.line(f"\x1b[31m\x01\x7f?? {cmd[1:]}:: \ufffd\ufffd dev={dev}@{node} 0x{dev:04x}ffff")
    o.line(":::: @@ -- \t\t status ??")
    o.out.append("truncat")
    return o


def hccn_tool(state: SimState, node: NodeState, args: list[str]) -> Out:
    o = Out()
    if len(args) < 4 or args[0] != "-i":
        return o.fail(CMD_FAILED)
    dev_s, cmd, mode, extra = args[1], args[2], args[3], args[4:]
    if not (dev_s.isascii() and dev_s.isdigit()) or not node.has_device(int(dev_s)):
        return o.fail(NO_DEVICE)
    dev = int(dev_s)
    d = effective_device(node, dev)
    if mode == "-s":
        return _hccn_set(node, dev, cmd, extra, o)
    if mode != "-g":
        return o.fail(CMD_FAILED)
    broken = tool_output(node, dev)
    if broken == "empty":
        return o
    if broken == "garbage":
        return _garbage(node.name, dev, cmd, o)
    get = _GETS.get(cmd)
    if get is not None:
        return o.fail(CMD_FAILED) if extra else get(node, dev, d, o)
    if cmd == "-ping":
        return _roce_ping(state, node, d, extra, o)
    if cmd == "-hccs_ping":
        return _hccs_ping(state, node, d, extra, o)
    return o.fail(CMD_FAILED)


def _get_link(node: NodeState, dev: int, d: DeviceState, o: Out) -> Out:
    o.line(f"link status: {d.link}")
    return o


def _get_net_health(node: NodeState, dev: int, d: DeviceState, o: Out) -> Out:
    o.line(f"net health status: {d.net_health}")
    return o


def _get_ip(node: NodeState, dev: int, d: DeviceState, o: Out) -> Out:
    if d.roce_ip is None:
        return o.fail(NO_IP, RC_NOT_PRESET)
    o.line(f"ipaddr:{d.roce_ip}")
    o.line(f"netmask:{d.netmask}")
    return o


def _get_gateway(node: NodeState, dev: int, d: DeviceState, o: Out) -> Out:
    if d.gateway is None:
        return o.fail(NO_GATEWAY, RC_NOT_PRESET)
    # Iface is the device's own ethN, as real output shows (eth0..eth7 for devices 0..7 in
    # tests/fixtures/npu/real/hccn_gateway_x8_dsv3_guide.txt).
    o.line(f"default gateway:{d.gateway}, Iface:eth{dev}")
    return o


def _get_netdetect(node: NodeState, dev: int, d: DeviceState, o: Out) -> Out:
    if d.netdetect is None:
        return o.fail(NO_NETDETECT, RC_NOT_PRESET)
    o.line(f"netdetect address: {d.netdetect}")
    return o


def _get_vnic(node: NodeState, dev: int, d: DeviceState, o: Out) -> Out:
    if node.soc != "A3":
        return o.fail(CMD_FAILED)
    o.line(f"vnic link status: {d.vnic_link}")
    o.line(f"vnic ipaddr: {node.vnic_ip(dev)}")
    o.line(f"vnic netmask: {VNIC_NETMASK}")
    return o


def _get_tls(node: NodeState, dev: int, d: DeviceState, o: Out) -> Out:
    o.line(
        f"dev_id:{dev}, tls switch[{d.tls_switch}](0:disable, 1:enable), "
        f"tls preconfigured[{d.tls_preconfigured}](0:non-preset, 1:preset), "
        f"tls alarm time threshold[{d.tls_alarm_days}]days"
    )
    return o


def _get_pfc(node: NodeState, dev: int, d: DeviceState, o: Out) -> Out:
    o.line("PFC configuration:")
    o.line("priority   0 1 2 3 4 5 6 7")
    o.line("enabled    0 0 0 0 1 0 0 0")
    return o


def _get_lldp(node: NodeState, dev: int, d: DeviceState, o: Out) -> Out:
    if d.link == "UP":
        _lldp(node, d, o)
    return o


# The ``-g`` queries that take no further arguments, by command.
_GETS: dict[str, Callable[[NodeState, int, DeviceState, Out], Out]] = {
    "-link": _get_link,
    "-net_health": _get_net_health,
    "-ip": _get_ip,
    "-gateway": _get_gateway,
    "-netdetect": _get_netdetect,
    "-vnic": _get_vnic,
    "-tls": _get_tls,
    "-pfc": _get_pfc,
    "-lldp": _get_lldp,
}


def _hccn_set(node: NodeState, dev: int, cmd: str, extra: list[str], o: Out) -> Out:
    if cmd != "-tls" or len(extra) != 2 or extra[0] != "enable" or extra[1] not in ("0", "1"):
        return o.fail(CMD_FAILED)
    want = int(extra[1])
    path = os.environ.get(ENV_STATE, "")
    with modify_state(path) as st:
        n = st.node(node.name)
        flipped = bool(n.faults_of("tls-mismatch"))
        n.device(dev).tls_switch = 1 - want if flipped else want
    o.line("Cmd executed successfully!")
    return o


def _lldp(node: NodeState, d: DeviceState, o: Out) -> None:
    sw = _mix(d.lldp_system) & 0xFFFFFF
    mac = f"3c:c7:86:{sw >> 16:02x}:{(sw >> 8) & 0xFF:02x}:{sw & 0xFF:02x}"
    for text in (
        "Chassis ID TLV",
        f"\tMAC: {mac}",
        "Port ID TLV",
        f"\tIfname: {d.lldp_ifname}",
        "Time to Live TLV",
        "\t121",
        "Port Description TLV",
        f"\t{d.lldp_ifname}",
        "System Name TLV",
        f"\t{d.lldp_system}",
        "System Description TLV",
        "\tHuawei YunShan OS",
        "\tVersion 1.22.0.1 (CE9860 V200R022C00SPC500)",
        "\tCopyright (C) 2021-2022 Huawei Technologies Co., Ltd.",
        "\tHUAWEI CE9860-4C-EI",
        "System Capabilities TLV",
        "\tSystem capabilities: Bridge, Router",
        "\tEnabled capabilities: Bridge, Router",
        "Management Address TLV",
        f"\tIPv4: 10.255.0.{sw % 250 + 1}",
        "\tIfindex: 5",
        "End of LLDPDU TLV",
    ):
        o.line(text)


def _ping_opts(extra: list[str], keys: tuple[str, ...]) -> dict[str, str] | None:
    """``key value`` pairs; None when malformed."""
    if len(extra) % 2:
        return None
    opts: dict[str, str] = {}
    for k, v in zip(extra[::2], extra[1::2], strict=True):
        if k not in keys or k in opts:
            return None
        opts[k] = v
    return opts


def _count(opts: dict[str, str]) -> int | None:
    cnt = opts.get("cnt", "3")
    if not (cnt.isascii() and cnt.isdigit()) or not 1 <= int(cnt) <= 1000:
        return None
    return int(cnt)


def _roce_ping(state: SimState, node: NodeState, d: DeviceState, extra: list[str], o: Out) -> Out:
    opts = _ping_opts(extra, ("address", "cnt", "pkt", "interval", "timeout"))
    if opts is None or "address" not in opts:
        return o.fail(CMD_FAILED)
    cnt = _count(opts)
    if cnt is None:
        return o.fail(CMD_FAILED)
    if d.roce_ip is None:
        return o.fail(NO_IP, RC_NOT_PRESET)
    ip = opts["address"]
    o.line(f"device {d.id} PING {ip}")
    failure: str | None = None
    target = _find_roce(state, ip)
    if d.link != "UP" or target is None:
        failure = "Destination Host Unreachable seq={}"
    else:
        tnode, tdev = target
        if tdev.link != "UP" or is_unreachable(tnode):
            failure = "Destination Host Unreachable seq={}"
        elif ping_lost(state, (node.name, d.id), (tnode.name, tdev.id)):
            failure = "recv time out seq={}"
    if failure is not None:
        for i in range(cnt):
            o.line(failure.format(i))
        o.line(f"{cnt} packets transmitted, 0 received, 100.00% packet loss")
        return o.fail(CMD_FAILED)
    for i in range(cnt):
        us = 50 + _mix(node.name, d.id, ip, i) % 101
        o.line(f"recv seq={i},time={us / 1000:f}ms")
    o.line(f"{cnt} packets transmitted, {cnt} received, 0.00% packet loss")
    return o


def _find_roce(state: SimState, ip: str) -> tuple[NodeState, DeviceState] | None:
    for n in state.nodes:
        for base in n.devices:
            if base.roce_ip != ip:
                continue
            eff = effective_device(n, base.id)
            if eff.roce_ip == ip:
                return n, eff
    return None


def _hccs_ping(state: SimState, node: NodeState, d: DeviceState, extra: list[str], o: Out) -> Out:
    if node.soc != "A3":
        return o.fail(CMD_FAILED)
    opts = _ping_opts(extra, ("address", "sdid", "cnt", "pkt", "interval", "timeout"))
    if opts is None or ("address" in opts) == ("sdid" in opts):
        return o.fail(CMD_FAILED)
    cnt = _count(opts)
    if cnt is None:
        return o.fail(CMD_FAILED)
    if "address" in opts:
        ip = opts["address"]
        if parse_vnic_ip(ip) is None:
            return o.fail("The ip address you configured is invalid!")
    else:
        raw = opts["sdid"]
        if not (raw.isascii() and raw.isdigit()) or int(raw) >= 1 << 32:
            return o.fail(CMD_FAILED)
        # SDIDs are unique per super pod: N names a device in the pinging node's pod.
        server, _card, _die, tdev_id = sdid_fields(int(raw))
        ip = vnic_ip(server, tdev_id, node.super_pod_id)
    target: tuple[NodeState, int] | None = None
    for n in state.nodes:
        if n.soc == "A3":
            for base in n.devices:
                if n.vnic_ip(base.id) == ip:
                    target = (n, base.id)
    o.line(f"device {d.id} PING {ip}")
    o.line()
    failure: str | None = None
    if target is None:
        failure = "This pkt send fail!"
    elif is_unreachable(target[0]) or ping_lost(
        state, (node.name, d.id), (target[0].name, target[1])
    ):
        failure = "This pkt check recv msg fail!"
    if failure is not None:
        for i in range(cnt):
            o.line(failure)
            o.line(f"recv seq {i}, time = 0.000us, L1 plane check result = 0x1")
            o.line()
        o.line(f"{cnt} packets transmitted, 0 received, 100.00% packets loss")
        return o.fail(CMD_FAILED)
    times: list[float] = []
    for i in range(cnt):
        t = (10000 + _mix(node.name, d.id, ip, i) % 3001) / 1000
        times.append(t)
        o.line("This pkt ping success!")
        o.line(f"recv seq {i}, time = {t:.3f}us, L1 plane check result = 0x0")
        o.line()
    ordered = sorted(times)
    tp95 = ordered[max(0, math.ceil(0.95 * cnt) - 1)]
    o.line(f"{cnt} packets transmitted, {cnt} received, 0.00% packets loss")
    o.line(f"max time {max(times):.3f}us")
    o.line(f"min time {min(times):.3f}us")
    o.line(f"average time {sum(times) / cnt:.3f}us")
    o.line(f"TP95 time {tp95:.3f}us")
    return o


# =========================================================================== npu-smi

_W1, _W2, _W3 = 27, 15, 52
_BORDER = "+" + "-" * (_W1 + _W2 + _W3 + 2) + "+"
_COLS = "+" + "-" * _W1 + "+" + "-" * _W2 + "+" + "-" * _W3 + "+"
_EQ = "+" + "=" * _W1 + "+" + "=" * _W2 + "+" + "=" * _W3 + "+"


def _row(c1: str, c2: str, c3: str) -> str:
    return f"|{c1.ljust(_W1)}|{c2.ljust(_W2)}|{c3.ljust(_W3)}|"


def _full(text: str) -> str:
    return "| " + text.ljust(_W1 + _W2 + _W3 + 1) + "|"


def _chip_name(node: NodeState) -> str:
    return "Ascend910" if node.soc == "A3" else "910B4"


def npu_smi_info(node: NodeState) -> list[str]:
    a3 = node.soc == "A3"
    lines = [
        _BORDER,
        _full(f"{'npu-smi ' + NPU_SMI_VERSION:<33}Version: {NPU_SMI_VERSION}"),
        _COLS,  # as every real table has (tests/fixtures/npu/real)
        _row(" NPU   Name", " Health", " Power(W)    Temp(C)           Hugepages-Usage(page)"),
        _row(
            " Chip  Phy-ID" if a3 else " Chip",
            " Bus-Id",
            " AICore(%)   Memory-Usage(MB)  HBM-Usage(MB)",
        ),
        _EQ,
    ]
    for card in range(node.cards):
        for chip in range(node.chips_per_card):
            dev = card * node.chips_per_card + chip
            if not node.has_device(dev):
                continue
            d = effective_device(node, dev)
            power = "-" if d.power_w is None else f"{d.power_w:.1f}"
            lines.append(
                _row(
                    f" {card:<6}{_chip_name(node)}",
                    f" {d.health}",
                    f" {power:<12}{d.temp_c:<18}{0:<4} / {0}",
                )
            )
            c1 = f" {chip:<6}{dev}" if a3 else f" {chip}"
            lines.append(
                _row(
                    c1,
                    f" {d.bus_id}",
                    f" {d.aicore_pct:<12}{0:<4} / {0:<11}{d.hbm_used_mb:<4} / {d.hbm_total_mb}",
                )
            )
            lines.append(_BORDER if chip < node.chips_per_card - 1 else _EQ)
    lines.append(_COLS)
    lines.append(
        "| NPU     Chip              | Process id    | Process name             "
        "| Process memory(MB)      |"
    )
    lines.append(_EQ)
    for card in range(node.cards):
        rows: list[str] = []
        for chip in range(node.chips_per_card):
            dev = card * node.chips_per_card + chip
            if not node.has_device(dev):
                continue
            for p in node.device(dev).processes:
                rows.append(f"| {card:<8}{chip:<18}| {p.pid:<14}| {p.name:<25}| {p.memory_mb:<24}|")
        lines.extend(rows or [_full(f"No running processes found in NPU {card}")])
        lines.append(_EQ)
    return lines


def _kv(key: str, value: object) -> str:
    return f"\t{key:<30} : {value}"


def npu_smi(state: SimState, node: NodeState, args: list[str]) -> Out:
    o = Out()
    if args == ["info"]:
        for text in npu_smi_info(node):
            o.line(text)
    elif args == ["info", "-l"]:
        o.line(_kv("Total Count", node.cards))
        for card in range(node.cards):
            o.line()
            o.line(_kv("NPU ID", card))
            o.line(_kv("Chip Count", node.chips_per_card))
    elif args == ["info", "-m"]:
        cols = ("NPU ID", "Chip ID", "Chip Logic ID", "Chip Phy-ID", "Chip Name")
        o.line("\t" + "".join(f"{c:<31}" for c in cols[:-1]) + cols[-1])
        for card in range(node.cards):
            for chip in range(node.chips_per_card + 1):
                if chip < node.chips_per_card:
                    dev = card * node.chips_per_card + chip
                    vals = (str(card), str(chip), str(dev), str(dev), _chip_name(node))
                else:
                    vals = (str(card), str(chip), "-", "-", "Mcu")
                o.line("\t" + "".join(f"{v:<31}" for v in vals[:-1]) + vals[-1])
    elif (
        len(args) == 7
        and args[:3] == ["info", "-t", "spod-info"]
        and args[3] == "-i"
        and args[5] == "-c"
    ):
        card_s, chip_s = args[4], args[6]
        ok = (
            card_s.isdigit()
            and chip_s.isdigit()
            and int(card_s) < node.cards
            and int(chip_s) < node.chips_per_card
        )
        if not ok:
            return o.fail(f"Error: NPU ID {card_s} or Chip ID {chip_s} is invalid.")
        if node.soc != "A3":
            return o.fail("This device does not support querying spod-info.")
        dev = int(card_s) * node.chips_per_card + int(chip_s)
        o.line(_kv("SDID", node.sdid(dev)))
        o.line(_kv("Super Pod Size", state.super_pod_size))
        o.line(_kv("Super Pod ID", node.super_pod_id))
        o.line(_kv("Server Index", node.server_index))
    else:
        return o.fail('Invalid command. Use "npu-smi info -h" for help.')
    return o


# =========================================================================== hostname


def hostname(node: NodeState, args: list[str]) -> Out:
    o = Out()
    if not args or args in (["-s"], ["-f"], ["--short"], ["--fqdn"]):
        o.line(node.name)
    elif args == ["-I"]:
        o.line(f"{node.ip} ")
    elif args == ["-i"]:
        o.line(node.ip)
    else:
        bad = args[0].lstrip("-")[:1] or args[0]
        o.fail(f"hostname: invalid option -- '{bad}'")
        o.fail("Try 'hostname --help' for more information.")
    return o


def _mac(node: NodeState) -> str:
    h = _mix_bytes(node.name)
    return "3c:c7:86:" + ":".join(f"{b:02x}" for b in h[:3])


def _mix_bytes(text: str) -> bytes:
    import hashlib

    return hashlib.sha256(text.encode()).digest()


def ip_tool(node: NodeState, args: list[str]) -> Out:
    """A small iproute2 ``ip``: ``route get``, ``addr show`` and ``link show`` (``-o``, ``-4``).

    The output follows iproute2's one-line (``-o``) formats; the node has
    one data-plane interface (its ``nic``, /24, gateway .1) besides ``lo``.
    """
    o = Out()
    rest = [a for a in args if a not in ("-4", "-o", "-oneline", "-br")]
    gw = ".".join([*node.ip.split(".")[:3], "1"])
    nic = node.nic
    if len(rest) >= 3 and rest[0] in ("route", "r", "ro") and rest[1] == "get":
        target = rest[2]
        if target.startswith("127."):
            o.line(f"local {target} dev lo src 127.0.0.1 uid 0 \\    cache <local> ")
        else:
            o.line(f"{target} via {gw} dev {nic} src {node.ip} uid 0 \\    cache ")
        return o
    if rest and rest[0] in ("addr", "a", "address"):
        dev = rest[rest.index("dev") + 1] if "dev" in rest[:-1] else None
        if dev not in (None, "lo", nic):
            return o.fail(f'Device "{dev}" does not exist.', 1)
        bcast = ".".join([*node.ip.split(".")[:3], "255"])
        if dev in (None, "lo"):
            o.line(
                "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever "
                "preferred_lft forever"
            )
        if dev in (None, nic):
            o.line(
                f"2: {nic}    inet {node.ip}/24 brd {bcast} scope global {nic}\\       "
                "valid_lft forever preferred_lft forever"
            )
        return o
    if rest and rest[0] in ("link", "l"):
        dev = rest[-1] if len(rest) > 2 else None
        if dev not in (None, "lo", nic):
            return o.fail(f'Device "{dev}" does not exist.', 1)
        if dev in (None, "lo"):
            o.line(
                "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN mode "
                "DEFAULT group default qlen 1000\\    link/loopback 00:00:00:00:00:00 brd "
                "00:00:00:00:00:00"
            )
        if dev in (None, nic):
            o.line(
                f"2: {nic}: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc mq state UP "
                f"mode DEFAULT group default qlen 1000\\    link/ether {_mac(node)} "
                "brd ff:ff:ff:ff:ff:ff"
            )
        return o
    word = rest[0] if rest else ""
    return o.fail(f'Object "{word}" is unknown, try "ip help".', 255)


# =========================================================================== entry point


def run(tool: str, args: list[str], state: SimState, node: NodeState) -> Out:
    """Answer one call without sleeping (for in-process tests and the SSH server)."""
    if tool == "hccn_tool":
        return hccn_tool(state, node, args)
    if tool == "npu-smi":
        return npu_smi(state, node, args)
    if tool == "hostname":
        return hostname(node, args)
    if tool == "ip":
        return ip_tool(node, args)
    return Out().fail(f"{tool}: command not found", 127)


def main(argv: list[str]) -> int:
    if not argv:
        sys.stderr.write(f"usage: python -m pdtui.sim.tools {{{'|'.join(TOOL_NAMES)}}} ARGS\n")
        return 2
    tool, args = argv[0], argv[1:]
    path = os.environ.get(ENV_STATE)
    name = os.environ.get(ENV_NODE)
    if not path or not name:
        sys.stderr.write(f"{tool}: simulator not configured ({ENV_STATE}/{ENV_NODE})\n")
        return 2
    try:
        state = load_state(path)
        node = state.node(name)
    except StateError as e:
        sys.stderr.write(f"{tool}: {e}\n")
        return 2
    if tool not in TOOL_NAMES or tool_missing(node, tool):
        sys.stderr.write(f"{tool}: command not found\n")
        return 127
    delay = max(0, state.latency_ms) + extra_latency_ms(node)
    if delay:
        time.sleep(delay / 1000)
    if tool_hangs(node, tool):
        while True:
            time.sleep(3600)
    o = run(tool, args, state, node)
    sys.stdout.write("".join(o.out))
    sys.stdout.flush()
    sys.stderr.write("".join(o.err))
    sys.stderr.flush()
    return o.rc


# =========================================================================== wrappers


def package_root() -> Path:
    """Directory that contains the `pdtui` package (for PYTHONPATH)."""
    import pdtui

    return Path(pdtui.__file__).resolve().parent.parent


def wrapper_script(tool: str, state_path: Path, node: str, python: str) -> str:
    """A bash wrapper: ask the running simulator's tool server, else run the Python tool.

    The server (`pdtui.sim.toolserver`) writes its port next to the state file; a call through
    it costs a bash start instead of a Python start.
    """
    q = shlex.quote
    root = q(str(package_root()))
    state = Path(state_path).resolve()
    port_file = q(str(state.parent / "toolserver.port"))
    return (
        "#!/bin/bash\n"
        f"# pdtui simulator wrapper for {tool} on node {node}\n"
        f"if read -r PORT 2>/dev/null < {port_file} && "
        '{ exec 3<>"/dev/tcp/127.0.0.1/$PORT"; } 2>/dev/null; then\n'
        f'    printf \'%s\\0\' "$#" {q(node)} {q(tool)} "$@" >&3\n'
        "    export LC_ALL=C\n"
        "    IFS=' ' read -r rc olen elen <&3 || "
        f"{{ echo {q(tool + ': simulator did not answer')} >&2; exit 1; }}\n"
        '    if [ "$olen" -gt 0 ]; then IFS= read -r -d \'\' -N "$olen" out <&3; '
        "printf '%s' \"$out\"; fi\n"
        '    if [ "$elen" -gt 0 ]; then IFS= read -r -d \'\' -N "$elen" err <&3; '
        "printf '%s' \"$err\" >&2; fi\n"
        '    exit "$rc"\n'
        "fi\n"
        f"PDTUI_SIM_STATE={q(str(state))}\n"
        f"PDTUI_SIM_NODE={q(node)}\n"
        f"PYTHONPATH={root}${{PYTHONPATH:+:$PYTHONPATH}}\n"
        "export PDTUI_SIM_STATE PDTUI_SIM_NODE PYTHONPATH\n"
        f'exec {q(python)} -m pdtui.sim.tools {q(tool)} "$@"\n'
    )


def install_tools(bin_dir: Path, state_path: Path, node: str, python: str = sys.executable) -> None:
    """Write the wrappers for `node` into `bin_dir`; drop those with a tool-missing fault."""
    missing: set[str] = set()
    try:
        st = load_state(state_path)
        missing = {t for t in TOOL_NAMES if tool_missing(st.node(node), t)}
    except StateError:
        pass
    _install(Path(bin_dir), Path(state_path), node, python, missing)


def _install(bin_dir: Path, state_path: Path, node: str, python: str, missing: set[str]) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    for tool in TOOL_NAMES:
        target = bin_dir / tool
        if tool in missing:
            target.unlink(missing_ok=True)
            continue
        tmp = bin_dir / f".{tool}.tmp"
        tmp.write_text(wrapper_script(tool, state_path, node, python), encoding="utf-8")
        tmp.chmod(tmp.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        os.replace(tmp, target)


def runtime_wrappers(state_path: Path, node: str, python: str) -> dict[str, str]:
    """``vllm`` (the fake server) and ``python`` (this interpreter) for a fake node's PATH."""
    q = shlex.quote
    root = q(str(package_root()))
    env = (
        f"PDTUI_SIM_STATE={q(str(Path(state_path).resolve()))}\n"
        f"PDTUI_SIM_NODE={q(node)}\n"
        f"PYTHONPATH={root}${{PYTHONPATH:+:$PYTHONPATH}}\n"
        "export PDTUI_SIM_STATE PDTUI_SIM_NODE PYTHONPATH\n"
    )
    return {
        "vllm": f"#!/bin/bash\n# pdtui simulator: fake vllm on node {node}\n{env}"
        f'exec {q(python)} -m pdtui.sim.vllm "$@"\n',
        "python": "#!/bin/bash\n# pdtui simulator: python with the fake servers' packages\n"
        f'exec {q(python)} "$@"\n',
    }


def sync_tools(
    state: SimState, state_path: Path, root_dir: Path, python: str = sys.executable
) -> None:
    """Re-install every node's wrappers under ``root_dir/<node>/bin`` and write
    ``root_dir/<node>/etc/hccn.conf`` (call after fault changes; `state` must be saved)."""
    for node in state.nodes:
        base = Path(root_dir) / node.name
        missing = {t for t in TOOL_NAMES if tool_missing(node, t)}
        _install(base / "bin", Path(state_path), node.name, python, missing)
        for name, text in runtime_wrappers(Path(state_path), node.name, python).items():
            tmp = base / "bin" / f".{name}.tmp"
            tmp.write_text(text, encoding="utf-8")
            tmp.chmod(0o755)
            os.replace(tmp, base / "bin" / name)
        etc = base / "etc"
        etc.mkdir(parents=True, exist_ok=True)
        tmp = etc / ".hccn.conf.tmp"
        tmp.write_text(render_hccn_conf(node), encoding="utf-8")
        os.replace(tmp, etc / "hccn.conf")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
