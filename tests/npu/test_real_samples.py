"""The NPU parsers on real public samples of the tools' output (tests/fixtures/npu/real/).

Each sample file starts with ``# source: <URL>``, ``# command: ...`` and optional
``# note: ...`` lines, then the output exactly as it was published. The tables below say,
file by file, what a person reading the sample sees; the parser must read the same.

Where a published command ran in a loop over devices (``for i in {0..7}; do hccn_tool -i $i
...; done``) the output is split into one piece per device and each piece is parsed alone,
as pdtui runs one command per device.

`NpuSmiDevice` has no power or temperature fields, so those columns are not checked here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest

from pdtui.npu.model import ChipMapRow, IpInfo, NpuProcess, Raw
from pdtui.npu.parse import (
    NpuSmiDevice,
    SpodInfo,
    decode_sdid,
    node_from_raw,
    parse_gateway,
    parse_hccn_conf,
    parse_ip,
    parse_link,
    parse_lldp_ifname,
    parse_net_health,
    parse_netdetect,
    parse_npu_smi_info,
    parse_npu_smi_list,
    parse_npu_smi_map,
    parse_ping,
    parse_spod_info,
    parse_tls_switch,
)

REAL = Path(__file__).resolve().parent.parent / "fixtures" / "npu" / "real"
_HEADER = re.compile(r"# (source|command|note): ?(.*)")


class Sample(NamedTuple):
    source: str
    command: str
    body: str


def sample(name: str) -> Sample:
    """The file's header fields and its verbatim body (the header lines removed)."""
    lines = (REAL / name).read_text(encoding="utf-8").split("\n")
    fields: dict[str, str] = {}
    while lines and (m := _HEADER.fullmatch(lines[0])) is not None:
        fields.setdefault(m.group(1), m.group(2))
        lines.pop(0)
    return Sample(fields.get("source", ""), fields.get("command", ""), "\n".join(lines))


def all_samples() -> list[str]:
    return sorted(p.name for p in REAL.glob("*.txt"))


# ====================================================================== npu-smi info


def dev(
    npu: int,
    chip: int,
    phy: int | None,
    name: str,
    health: str,
    used: int | None,
    total: int | None,
) -> NpuSmiDevice:
    return NpuSmiDevice(npu, chip, phy, name, health, used, total)


def a2(npu: int, name: str, used: int, total: int, health: str = "OK") -> NpuSmiDevice:
    """An A2-layout row: one chip (0) per NPU, no Phy-ID column."""
    return dev(npu, 0, None, name, health, used, total)


def procs(name: str, mem: int, *pids: int) -> list[NpuProcess]:
    return [NpuProcess(pid, name, mem) for pid in pids]


_HLT = "hlt_host_devmm_"

