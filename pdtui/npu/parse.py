"""Pure parsers for ``hccn_tool``, ``npu-smi`` and ``/etc/hccn.conf`` output.

The formats are what the tools print: ``hccn_tool`` prints each value as a ``key: value``
line on stdout and its errors (``Cmd execute failed!``, ``... no ip was preset there!``) on
stderr with a non-zero exit; ``npu-smi info`` prints ``|``-separated tables;
``/etc/hccn.conf`` holds ``<key>_<phy id>=<value>`` lines. Every parser is total: any ``str`` in
gives a value or None (or an "unknown"-ish result), never an exception. Numbers are read
from ASCII digits only and capped in length, so odd Unicode digits or huge digit runs
cannot raise.

Also here: `device_from_raw` / `node_from_raw` / `ping_from_raw`, which turn collected
`Raw` evidence into the model (no classification; see `pdtui.npu.classify`).

Accepted variants (choices made here, beyond the tools' usual output):

- Keys and values are matched case-insensitively and tolerate extra spaces around ``:``;
  CRLF line ends are fine. ``link``/``vnic link`` values are returned upper-case; net
  health values in the tool's own spelling (`NET_HEALTH_VALUES`).
- ``netdetect address:`` (a real 2025 capture, tests/fixtures/npu/real) and the shorter
  ``netdetect addr:``; both are read.
- ``npu-smi info``: the A3 two-row layout with ``Chip  Phy-ID`` and the A2 layout with
  ``Chip`` only; a truncated table still yields the rows that have an NPU/chip pair. Under
  the 310P header ``Chip  Device`` the second number is a device id, not a physical id, so
  ``phy_id`` stays None (tests/fixtures/npu/real/npu_smi_info_310p3_*.txt).
- ``npu-smi info -m`` with or without the ``Chip Phy-ID`` column; Mcu rows (logic id
  ``-``) are skipped.
- ``npu-smi info -l``: when NPUs report different ``Chip Count`` values the largest wins.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import shlex
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from pdtui.npu.model import (
    ChipMapRow,
    DeviceHealth,
    IpInfo,
    NodeHealth,
    NpuProcess,
    PingKind,
    PingResult,
    Raw,
)

__all__ = [
    "NET_HEALTH_VALUES",
    "NpuSmiDevice",
    "NpuSmiInfo",
    "PingStats",
    "SpodInfo",
    "VnicInfo",
    "command_text",
    "decode_sdid",
    "device_from_raw",
    "logic_to_card_chip",
    "node_from_raw",
    "parse_gateway",
    "parse_hccn_conf",
    "parse_ip",
    "parse_link",
    "parse_lldp_ifname",
    "parse_net_health",
    "parse_netdetect",
    "parse_npu_smi_info",
    "parse_npu_smi_list",
    "parse_npu_smi_map",
    "parse_ping",
    "parse_spod_info",
    "parse_tls_switch",
    "parse_vnic",
    "ping_from_raw",
    "vnic_ip_for",
]

#: ``hccn_tool -net_health -g`` values: the tool's status enum, 0..9 in order.
NET_HEALTH_VALUES: tuple[str, ...] = (
    "Success",
    "Socket fail",
    "Receive timeout",
    "Unreachable",
    "Time exceeded",
    "Fault",
    "Init",
    "Thread error",
    "Detect ip set",
    "Unknown",
)
_NET_HEALTH_BY_LOWER = {v.lower(): v for v in NET_HEALTH_VALUES}

NO_IP_TEXT = "no ip was preset"
_MAX_DIGITS = 18
_IPV4 = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}", re.ASCII)
_FLAGS = re.IGNORECASE | re.MULTILINE | re.ASCII


# --------------------------------------------------------------------------- helpers


def _int(text: str | None) -> int | None:
    """ASCII digits (at most 18) -> int, else None."""
    if text is None:
        return None
    t = text.strip()
    if not t or len(t) > _MAX_DIGITS or not (t.isascii() and t.isdigit()):
        return None
    return int(t)


def _float(text: str | None) -> float | None:
    if text is None:
        return None
    t = text.strip()
    if not t or len(t) > 40 or not re.fullmatch(r"[0-9]+(?:\.[0-9]*)?", t, re.ASCII):
        return None
    try:
        return float(t)
    except ValueError:  # pragma: no cover - the regex already guarantees a float
        return None


def _addr(token: str | None) -> str | None:
    """An IPv4/IPv6 address token, else None."""
    if token is None:
        return None
    t = token.strip().rstrip(",")
    if not t or len(t) > 64 or not t.isascii():
        return None
    if _IPV4.fullmatch(t):  # the common case, without building an address object
        return (
            t
            if all(len(o) == 1 or o[0] != "0" for o in t.split("."))
            and max(int(o) for o in t.split(".")) <= 255
            else None
        )
    try:
        ipaddress.ip_address(t)
    except ValueError:
        return None
    return t


@functools.lru_cache(maxsize=128)
def _value_re(key_pattern: str) -> re.Pattern[str]:
    return re.compile(rf"^[ \t]*{key_pattern}[ \t]*:[ \t]*(.*?)[ \t]*\r?$", _FLAGS)


def _value(text: str, key_pattern: str) -> str | None:
    """The rest of the first line ``<key>: value`` (key anchored at line start)."""
    m = _value_re(key_pattern).search(text)
    if m is None:
        return None
    return m.group(1)


def _lines(text: str) -> list[str]:
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


# --------------------------------------------------------------------------- hccn_tool


def parse_link(text: str) -> str | None:
    """``link status: UP`` -> ``"UP"`` (or ``"DOWN"``); anything else None."""
    v = _value(text, r"link[ \t]+status")
    if v is None:
        return None
    word = v.split()[0].upper() if v.split() else ""
    return word if word in ("UP", "DOWN") else None


def parse_net_health(text: str) -> str | None:
    """``net health status: <S>`` -> one of `NET_HEALTH_VALUES`, else None."""
    v = _value(text, r"net[ \t]+health[ \t]+status")
    if v is None:
        return None
    return _NET_HEALTH_BY_LOWER.get(" ".join(v.split()).lower())


def parse_lldp_ifname(text: str) -> str | None:
    """The ``Ifname:`` of the LLDP dump's Port ID TLV (first ``Ifname:`` anywhere if none)."""
    in_port = False
    first: str | None = None
    for line in _lines(text):
        s = line.strip()
        if s.lower().endswith("tlv"):
            in_port = s.lower().startswith("port id")
            continue
        m = re.match(r"ifname[ \t]*:[ \t]*(\S.*)$", s, re.IGNORECASE)
        if m is None:
            continue
        name = m.group(1).strip()
        if in_port:
            return name
        if first is None:
            first = name
    return first


def parse_netdetect(text: str) -> str | None:
    """``netdetect address: X`` or ``netdetect addr: X`` -> X."""
    v = _value(text, r"netdetect[ \t]+addr(?:ess)?")
    return _addr(v.split()[0]) if v and v.split() else None


def parse_gateway(text: str) -> tuple[str, str | None] | None:
    """``default gateway:11.12.165.1, Iface:eth0`` -> (``"11.12.165.1"``, ``"eth0"``)."""
    m = re.search(
        r"^[ \t]*default[ \t]+gateway[ \t]*:[ \t]*([^\s,]+)"
        r"[ \t]*(?:,[ \t]*iface[ \t]*:[ \t]*(\S+))?",
        text,
        _FLAGS,
    )
    if m is None:
        return None
    gw = _addr(m.group(1))
    if gw is None:
        return None
    return gw, m.group(2)


def parse_ip(stdout: str, stderr: str = "", rc: int | None = 0) -> IpInfo:
    """``ipaddr:X`` / ``netmask:Y``; "no ip was preset" (rc 13) -> ``preset=False``.

    The "no ip was preset" text counts with rc 13 or an unknown rc (None); with any other
    rc it is still taken as the answer, since the text itself is unambiguous.
    """
    both = f"{stdout}\n{stderr}"
    if NO_IP_TEXT in both.lower():
        return IpInfo(None, None, False)
    ipv = _value(stdout, r"ipaddr")
    mask = _value(stdout, r"netmask")
    ip = _addr(ipv.split()[0]) if ipv and ipv.split() else None
    nm = _addr(mask.split()[0]) if mask and mask.split() else None
    if ip is None:
        return IpInfo(None, nm, None)
    return IpInfo(ip, nm, True)