NPU_SMI_INFO: dict[str, tuple[list[NpuSmiDevice], dict[tuple[int, int], list[NpuProcess]]]] = {
    "npu_smi_info_910b1_arthurchiao.txt": (
        # NPU 2-6 were cut by the blog's author ("...").
        [
            a2(0, "910B1", 4175, 65536),
            a2(1, "910B1", 4175, 65536),
            a2(7, "910B1", 4174, 65536),
        ],
        {},
    ),
    "npu_smi_info_910b_24.1.0_opdev910a.txt": (
        [
            a2(0, "910B", 1365, 32768),
            a2(1, "910B", 4, 32768),
            a2(2, "910B", 4, 32768),
            a2(3, "910B", 3, 32768),
            a2(4, "910B", 3, 32768),
            a2(5, "910B", 5, 32768),
            a2(6, "910B", 5, 32768),
            a2(7, "910B", 4, 32768),
        ],
        {},
    ),
    "npu_smi_info_910a_24.1rc2_manual.txt": (
        # HBM 0 / 32768 (the Memory-Usage DDR pair beside it is 4252 / 15137 etc.); two
        # NPUs in Warning; four hlt_host_devmm_ processes of 686 MB on every NPU.
        [
            a2(0, "xxx", 0, 32768),
            a2(1, "xxx", 0, 32768),
            a2(2, "xxx", 0, 32768),
            a2(3, "xxx", 0, 32768, "Warning"),
            a2(4, "xxx", 0, 32768),
            a2(5, "xxx", 0, 32768),
            a2(6, "xxx", 0, 32768),
            a2(7, "xxx", 0, 32768, "Warning"),
        ],
        {
            (0, 0): procs(_HLT, 686, 37656, 37664, 37640, 37648),
            (1, 0): procs(_HLT, 686, 37665, 37641, 37649, 37657),
            (2, 0): procs(_HLT, 686, 37658, 37650, 37666, 37642),
            (3, 0): procs(_HLT, 686, 37643, 37651, 37659, 37667),
            (4, 0): procs(_HLT, 686, 37668, 37644, 37652, 37660),
            (5, 0): procs(_HLT, 686, 37653, 37661, 37669, 37645),
            (6, 0): procs(_HLT, 686, 37646, 37654, 37662, 37670),
            (7, 0): procs(_HLT, 686, 37671, 37647, 37655, 37663),
        },
    ),
    "npu_smi_info_910b4-1_25.2.0_hami_webui_47.txt": (
        [a2(0, "910B4-1", 3197, 65536), a2(1, "910B4-1", 3197, 65536)],
        {},
    ),
    "npu_smi_info_910b4_24.1.1_1panel_9472.txt": (
        # "26838/ 32768": a five-digit used value leaves no space before the slash.
        [a2(0, "910B4", 26838, 32768), a2(1, "910B4", 29356, 32768)],
        {},
    ),
    "npu_smi_info_910b2_24.1.0_vllm_ascend_5707.txt": (
        # NPU 1's second row is not in the sample, so NPU 1 is not a complete device.
        [a2(0, "910B2", 59891, 65536)],
        {},
    ),
    "npu_smi_info_910prob_24.1.0_vllm_ascend_1047.txt": (
        # HBM is the last pair (18 / 32768), not the DDR Memory-Usage pair (2387 / 13553).
        [a2(0, "910ProB", 18, 32768), a2(1, "910ProB", 8, 32768)],
        {},
    ),
    "npu_smi_info_a3_24.1rc3.7_vllm_ascend_2035.txt": (
        # NPU 1 has only its first row in the sample.
        [
            dev(0, 0, 0, "Ascend910", "OK", 3397, 65536),
            dev(0, 1, 1, "Ascend910", "OK", 3186, 65536),
        ],
        {},
    ),
    "npu_smi_info_a3_26.0rc2_head_vllm_ascend_12980.txt": (
        [
            dev(0, 0, 0, "Ascend910", "OK", 3419, 65536),
            dev(0, 1, 1, "Ascend910", "OK", 2874, 65536),
        ],
        {},
    ),
    "npu_smi_info_a3_26.0rc2_tail_vllm_ascend_12980.txt": (
        # The 26.0 process table has a sixth column, "Process id in container" (NA).
        [dev(7, 1, 15, "Ascend910", "OK", 31877, 65536)],
        {(0, 0): [NpuProcess(632268, "python3.1", 197)]},
    ),
    "npu_smi_info_310p3_25.2.0_vllm_ascend_2416.txt": (
        # 310P: "Chip Device" header (a device id, not a Phy-ID) and no HBM column.
        [
            dev(2, 0, None, "310P3", "OK", None, None),
            dev(2, 1, None, "310P3", "OK", None, None),
        ],
        {},
    ),
    "npu_smi_info_310p3_24.1rc2_ollama_5315.txt": (
        [
            dev(1, 0, None, "310P3", "OK", None, None),
            dev(1, 1, None, "310P3", "OK", None, None),
        ],
        {},
    ),
}


@pytest.mark.parametrize("name", sorted(NPU_SMI_INFO))
def test_npu_smi_info_real(name: str) -> None:
    devices, processes = NPU_SMI_INFO[name]
    info = parse_npu_smi_info(sample(name).body)
    assert info.devices == devices
    assert info.processes == processes