class VnicInfo(NamedTuple):
    link: str | None
    ip: str | None
    netmask: str | None


def parse_vnic(text: str) -> VnicInfo:
    """A3 ``vnic link status`` / ``vnic ipaddr`` / ``vnic netmask`` lines."""
    lv = _value(text, r"vnic[ \t]+link[ \t]+status")
    link = lv.split()[0].upper() if lv and lv.split() else None
    if link not in ("UP", "DOWN"):
        link = None
    iv = _value(text, r"vnic[ \t]+ipaddr")
    mv = _value(text, r"vnic[ \t]+netmask")
    return VnicInfo(
        link,
        _addr(iv.split()[0]) if iv and iv.split() else None,
        _addr(mv.split()[0]) if mv and mv.split() else None,
    )


def parse_tls_switch(text: str) -> int | None:
    """``tls switch[0](0:disable, 1:enable)`` -> 0."""
    m = re.search(r"tls[ \t]+switch[ \t]*\[[ \t]*([0-9]{1,6})[ \t]*\]", text, _FLAGS)
    return _int(m.group(1)) if m else None


# --------------------------------------------------------------------------- npu-smi


class SpodInfo(NamedTuple):
    sdid: int | None
    super_pod_size: int | None
    super_pod_id: int | None
    server_index: int | None


def parse_spod_info(text: str) -> SpodInfo:
    """``npu-smi info -t spod-info``: tab-indented ``%-30s : %u`` lines."""

    def num(key: str) -> int | None:
        v = _value(text, key)
        return _int(v.split()[0]) if v and v.split() else None

    return SpodInfo(
        num(r"SDID"),
        num(r"Super[ \t]+Pod[ \t]+Size"),
        num(r"Super[ \t]+Pod[ \t]+ID"),
        num(r"Server[ \t]+Index"),
    )


def decode_sdid(sdid: int) -> tuple[int, int, int, int]:
    """SDID -> (server, card, die, dev); negative/huge input is masked to 32 bits.

    The bits, high to low: server index (10), card (4), die (2), physical device (16).
    """
    v = sdid & 0xFFFFFFFF
    return (v >> 22) & 0x3FF, (v >> 18) & 0xF, (v >> 16) & 0x3, v & 0xFFFF


def vnic_ip_for(server: int, dev: int) -> str:
    """Expected A3 vNIC IP ``192.<server>.<2+die>.<199-dev>`` (168 when server > 47)."""
    second = server if 0 <= server <= 47 else 168
    return f"192.{second}.{2 + dev % 2}.{199 - dev}"


class NpuSmiDevice(NamedTuple):
    npu_id: int
    chip_id: int
    phy_id: int | None
    name: str
    health: str | None
    hbm_used: int | None
    hbm_total: int | None


class NpuSmiInfo(NamedTuple):
    devices: list[NpuSmiDevice]
    processes: dict[tuple[int, int], list[NpuProcess]]


def _cells(line: str) -> list[str] | None:
    """``| a | b | c |`` -> ["a", "b", "c"]; None for non-table lines."""
    s = line.strip()
    if not s.startswith("|"):
        return None
    s = s[1:]
    if s.endswith("|"):
        s = s[:-1]
    return [c.strip() for c in s.split("|")]


_PAIR = re.compile(r"([0-9]{1,12})[ \t]*/[ \t]*([0-9]{1,12})", re.ASCII)


def parse_npu_smi_info(text: str) -> NpuSmiInfo:
    """The `npu-smi info` device table (A3 or A2 layout) and process table."""
    devices: list[NpuSmiDevice] = []
    procs: dict[tuple[int, int], list[NpuProcess]] = {}
    in_procs = False
    pending: _FirstRow | None = None
    has_phy = True  # False under the 310P header "Chip  Device"
    for line in _lines(text):
        cells = _cells(line)
        if cells is None:
            continue
        if "process id" in line.lower():
            in_procs, pending = True, None
        elif in_procs:
            row = _process_row(cells)
            if row is not None:
                procs.setdefault(row[0], []).append(row[1])
        elif cells[0].lower().startswith("chip"):
            has_phy = "device" not in cells[0].lower()
        else:
            pending, device = _device_row(cells, pending, has_phy)
            if device is not None:
                devices.append(device)
    return NpuSmiInfo(devices, procs)


#: A device's first `npu-smi info` row, waiting for its second: npu id, name, health.
_FirstRow = tuple[int, str, str | None]


def _first_int(cell: str) -> int | None:
    words = cell.split()
    return _int(words[0]) if words else None


def _process_row(cells: list[str]) -> tuple[tuple[int, int], NpuProcess] | None:
    """``| NPU Chip | Process id | Process name | Process memory(MB) |`` row ->
    ((npu, chip), process)."""
    if len(cells) < 4:
        return None
    ids = cells[0].split()
    if len(ids) != 2:
        return None
    npu, chip = _int(ids[0]), _int(ids[1])
    pid, mem = _first_int(cells[1]), _first_int(cells[3])
    if npu is None or chip is None or pid is None:
        return None
    return (npu, chip), NpuProcess(pid, cells[2], mem or 0)


def _device_row(
    cells: list[str],
    pending: _FirstRow | None,
    has_phy: bool = True,
) -> tuple[_FirstRow | None, NpuSmiDevice | None]:
    """One line of the device table: (the first row now pending, a device once complete).

    Row 1 is ``NPU Name | Health | ...``; row 2 ``Chip [Phy-ID] | Bus-Id | AICore Memory HBM``.
    """
    words = cells[0].split()
    if not words:
        return pending, None
    ints = [_int(w) for w in words]
    npu = ints[0]
    if len(words) >= 2 and npu is not None and ints[1] is None and len(cells) >= 2:
        health = cells[1].split()[0] if cells[1].split() else None
        return (npu, " ".join(words[1:]), health), None
    nums = [i for i in ints if i is not None]
    if pending is not None and len(words) <= 2 and len(nums) == len(ints):
        return None, _second_row(pending, cells, nums, has_phy)
    return pending, None


def _second_row(
    first: _FirstRow, cells: list[str], nums: list[int], has_phy: bool = True
) -> NpuSmiDevice:
    used = total = None
    if len(cells) >= 3:
        pairs = _PAIR.findall(cells[2])
        if len(pairs) >= 2:
            used, total = _int(pairs[-1][0]), _int(pairs[-1][1])
    npu, name, health = first
    phy = nums[1] if len(nums) == 2 and has_phy else None
    return NpuSmiDevice(npu, nums[0], phy, name, health, used, total)


def parse_npu_smi_map(text: str) -> list[ChipMapRow]:
    """`npu-smi info -m` rows (with or without Chip Phy-ID), skipping Mcu rows."""
    rows: list[ChipMapRow] = []
    has_phy: bool | None = None
    for line in _lines(text):
        low = line.lower()
        if "logic" in low and "npu" in low:
            has_phy = "phy" in low
            continue
        row = _map_row(line.split(), has_phy)
        if row is not None:
            rows.append(row)
    return rows