def test_npu_smi_info_real_node_view() -> None:
    """The manual's 910A `npu-smi info` and `-m` together: eight A2 devices, each with its
    card, chip, HBM and four processes; no physical ids (neither output has one)."""
    raw = {
        "npu_smi_info": Raw(
            "npu-smi info", 0, sample("npu_smi_info_910a_24.1rc2_manual.txt").body, ""
        ),
        "npu_smi_map": Raw(
            "npu-smi info -m", 0, sample("npu_smi_map_910a_24.1rc2_manual.txt").body, ""
        ),
    }
    node = node_from_raw("atlas-800", "A2", raw, {})
    assert [d.id for d in node.devices] == list(range(8))
    assert [(d.card, d.chip, d.phy_id) for d in node.devices] == [(i, 0, None) for i in range(8)]
    assert [d.npu_health for d in node.devices] == ["OK"] * 3 + ["Warning"] + ["OK"] * 3 + [
        "Warning"
    ]
    assert all((d.hbm_used_mb, d.hbm_total_mb) == (0, 32768) for d in node.devices)
    assert [len(d.processes) for d in node.devices] == [4] * 8


# ====================================================================== npu-smi -m / -l / spod


NPU_SMI_MAP: dict[str, list[ChipMapRow]] = {
    "npu_smi_map_910a_24.1rc2_manual.txt": [
        ChipMapRow(i, 0, i, None, "Ascend 910A") for i in range(8)
    ],
}


@pytest.mark.parametrize("name", sorted(NPU_SMI_MAP))
def test_npu_smi_map_real(name: str) -> None:
    assert parse_npu_smi_map(sample(name).body) == NPU_SMI_MAP[name]


NPU_SMI_LIST: dict[str, tuple[int | None, int | None]] = {
    "npu_smi_list_16npu_awesome_ascend_skills_78.txt": (16, 1),
}


@pytest.mark.parametrize("name", sorted(NPU_SMI_LIST))
def test_npu_smi_list_real(name: str) -> None:
    assert parse_npu_smi_list(sample(name).body) == NPU_SMI_LIST[name]


def test_spod_info_real() -> None:
    body = sample("npu_smi_spod_info_a3_shmem.txt").body
    info = parse_spod_info(body)
    assert info == SpodInfo(sdid=16777216, super_pod_size=384, super_pod_id=0, server_index=4)
    # The SDID's top bits carry the same server index the sample prints.
    assert decode_sdid(16777216) == (4, 0, 0, 0)


# ====================================================================== /etc/hccn.conf


def test_hccn_conf_real() -> None:
    conf = parse_hccn_conf(sample("hccn_conf_910b1_arthurchiao.txt").body)
    assert conf == {
        0: {
            "address": "29.1.137.205",
            "netmask": "255.255.0.0",
            "netdetect": "29.1.0.1",
            "gateway": "29.1.0.1",
            "send_arp_status": "1",
        },
        7: {
            "address": "29.1.170.143",
            "netmask": "255.255.0.0",
            "netdetect": "29.1.0.1",
            "gateway": "29.1.0.1",
            "send_arp_status": "1",
        },
    }


# ====================================================================== hccn_tool


def per_line(body: str) -> list[str]:
    """One device per line; the guides' "..." elision lines are not a device."""
    return [ln for ln in body.split("\n") if ln.strip() and ln.strip() not in ("...", "... ...")]


def per_pair(body: str) -> list[str]:
    """``-ip -g`` in a loop: ``ipaddr:`` and ``netmask:`` per device."""
    lines = per_line(body)
    return ["\n".join(lines[i : i + 2]) for i in range(0, len(lines), 2)]


def split_before(pattern: str) -> Callable[[str], list[str]]:
    """A new device starts at each line matching ``pattern``."""
    rx = re.compile(pattern)

    def split(body: str) -> list[str]:
        pieces: list[list[str]] = []
        for ln in body.split("\n"):
            if rx.search(ln) or not pieces:
                pieces.append([])
            pieces[-1].append(ln)
        return ["\n".join(p) for p in pieces if any(x.strip() for x in p)]

    return split


def whole(body: str) -> list[str]:
    return [body]


class Hccn(NamedTuple):
    parse: Callable[[str], object]
    split: Callable[[str], list[str]]
    expected: list[object]
    #: Whether the whole (loop) output reads as its first device; not for ping, whose
    #: summary is the last one printed.
    whole_is_first: bool = True


_GW = "11.12.165.1"
_TLS_LINE = split_before(r"tls switch\[")


def _ip(text: str) -> IpInfo:
    return parse_ip(text, "", 0)


def _ping(text: str) -> tuple[int | None, int | None, float | None, float | None, bool]:
    s = parse_ping(text, 0)
    return s.transmitted, s.received, s.loss_pct, round(s.avg_ms or 0.0, 6), s.ok