def _map_row(words: list[str], has_phy: bool | None) -> ChipMapRow | None:
    """``NPU Chip Logic [Phy] Name``; ``has_phy`` None (no header seen): guessed."""
    if len(words) < 4:
        return None
    npu, chip = _int(words[0]), _int(words[1])
    if npu is None or chip is None:
        return None
    phy_col = has_phy
    if phy_col is None:  # no header seen: guess from the fourth column
        phy_col = len(words) >= 5 and (words[3] == "-" or _int(words[3]) is not None)
    if phy_col and len(words) < 5:
        return None
    name = " ".join(words[4:] if phy_col else words[3:])
    logic = _int(words[2])
    if words[2] == "-" or name.lower() == "mcu" or logic is None:
        return None
    return ChipMapRow(npu, chip, logic, _int(words[3]) if phy_col else None, name)


def parse_npu_smi_list(text: str) -> tuple[int | None, int | None]:
    """`npu-smi info -l` -> (Total Count, chips per card or None)."""
    total: int | None = None
    counts: list[int] = []
    for line in _lines(text):
        key, sep, val = line.partition(":")
        if not sep:
            continue
        k = " ".join(key.split()).lower()
        v = _int(val.split()[0]) if val.split() else None
        if v is None:
            continue
        if k == "total count" and total is None:
            total = v
        elif k == "chip count":
            counts.append(v)
    return total, (max(counts) if counts else None)


def logic_to_card_chip(
    logic_id: int, chip_map: list[ChipMapRow] | None = None, chips_per_card: int = 2
) -> tuple[int, int]:
    """Logic device id -> (npu-smi NPU ID, Chip ID).

    From `chip_map` when it has the id; otherwise ``divmod(logic_id, chips_per_card)``
    (A3 default: card = id // 2, chip = id % 2).
    """
    for row in chip_map or []:
        if row.logic_id == logic_id:
            return row.npu_id, row.chip_id
    return divmod(logic_id, max(1, chips_per_card))


# --------------------------------------------------------------------------- hccn.conf


def parse_hccn_conf(text: str) -> dict[int, dict[str, str]]:
    """``address_3=1.2.3.4`` -> ``{3: {"address": "1.2.3.4"}}``; route_address lines and
    anything without a ``_<N>`` suffix are left out; comments (#) and blanks skipped."""
    out: dict[int, dict[str, str]] = {}
    for line in _lines(text):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        m = re.fullmatch(r"([A-Za-z][A-Za-z0-9_]*?)_([0-9]{1,6})[ \t]*=[ \t]*(.*)", s, re.ASCII)
        if m is None or m.group(1).lower().startswith("route_address"):
            continue
        dev = _int(m.group(2))
        if dev is None:
            continue
        out.setdefault(dev, {})[m.group(1)] = m.group(3).strip()
    return out


# --------------------------------------------------------------------------- ping


class PingStats(NamedTuple):
    transmitted: int | None
    received: int | None
    loss_pct: float | None
    avg_ms: float | None
    ok: bool
    reason: str | None


_FAIL_MARKERS: tuple[str, ...] = (
    "Destination Host Unreachable",
    "recv time out",
    "Message too long",
    "This pkt send fail",
    "This pkt ping not start to send",
    "This pkt check recv msg fail",
    "ping fail",
    "The ip address you configured is invalid",
    "no ip was preset",
    "The device is not exist",
    "The cmd line execute timeout",
    "Cmd execute failed",
)


def parse_ping(text: str, rc: int | None, kind: PingKind = "roce", stderr: str = "") -> PingStats:
    """``hccn_tool -ping`` (``kind="roce"``, "packet loss") or ``-hccs_ping``
    (``kind="hccs"``, "packets loss", ``This pkt ...`` and ``L1 plane check result`` lines).

    ``ok`` only when rc is 0 (or unknown), a summary says every packet came back, and no
    failure line or non-zero L1 result appears. ``reason`` is None when ok.
    """
    tx, rx, loss = _ping_summary(text)
    avg = _hccs_avg_ms(text) if kind == "hccs" else _roce_avg_ms(text)
    problems = _ping_problems(text, stderr)
    lost = tx is not None and rx is not None and (tx == 0 or rx < tx)
    ok = rc in (0, None) and tx is not None and rx is not None and not lost and not problems
    if ok:
        return PingStats(tx, rx, loss, avg, True, None)
    return PingStats(tx, rx, loss, avg, False, _ping_reason(tx, rx, problems, rc))


_PING_SUMMARY = re.compile(
    r"([0-9]{1,9})[ \t]+packets?[ \t]+transmitted[ \t]*,[ \t]*([0-9]{1,9})[ \t]+received"
    r"(?:[ \t]*,[ \t]*([0-9]{1,4}(?:\.[0-9]{1,6})?)[ \t]*%[ \t]*packets?[ \t]+loss)?",
    _FLAGS,
)
_HCCS_AVERAGE = re.compile(
    r"^[ \t]*average[ \t]+time[ \t]+([0-9]{1,12}(?:\.[0-9]{1,9})?)[ \t]*us", _FLAGS
)
_HCCS_TIME = re.compile(
    r"time[ \t]*=[ \t]*([0-9]{1,12}(?:\.[0-9]{1,9})?)[ \t]*us[ \t]*,[ \t]*L1 plane"
    r"[ \t]+check[ \t]+result[ \t]*=[ \t]*0x([0-9a-f]{1,16})",
    _FLAGS,
)
_ROCE_TIME = re.compile(
    r"recv[ \t]+seq[ \t]*=[ \t]*[0-9]{1,9}[ \t]*,[ \t]*time[ \t]*=[ \t]*"
    r"([0-9]{1,12}(?:\.[0-9]{1,9})?)[ \t]*ms",
    _FLAGS,
)
_L1_RESULT = re.compile(
    r"L1[ \t]+plane[ \t]+check[ \t]+result[ \t]*=[ \t]*0x([0-9a-f]{1,16})", _FLAGS
)


def _ping_summary(text: str) -> tuple[int | None, int | None, float | None]:
    """Transmitted, received and loss % from the last ``N packets transmitted`` line."""
    summaries = list(_PING_SUMMARY.finditer(text))
    if not summaries:
        return None, None, None
    m = summaries[-1]
    tx, rx = _int(m.group(1)), _int(m.group(2))
    loss = _float(m.group(3)) if m.group(3) else None
    if loss is None and tx and rx is not None:
        loss = round(100.0 * (tx - rx) / tx, 2)
    return tx, rx, loss