HCCN: dict[str, Hccn] = {
    # ---- -link -g / -net_health -g / -netdetect -g (devices 1-6 elided in the guide)
    "hccn_link_x8_dsv3_guide.txt": Hccn(parse_link, per_line, ["UP", "UP"]),
    "hccn_net_health_x8_dsv3_guide.txt": Hccn(parse_net_health, per_line, ["Success"] * 2),
    "hccn_netdetect_x8_dsv3_guide.txt": Hccn(parse_netdetect, per_line, [_GW, _GW]),
    # ---- -gateway -g: the gateway and each device's own eth<N>
    "hccn_gateway_x8_dsv3_guide.txt": Hccn(
        parse_gateway, per_line, [(_GW, f"eth{i}") for i in range(8)]
    ),
    # ---- -ip -g
    "hccn_ip_910b1_arthurchiao.txt": Hccn(
        _ip, whole, [IpInfo("29.1.112.213", "255.255.0.0", True)]
    ),
    "hccn_ip_x8_dsv3_guide.txt": Hccn(
        _ip, per_pair, [IpInfo(f"11.12.165.{80 + i}", "255.255.255.0", True) for i in range(8)]
    ),
    # ---- -lldp -g: the switch port the NPU is cabled to
    "hccn_lldp_910b1_arthurchiao.txt": Hccn(parse_lldp_ifname, whole, ["400GE1/1/20:2"]),
    "hccn_lldp_ifname_x8_dsv3_guide.txt": Hccn(
        parse_lldp_ifname,
        per_line,
        [f"400GE1/{s}/5:{p}" for s in (1, 2, 3, 4) for p in (1, 2)],
    ),
    # ---- -tls -g: the switch value per device
    "hccn_tls_x8_dsv3_guide.txt": Hccn(parse_tls_switch, per_line, [0] * 8),
    "hccn_tls_mismatch_hccl_guide.txt": Hccn(parse_tls_switch, per_line, [0, 1]),
    "hccn_tls_certs_hccl_guide.txt": Hccn(parse_tls_switch, _TLS_LINE, [0, 0]),
    # ---- -ping -g address X: sent, received, loss %, mean of the recv times (ms), ok
    "hccn_ping_910b1_arthurchiao.txt": Hccn(
        _ping, whole, [(3, 3, 0.0, round((1.418 + 0.034 + 0.040) / 3, 6), True)]
    ),
    "hccn_ping_x8_dsv3_guide.txt": Hccn(
        _ping,
        split_before(r"^device [0-9]+ PING "),
        [
            (3, 3, 0.0, round(sum(ms) / 3, 6), True)
            for ms in (
                (0.114, 0.067, 0.063),
                (0.149, 0.066, 0.064),
                (0.140, 0.063, 0.064),
                (0.154, 0.064, 0.062),
                (0.142, 0.065, 0.064),
                (0.139, 0.065, 0.063),
                (0.143, 0.063, 0.063),
                (0.157, 0.065, 0.063),
            )
        ],
        whole_is_first=False,
    ),
}


@pytest.mark.parametrize("name", sorted(HCCN))
def test_hccn_tool_real(name: str) -> None:
    case = HCCN[name]
    body = sample(name).body
    assert [case.parse(piece) for piece in case.split(body)] == case.expected
    if case.whole_is_first:  # the whole output, as a loop prints it
        assert case.parse(body) == case.expected[0]


# ====================================================================== the files themselves


def test_every_sample_has_a_source_a_command_and_a_check(
    summary_line: Callable[[str], None],
) -> None:
    names = all_samples()
    summary_line(f"real NPU samples: {len(names)} files")
    checked = set(NPU_SMI_INFO) | set(NPU_SMI_MAP) | set(NPU_SMI_LIST) | set(HCCN)
    checked |= {"npu_smi_spod_info_a3_shmem.txt", "hccn_conf_910b1_arthurchiao.txt"}
    assert sorted(checked) == names
    readme = (REAL / "README.md").read_text(encoding="utf-8")
    for name in names:
        s = sample(name)
        assert re.fullmatch(r"https?://\S+( .*)?", s.source), name
        assert s.command, name
        assert s.body.strip(), name
        assert not s.body.startswith("# "), name
        assert f"`{name}`" in readme, name