def _mean(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def _hccs_avg_ms(text: str) -> float | None:
    """``average time N us``, else the mean of the packets whose L1 result is 0; in ms."""
    am = _HCCS_AVERAGE.search(text)
    us = _float(am.group(1)) if am else None
    if us is None:
        us = _mean(_float(t) for t, l1 in _HCCS_TIME.findall(text) if int(l1, 16) == 0)
    return None if us is None else us / 1000.0


def _roce_avg_ms(text: str) -> float | None:
    """The mean of the ``recv seq=N,time=T ms`` lines."""
    return _mean(_float(t) for t in _ROCE_TIME.findall(text))


def _ping_problems(text: str, stderr: str) -> list[str]:
    """The failure lines found in either stream, and any non-zero L1 check result."""
    both = f"{text}\n{stderr}".lower()
    problems = [marker for marker in _FAIL_MARKERS if marker.lower() in both]
    bad_l1 = sorted({v for v in _L1_RESULT.findall(text) if int(v, 16) != 0})
    if bad_l1:
        problems.append("L1 plane check result 0x" + "/0x".join(bad_l1))
    return problems


def _ping_reason(tx: int | None, rx: int | None, problems: list[str], rc: int | None) -> str:
    parts: list[str] = []
    if tx is not None and rx is not None:
        parts.append(f"lost {max(tx - rx, 0)}/{tx}")
    else:
        parts.append("no ping summary in output")
    if problems:
        parts.append(f"({', '.join(dict.fromkeys(problems))})")
    if rc not in (0, None):
        parts.append(f"rc {rc}")
    return " ".join(parts)


# --------------------------------------------------------------------------- assembly


def _rc_ok(raw: Raw | None) -> bool:
    return raw is not None and raw.rc == 0


# Per-device outputs repeat from poll to poll and from device to device: parse each text once.
_memo = functools.lru_cache(maxsize=4096)
_link, _net_health, _lldp = _memo(parse_link), _memo(parse_net_health), _memo(parse_lldp_ifname)
_netdetect, _gateway, _vnic = _memo(parse_netdetect), _memo(parse_gateway), _memo(parse_vnic)
_tls, _spod, _ip = _memo(parse_tls_switch), _memo(parse_spod_info), _memo(parse_ip)


def device_from_raw(dev_id: int, raw: Mapping[str, Raw]) -> DeviceHealth:
    """A `DeviceHealth` (state ``unknown``, not classified) from per-check evidence.

    Checks: lldp, link, net_health, netdetect, gateway, ip, vnic, tls, spod. Outputs are
    parsed whatever the rc (a value printed before a failure is still evidence); the
    classifier looks at ``raw`` to say why a value is missing.
    """
    d = DeviceHealth(id=dev_id, raw=dict(raw))
    if (r := raw.get("link")) is not None:
        d.link = _link(r.stdout)
    if (r := raw.get("net_health")) is not None:
        d.net_health = _net_health(r.stdout)
    if (r := raw.get("lldp")) is not None:
        d.lldp_ifname = _lldp(r.stdout)
    if (r := raw.get("netdetect")) is not None:
        d.netdetect = _netdetect(r.stdout)
    if (r := raw.get("gateway")) is not None:
        gw = _gateway(r.stdout)
        if gw is not None:
            d.gateway, d.gateway_iface = gw
    if (r := raw.get("ip")) is not None:
        info = _ip(r.stdout, r.stderr, r.rc)
        d.ip, d.netmask, d.ip_preset = info.ip, info.netmask, info.preset
    if (r := raw.get("vnic")) is not None:
        d.vnic_link, d.vnic_ip, d.vnic_netmask = _vnic(r.stdout)
    if (r := raw.get("tls")) is not None:
        d.tls_switch = _tls(r.stdout)
    if (r := raw.get("spod")) is not None:
        d.sdid, d.super_pod_size, d.super_pod_id, d.server_index = _spod(r.stdout)
    return d


# Node-level outputs repeat from poll to poll too. Their results hold lists and dicts:
# node_from_raw only reads them (and copies what it keeps), so sharing them is safe here.
_memo_node = functools.lru_cache(maxsize=512)
_smi_list, _smi_map = _memo_node(parse_npu_smi_list), _memo_node(parse_npu_smi_map)
_smi_info, _hccn_conf = _memo_node(parse_npu_smi_info), _memo_node(parse_hccn_conf)


def node_from_raw(
    name: str,
    soc: str,
    node_raw: Mapping[str, Raw],
    device_raw: Mapping[int, Mapping[str, Raw]],
    *,
    reachable: bool = True,
    error: str | None = None,
    tools: Mapping[str, bool] | None = None,
    taken_at: float = 0.0,
) -> NodeHealth:
    """A `NodeHealth` (not classified) from node-level and per-device evidence.

    node_raw keys: npu_smi_info, npu_smi_map, npu_smi_list, hccn_conf. Devices are the
    union of ``device_raw`` keys, chip-map logic ids and `npu-smi info` rows. hccn.conf
    keys are by physical id, mapped to logic ids through the chip map (identity without).
    """
    r_map = node_raw.get("npu_smi_map")
    chip_map = _smi_map(r_map.stdout) if r_map is not None else []
    ids = _DeviceIds(chip_map, _chips_per_card(soc, node_raw))
    r_info = node_raw.get("npu_smi_info")
    info = _smi_info(r_info.stdout) if r_info is not None else NpuSmiInfo([], {})

    all_ids = set(device_raw) | {r.logic_id for r in chip_map}
    all_ids |= {ids.logic_of(x.npu_id, x.chip_id) for x in info.devices}
    devices = {i: device_from_raw(i, device_raw.get(i, {})) for i in sorted(all_ids)}
    _add_npu_smi(devices, info, ids)
    _add_card_and_phy(devices, ids)
    _add_hccn_conf(devices, node_raw.get("hccn_conf"), ids)
    return NodeHealth(
        name=name,
        soc=soc,
        reachable=reachable,
        error=error,
        devices=list(devices.values()),
        tools=dict(tools or {}),
        chip_map=chip_map,
        taken_at=taken_at,
        raw=dict(node_raw),
    )


def _chips_per_card(soc: str, node_raw: Mapping[str, Raw]) -> int:
    """From `npu-smi info -l` when it says; else 2 on A3 and 1 on A2."""
    r_list = node_raw.get("npu_smi_list")
    if r_list is not None:
        _, per_card = _smi_list(r_list.stdout)
        if per_card:
            return per_card
    return 2 if soc == "A3" else 1


class _DeviceIds:
    """Logic ids from npu-smi's (NPU ID, Chip ID) and from physical ids, by the chip map."""

    def __init__(self, chip_map: list[ChipMapRow], chips: int) -> None:
        self.chip_map = chip_map
        self.chips = chips
        self.by_card_chip = {(r.npu_id, r.chip_id): r.logic_id for r in chip_map}
        self.phy_to_logic = {r.phy_id: r.logic_id for r in chip_map if r.phy_id is not None}

    def logic_of(self, npu: int, chip: int) -> int:
        return self.by_card_chip.get((npu, chip), npu * self.chips + chip)


def _add_npu_smi(devices: dict[int, DeviceHealth], info: NpuSmiInfo, ids: _DeviceIds) -> None:
    """Health, HBM, card, chip and physical id from `npu-smi info`, and its processes."""
    for x in info.devices:
        d = devices[ids.logic_of(x.npu_id, x.chip_id)]
        d.npu_health, d.hbm_used_mb, d.hbm_total_mb = x.health, x.hbm_used, x.hbm_total
        d.card, d.chip = x.npu_id, x.chip_id
        d.phy_id = x.phy_id
    for (npu, chip), plist in info.processes.items():
        d_opt = devices.get(ids.logic_of(npu, chip))
        if d_opt is not None:
            d_opt.processes = list(plist)


def _add_card_and_phy(devices: dict[int, DeviceHealth], ids: _DeviceIds) -> None:
    """Card and chip where npu-smi info had none; the chip map's physical id wins."""
    for d in devices.values():
        if d.card is None:
            d.card, d.chip = logic_to_card_chip(d.id, ids.chip_map, ids.chips)
        for row in ids.chip_map:
            if row.logic_id == d.id and row.phy_id is not None:
                d.phy_id = row.phy_id


def _add_hccn_conf(devices: dict[int, DeviceHealth], r_conf: Raw | None, ids: _DeviceIds) -> None:
    """Each device's /etc/hccn.conf keys (read only when ``cat`` exited 0)."""
    if r_conf is None or not _rc_ok(r_conf):
        return
    for phy, keys in _hccn_conf(r_conf.stdout).items():
        d_opt = devices.get(ids.phy_to_logic.get(phy, phy))
        if d_opt is not None:
            d_opt.conf = dict(keys)


def ping_from_raw(
    src_node: str,
    src_dev: int,
    dst_node: str,
    dst_dev: int,
    address: str,
    raw: Raw,
    kind: PingKind = "roce",
) -> PingResult:
    """A `PingResult` from one ping call's evidence."""
    s = parse_ping(raw.stdout, raw.rc, kind, raw.stderr)
    return PingResult(
        src_node,
        src_dev,
        dst_node,
        dst_dev,
        address,
        s.transmitted,
        s.received,
        s.loss_pct,
        s.avg_ms,
        s.ok,
        s.reason,
        raw,
        kind,
    )


def command_text(argv: list[str]) -> str:
    """A shell-quoted command line for `Raw.command`."""
    return shlex.join(argv)
