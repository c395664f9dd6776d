"""Fake hccn_tool / npu-smi / hostname: formats vs the real tools' samples, faults, wrappers."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pdtui.sim import tools
from pdtui.sim.faults import apply_fault, clear_faults
from pdtui.sim.state import (
    ProcessState,
    SimState,
    build_state,
    load_state,
    render_hccn_conf,
    save_state,
)
from pdtui.sim.tools import install_tools, main, run, sync_tools

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "sim"
HCCN_GETS = ("-lldp", "-link", "-net_health", "-netdetect", "-gateway", "-ip", "-vnic", "-tls")


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def cluster(latency_ms: int = 0) -> SimState:
    return build_state(
        [
            ("prefill-0", "172.22.0.218", "A3", 16),
            ("decode-0", "172.22.0.219", "A3", 16),
            ("a2-0", "172.22.0.220", "A2", 8),
            ("a2-1", "172.22.0.221", "A2", 8),
        ],
        latency_ms=latency_ms,
    )


def call(state: SimState, node: str, cmdline: str) -> tuple[str, str, int]:
    argv = cmdline.split()
    o = run(argv[0], argv[1:], state, state.node(node))
    return "".join(o.out), "".join(o.err), o.rc


def ok(state: SimState, node: str, cmdline: str) -> str:
    out, err, rc = call(state, node, cmdline)
    assert (err, rc) == ("", 0), cmdline
    return out


# =========================================================================== hccn_tool formats


def reference_device(state: SimState) -> SimState:
    """Give prefill-0 device 0 the values of the real tools' sample output."""
    d = state.node("prefill-0").devices[0]
    d.roce_ip, d.netmask = "11.12.165.80", "255.255.255.0"
    d.gateway = d.netdetect = "11.12.165.1"
    return state


@pytest.mark.parametrize(
    ("cmd", "name"),
    [
        ("-link -g", "hccn_link_up.txt"),
        ("-net_health -g", "hccn_net_health.txt"),
        ("-ip -g", "hccn_ip.txt"),
        ("-gateway -g", "hccn_gateway.txt"),
        ("-netdetect -g", "hccn_netdetect.txt"),
        ("-tls -g", "hccn_tls.txt"),
        ("-pfc -g", "hccn_pfc.txt"),
    ],
)
def test_hccn_get_formats(cmd: str, name: str) -> None:
    s = reference_device(cluster())
    assert ok(s, "prefill-0", f"hccn_tool -i 0 {cmd}") == fixture(name)


def test_hccn_vnic_format() -> None:
    s = build_state([("x", "1.1.1.1", "A3", 16)], server_index_base=7)
    assert ok(s, "x", "hccn_tool -i 0 -vnic -g") == fixture("hccn_vnic.txt").replace(
        "192.168.2.199", "192.7.2.199"
    )
    assert ok(s, "x", "hccn_tool -i 1 -vnic -g").splitlines()[1] == "vnic ipaddr: 192.7.3.198"
    _, err, rc = call(cluster(), "a2-0", "hccn_tool -i 0 -vnic -g")
    assert (err, rc) == ("Cmd execute failed!\n", 1)


def test_hccn_lldp_contains_ifname_line() -> None:
    s = cluster()
    for dev in range(16):
        out = ok(s, "prefill-0", f"hccn_tool -i {dev} -lldp -g")
        ifname = [line for line in out.splitlines() if "Ifname" in line]
        assert ifname == [f"\tIfname: {s.node('prefill-0').devices[dev].lldp_ifname}"]
        lines = out.splitlines()
        assert lines[lines.index("Port ID TLV") + 1] == ifname[0]
        assert lines[0] == "Chassis ID TLV" and lines[-1] == "End of LLDPDU TLV"
    assert "Ifname: 400GE1/1/5:1" in ok(s, "prefill-0", "hccn_tool -i 0 -lldp -g")
    assert "Ifname: 400GE1/4/5:2" in ok(s, "prefill-0", "hccn_tool -i 7 -lldp -g")


def test_hccn_failures() -> None:
    s = cluster()
    apply_fault(s, "decode-0:2:no-ip")
    assert call(s, "decode-0", "hccn_tool -i 2 -ip -g") == ("", fixture("hccn_err_no_ip.txt"), 13)
    assert call(s, "decode-0", "hccn_tool -i 2 -gateway -g") == (
        "",
        fixture("hccn_err_no_gateway.txt"),
        13,
    )
    out, err, rc = call(s, "decode-0", "hccn_tool -i 2 -netdetect -g")
    assert (out, rc) == ("", 13) and "no netdetect address was preset there!" in err
    for cmdline in ("hccn_tool -i 16 -link -g", "hccn_tool -i x -link -g"):
        assert call(s, "decode-0", cmdline) == ("", fixture("hccn_err_no_device.txt"), 1)
    assert call(s, "a2-0", "hccn_tool -i 8 -link -g")[1:] == ("The device is not exist!\n", 1)
    for bad in (
        "hccn_tool",
        "hccn_tool -i 0",
        "hccn_tool -i 0 -link",
        "hccn_tool -i 0 -foo -g",
        "hccn_tool -i 0 -link -g extra",
        "hccn_tool -i 0 -link -x",
    ):
        assert call(s, "decode-0", bad) == ("", "Cmd execute failed!\n", 1), bad


def test_hccn_tls_set_persists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "state.json"
    s = cluster()
    apply_fault(s, "decode-0:tls-mismatch")
    save_state(s, path)
    monkeypatch.setenv("PDTUI_SIM_STATE", str(path))
    assert call(s, "decode-0", "hccn_tool -i 4 -tls -s enable 0")[0] == fixture("hccn_set_ok.txt")
    s2 = load_state(path)
    assert "tls switch[0]" in ok(s2, "decode-0", "hccn_tool -i 4 -tls -g")
    assert "tls switch[1]" in ok(s2, "decode-0", "hccn_tool -i 3 -tls -g")
    assert "tls_enable_4=0\n" in render_hccn_conf(s2.node("decode-0"))
    assert call(s2, "decode-0", "hccn_tool -i 4 -tls -s enable 2")[2] == 1


# =========================================================================== pings


def shape(text: str) -> str:
    """Blank out the measured times, which are not reproducible."""
    text = re.sub(r"time=\d+\.\d{6}ms", "time=Tms", text)
    text = re.sub(r"time = \d+\.\d{3}us", "time = Tus", text)
    return re.sub(r" time \d+\.\d{3}us", " time Tus", text)


def test_roce_ping_success_format() -> None:
    s = cluster()
    target = s.node("decode-0").devices[5].roce_ip
    out = ok(s, "prefill-0", f"hccn_tool -i 0 -ping -g address {target}")
    ref = fixture("hccn_ping.txt").replace("11.12.165.80", str(target))
    assert shape(out) == shape(ref)
    assert out == ok(s, "prefill-0", f"hccn_tool -i 0 -ping -g address {target}")  # stable
    out = ok(s, "a2-0", f"hccn_tool -i 3 -ping -g address {target} cnt 5")
    assert out.splitlines()[0] == f"device 3 PING {target}"
    assert out.splitlines()[-1] == "5 packets transmitted, 5 received, 0.00% packet loss"
    assert len(out.splitlines()) == 7


def test_hccs_ping_success_format() -> None:
    s = build_state(
        [("a", "1.1.1.1", "A3", 16), ("b", "1.1.1.2", "A3", 16)], server_index_base=6, latency_ms=0
    )
    out = ok(s, "a", "hccn_tool -i 0 -hccs_ping -g address 192.7.3.198")
    assert shape(out) == shape(fixture("hccs_ping.txt"))
    times = [float(t) for t in re.findall(r"recv seq \d, time = (\S+)us", out)]
    assert f"max time {max(times):.3f}us" in out and f"min time {min(times):.3f}us" in out
    assert f"average time {sum(times) / 3:.3f}us" in out
    by_sdid = ok(s, "a", "hccn_tool -i 0 -hccs_ping -g sdid 29425665")  # (7<<22)|(1<<16)|1
    assert by_sdid == out
    out = ok(s, "a", "hccn_tool -i 2 -hccs_ping -g address 192.6.2.197 cnt 20")
    assert out.count("This pkt ping success!") == 20
    assert "20 packets transmitted, 20 received, 0.00% packets loss\n" in out


def test_ping_failures() -> None:
    s = cluster()
    d1 = s.node("decode-0").devices[1].roce_ip
    d3 = s.node("decode-0").devices[3].roce_ip
    apply_fault(s, "prefill-0:1:ping-loss=decode-0:1")
    apply_fault(s, "decode-0:3:link-down")
    out, err, rc = call(s, "prefill-0", f"hccn_tool -i 1 -ping -g address {d1}")
    assert (err, rc) == ("Cmd execute failed!\n", 1)
    assert out.splitlines() == [
        f"device 1 PING {d1}",
        "recv time out seq=0",
        "recv time out seq=1",
        "recv time out seq=2",
        "3 packets transmitted, 0 received, 100.00% packet loss",
    ]
    # other pairs still fine, reverse direction is lost too
    ok(s, "prefill-0", f"hccn_tool -i 0 -ping -g address {d1}")
    p1 = s.node("prefill-0").devices[1].roce_ip
    assert call(s, "decode-0", f"hccn_tool -i 1 -ping -g address {p1}")[2] == 1
    # link down at the target, or at the source
    out, _, rc = call(s, "prefill-0", f"hccn_tool -i 0 -ping -g address {d3}")
    assert rc == 1 and "Destination Host Unreachable seq=0" in out
    assert call(s, "decode-0", f"hccn_tool -i 3 -ping -g address {p1}")[2] == 1
    # unknown address, bad options, no ip on the source
    assert call(s, "a2-0", "hccn_tool -i 0 -ping -g address 29.1.99.1")[2] == 1
    assert call(s, "a2-0", "hccn_tool -i 0 -ping -g")[1:] == ("Cmd execute failed!\n", 1)
    assert call(s, "a2-0", f"hccn_tool -i 0 -ping -g address {d1} cnt 0")[2] == 1
    apply_fault(s, "a2-0:0:no-ip")
    assert call(s, "a2-0", f"hccn_tool -i 0 -ping -g address {d1}")[1:] == (
        "Get ipconf failed, because no ip was preset there!\n",
        13,
    )
    # the target's RoCE address is gone
    assert (
        call(s, "a2-1", f"hccn_tool -i 0 -ping -g address {s.node('a2-0').devices[0].roce_ip}")[2]
        == 1
    )
    # unreachable node
    apply_fault(s, "a2-1:unreachable")
    t = s.node("a2-1").devices[0].roce_ip
    assert call(s, "a2-0", f"hccn_tool -i 1 -ping -g address {t}")[2] == 1


def test_hccs_ping_failures() -> None:
    s = cluster()
    apply_fault(s, "decode-0:3:link-down")  # A3: HCCS is unaffected by the RoCE link
    ok(s, "prefill-0", "hccn_tool -i 0 -hccs_ping -g address 192.26.3.196")
    apply_fault(s, "prefill-0:0:ping-loss=decode-0:3")
    out, err, rc = call(s, "prefill-0", "hccn_tool -i 0 -hccs_ping -g address 192.26.3.196 cnt 2")
    assert (err, rc) == ("Cmd execute failed!\n", 1)
    assert out == (
        "device 0 PING 192.26.3.196\n\n"
        "This pkt check recv msg fail!\n"
        "recv seq 0, time = 0.000us, L1 plane check result = 0x1\n\n"
        "This pkt check recv msg fail!\n"
        "recv seq 1, time = 0.000us, L1 plane check result = 0x1\n\n"
        "2 packets transmitted, 0 received, 100.00% packets loss\n"
    )
    out, _, rc = call(s, "prefill-0", "hccn_tool -i 0 -hccs_ping -g address 192.40.2.199")
    assert rc == 1 and "This pkt send fail!" in out
    assert call(s, "prefill-0", "hccn_tool -i 0 -hccs_ping -g address 29.1.2.100")[1:] == (
        "The ip address you configured is invalid!\n",
        1,
    )
    bad = "hccn_tool -i 0 -hccs_ping -g address 192.26.2.199 sdid 1"
    assert call(s, "prefill-0", bad)[1:] == ("Cmd execute failed!\n", 1)
    assert call(s, "a2-0", "hccn_tool -i 0 -hccs_ping -g address 192.26.2.199")[2] == 1
    apply_fault(s, "decode-0:unreachable")
    assert call(s, "prefill-0", "hccn_tool -i 5 -hccs_ping -g address 192.26.2.199")[2] == 1


# =========================================================================== faults per device


def snapshot(s: SimState) -> dict[tuple[str, int, str], tuple[str, str, int]]:
    res = {}
    for n in s.nodes:
        for d in range(n.npus):
            for cmd in HCCN_GETS:
                res[(n.name, d, cmd)] = call(s, n.name, f"hccn_tool -i {d} {cmd} -g")
    return res


@pytest.mark.parametrize(
    ("spec", "changes"),
    [
        (
            "decode-0:3:link-down",
            {
                "-link": "link status: DOWN\n",
                "-net_health": "net health status: Fault\n",
                "-lldp": "",
            },
        ),
        (
            "prefill-0:5:net-health=Receive timeout",
            {"-net_health": "net health status: Receive timeout\n"},
        ),
        (
            "decode-0:2:no-ip",
            {
                "-ip": None,
                "-gateway": None,
                "-netdetect": None,
                "-net_health": "net health status: Init\n",
            },
        ),
        ("a2-0:7:net-health=Detect ip set", {"-net_health": "net health status: Detect ip set\n"}),
    ],
)
def test_fault_changes_exactly_one_device(spec: str, changes: dict[str, str | None]) -> None:
    s = cluster()
    before = snapshot(s)
    f = apply_fault(s, spec)
    after = snapshot(s)
    diff = {k for k in before if before[k] != after[k]}
    assert diff == {(f.node, f.device, cmd) for cmd in changes}
    for cmd, expected in changes.items():
        out, err, rc = after[(f.node, f.device or 0, cmd)]
        if expected is None:
            assert out == "" and rc == 13 and "was preset there!" in err
        else:
            assert (out, err, rc) == (expected, "", 0)
    clear_faults(s)
    assert snapshot(s) == before


def test_tls_mismatch_changes_one_node() -> None:
    s = cluster()
    before = snapshot(s)
    apply_fault(s, "decode-0:tls-mismatch")
    after = snapshot(s)
    diff = {k for k in before if before[k] != after[k]}
    assert diff == {("decode-0", d, "-tls") for d in range(16)}
    assert after[("decode-0", 0, "-tls")][0] == fixture("hccn_tls.txt").replace(
        "tls switch[0]", "tls switch[1]"
    )


# =========================================================================== npu-smi


def test_npu_smi_info_a3_matches_reference() -> None:
    s = cluster()
    n = s.node("prefill-0")
    d0, d1, d2 = n.devices[:3]
    d0.power_w, d0.temp_c, d0.hbm_used_mb, d0.bus_id = 182.0, 36, 3402, "0000:9D:00.0"
    d1.temp_c, d1.hbm_used_mb, d1.bus_id = 35, 3200, "0000:9F:00.0"
    d2.power_w, d2.temp_c = 181.0, 35
    lines = ok(s, "prefill-0", "npu-smi info").splitlines(keepends=True)
    ref = fixture("npu_smi_info_a3.txt").splitlines(keepends=True)
    start = lines.index(ref[0])
    assert lines[start : start + len(ref)] == ref
    partial = fixture("npu_smi_info_a3_partial.txt").splitlines()
    for i, ref_line in enumerate(partial):
        prefix = ref_line.split("...")[0].rstrip()
        assert lines[start + len(ref) + i].startswith(prefix)
    assert all(len(line) == 99 for line in lines)  # 98 columns + newline
    assert lines[0] == "+" + "-" * 96 + "+\n"
    assert sum("Ascend910" in line for line in lines) == 16
    assert [line for line in lines if "No running" in line][2].startswith(
        "| No running processes found in NPU 2 "
    )
    assert fixture("npu_smi_proc_header.txt") in lines
    assert sum("No running processes found" in line for line in lines) == 8


def test_npu_smi_info_processes() -> None:
    s = cluster()
    s.node("prefill-0").devices[0].processes.append(ProcessState(582939, "", 19502))
    lines = ok(s, "prefill-0", "npu-smi info").splitlines(keepends=True)
    assert fixture("npu_smi_proc_row.txt") in lines
    assert not any("found in NPU 0 " in line for line in lines)
    assert any("found in NPU 1 " in line for line in lines)


def test_npu_smi_info_a2() -> None:
    s = cluster()
    lines = ok(s, "a2-0", "npu-smi info").splitlines()
    assert lines[2] == "+" + "+".join("-" * w for w in (27, 15, 52)) + "+"
    assert lines[4] == (
        "| Chip                      | Bus-Id        | AICore(%)   Memory-Usage(MB)"
        "  HBM-Usage(MB)        |"
    )
    rows = [line for line in lines if "910B4" in line]
    assert len(rows) == 8
    assert rows[0].startswith("| 0     910B4               | OK            | ")
    i = lines.index(rows[1])
    assert lines[i + 1].startswith(
        "| 0                         | 0000:01:00.0  | 0           0    / 0"
    )
    assert lines[i + 1].endswith(" / 32768         |")
    assert lines[i + 2] == "+" + "+".join("=" * w for w in (27, 15, 52)) + "+"
    assert all(len(line) == 98 for line in lines)


def test_npu_smi_info_l() -> None:
    s = cluster()
    out = ok(s, "prefill-0", "npu-smi info -l")
    assert out.startswith(fixture("npu_smi_info_l.txt"))
    assert out.count("Chip Count                     : 2") == 8
    assert out.endswith(
        "\tNPU ID                         : 7\n\tChip Count                     : 2\n"
    )
    a2 = ok(s, "a2-0", "npu-smi info -l")
    assert a2.count("Chip Count                     : 1") == 8
    assert a2.startswith("\tTotal Count                    : 8\n\n")


def test_npu_smi_info_m() -> None:
    s = cluster()
    rows = [line.split() for line in ok(s, "prefill-0", "npu-smi info -m").splitlines()[1:]]
    assert rows[:3] == [
        ["0", "0", "0", "0", "Ascend910"],
        ["0", "1", "1", "1", "Ascend910"],
        ["0", "2", "-", "-", "Mcu"],
    ]
    assert ["7", "1", "15", "15", "Ascend910"] in rows and len(rows) == 24
    a2 = [line.split() for line in ok(s, "a2-0", "npu-smi info -m").splitlines()[1:]]
    assert a2[:2] == [["0", "0", "0", "0", "910B4"], ["0", "1", "-", "-", "Mcu"]]


def test_npu_smi_spod_info() -> None:
    s = cluster()
    assert ok(s, "prefill-0", "npu-smi info -t spod-info -i 0 -c 0") == fixture("spod_info.txt")
    out = ok(s, "decode-0", "npu-smi info -t spod-info -i 7 -c 1")
    assert "\tSDID                           : 110952463\n" in out  # (26<<22)|(7<<18)|(1<<16)|15
    assert out.endswith("\tServer Index                   : 26\n")
    assert call(s, "a2-0", "npu-smi info -t spod-info -i 0 -c 0")[1:] == (
        "This device does not support querying spod-info.\n",
        1,
    )
    assert call(s, "prefill-0", "npu-smi info -t spod-info -i 8 -c 0")[1:] == (
        "Error: NPU ID 8 or Chip ID 0 is invalid.\n",
        1,
    )
    assert call(s, "prefill-0", "npu-smi info -t spod-info -i 0 -c 2")[2] == 1


@pytest.mark.parametrize("args", ["", "info -x", "info -l extra", "foo", "info -t spod-info"])
def test_npu_smi_bad_args(args: str) -> None:
    o = run("npu-smi", args.split(), cluster(), cluster().node("a2-0"))
    assert ("".join(o.out), "".join(o.err), o.rc) == (
        "",
        'Invalid command. Use "npu-smi info -h" for help.\n',
        1,
    )


def test_hostname() -> None:
    s = cluster()
    assert ok(s, "decode-0", "hostname") == "decode-0\n"
    assert ok(s, "decode-0", "hostname -I") == "172.22.0.219 \n"
    assert ok(s, "decode-0", "hostname -i") == "172.22.0.219\n"
    assert call(s, "decode-0", "hostname -x") == (
        "",
        "hostname: invalid option -- 'x'\nTry 'hostname --help' for more information.\n",
        1,
    )


# =========================================================================== processes


@pytest.fixture
def sim(tmp_path: Path) -> tuple[SimState, Path, Path]:
    s = cluster()
    path = tmp_path / "state.json"
    save_state(s, path)
    root = tmp_path / "nodes"
    sync_tools(s, path, root)
    return s, path, root


def sh(root: Path, node: str, script: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PDTUI_SIM_STATE", "PDTUI_SIM_NODE")
    }
    env["PATH"] = f"{root / node / 'bin'}:/usr/bin:/bin"
    return subprocess.run(
        ["bash", "-c", script],
        env=env,
        cwd="/",
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_wrappers_installed(sim: tuple[SimState, Path, Path]) -> None:
    _, path, root = sim
    for node in ("prefill-0", "decode-0", "a2-0", "a2-1"):
        for tool in ("hccn_tool", "npu-smi", "hostname"):
            w = root / node / "bin" / tool
            assert os.access(w, os.X_OK)
            text = w.read_text()
            assert text.startswith("#!/bin/bash\n")
            assert "exec " in text and f'-m pdtui.sim.tools {tool} "$@"' in text
        conf = (root / node / "etc" / "hccn.conf").read_text()
        assert conf == render_hccn_conf(load_state(path).node(node))


@pytest.mark.slow
def test_subprocess_tools(sim: tuple[SimState, Path, Path]) -> None:
    _, _, root = sim
    r = sh(root, "decode-0", "hostname; hostname -I; hccn_tool -i 3 -link -g")
    assert (r.stdout, r.stderr, r.returncode) == (
        "decode-0\n172.22.0.219 \nlink status: UP\n",
        "",
        0,
    )
    r = sh(root, "decode-0", "hccn_tool -i 99 -ip -g")
    assert (r.stdout, r.stderr, r.returncode) == ("", "The device is not exist!\n", 1)
    r = sh(root, "prefill-0", "npu-smi info -t spod-info -i 0 -c 0")
    assert r.stdout == fixture("spod_info.txt")
    r = sh(root, "prefill-0", "for i in {0..15}; do hccn_tool -i $i -lldp -g | grep Ifname; done")
    assert r.stdout.splitlines()[:2] == ["\tIfname: 400GE1/1/5:1", "\tIfname: 400GE1/1/5:2"]
    assert len(r.stdout.splitlines()) == 16


@pytest.mark.slow
def test_subprocess_ping_between_nodes(sim: tuple[SimState, Path, Path]) -> None:
    s, path, root = sim
    d1 = s.node("decode-0").devices[1].roce_ip
    r = sh(root, "prefill-0", f"hccn_tool -i 1 -ping -g address {d1}")
    assert r.returncode == 0 and r.stdout.endswith("3 received, 0.00% packet loss\n")
    r = sh(root, "prefill-0", "hccn_tool -i 1 -hccs_ping -g address 192.26.3.198")
    assert r.returncode == 0 and "3 received, 0.00% packets loss" in r.stdout
    # a fault written by "another process" takes effect on the next call
    s2 = load_state(path)
    apply_fault(s2, "prefill-0:1:ping-loss=decode-0:1")
    save_state(s2, path)
    r = sh(root, "prefill-0", f"hccn_tool -i 1 -ping -g address {d1}")
    assert (r.returncode, r.stderr) == (1, "Cmd execute failed!\n")
    assert "100.00% packet loss" in r.stdout
    clear_faults(s2)
    apply_fault(s2, "decode-0:1:link-down")
    save_state(s2, path)
    r = sh(root, "prefill-0", f"hccn_tool -i 1 -ping -g address {d1}")
    assert r.returncode == 1 and "Destination Host Unreachable" in r.stdout
    r = sh(root, "decode-0", "hccn_tool -i 1 -link -g; hccn_tool -i 0 -link -g")
    assert r.stdout == "link status: DOWN\nlink status: UP\n"


def test_tool_missing(sim: tuple[SimState, Path, Path]) -> None:
    s, path, root = sim
    apply_fault(s, "decode-0:tool-missing=hccn_tool")
    save_state(s, path)
    sync_tools(s, path, root)
    assert not (root / "decode-0" / "bin" / "hccn_tool").exists()
    assert (root / "decode-0" / "bin" / "npu-smi").exists()
    assert (root / "prefill-0" / "bin" / "hccn_tool").exists()
    r = sh(root, "decode-0", "hccn_tool -i 0 -link -g")
    assert r.returncode == 127 and "hccn_tool: command not found" in r.stderr
    clear_faults(s)
    save_state(s, path)
    install_tools(root / "decode-0" / "bin", path, "decode-0")
    assert sh(root, "decode-0", "hccn_tool -i 0 -link -g").returncode == 0


@pytest.mark.slow
def test_tool_hang_and_slow(sim: tuple[SimState, Path, Path]) -> None:
    s, path, root = sim
    apply_fault(s, "decode-0:tool-hang=npu-smi")
    apply_fault(s, "prefill-0:slow=400")
    save_state(s, path)
    with pytest.raises(subprocess.TimeoutExpired):
        sh(root, "decode-0", "exec npu-smi info", timeout=1.5)
    assert sh(root, "decode-0", "hostname").stdout == "decode-0\n"
    t0 = time.monotonic()
    assert sh(root, "prefill-0", "hostname").stdout == "prefill-0\n"
    assert time.monotonic() - t0 >= 0.4


@pytest.mark.slow
def test_latency(tmp_path: Path) -> None:
    s = cluster(latency_ms=300)
    path = tmp_path / "s.json"
    save_state(s, path)
    sync_tools(s, path, tmp_path)
    t0 = time.monotonic()
    assert sh(tmp_path, "a2-0", "hostname").returncode == 0
    assert time.monotonic() - t0 >= 0.3


def test_python_m_entry_point(sim: tuple[SimState, Path, Path], tmp_path: Path) -> None:
    _, path, _ = sim
    env = dict(
        os.environ,
        PDTUI_SIM_STATE=str(path),
        PDTUI_SIM_NODE="a2-0",
        PYTHONPATH=str(tools.package_root()),
    )
    r = subprocess.run(
        [sys.executable, "-m", "pdtui.sim.tools", "hccn_tool", "-i", "3", "-link", "-g"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert (r.stdout, r.returncode) == ("link status: UP\n", 0)


def test_main_misconfigured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("PDTUI_SIM_STATE", raising=False)
    monkeypatch.delenv("PDTUI_SIM_NODE", raising=False)
    assert main(["hostname"]) == 2
    assert main([]) == 2
    monkeypatch.setenv("PDTUI_SIM_STATE", str(tmp_path / "missing.json"))
    monkeypatch.setenv("PDTUI_SIM_NODE", "a2-0")
    assert main(["hostname"]) == 2
    s = cluster()
    save_state(s, tmp_path / "s.json")
    monkeypatch.setenv("PDTUI_SIM_STATE", str(tmp_path / "s.json"))
    monkeypatch.setenv("PDTUI_SIM_NODE", "nope")
    assert main(["hostname"]) == 2
    monkeypatch.setenv("PDTUI_SIM_NODE", "a2-0")
    capsys.readouterr()
    assert main(["hostname", "-I"]) == 0
    assert capsys.readouterr().out == "172.22.0.220 \n"
    assert main(["ls"]) == 127
    assert capsys.readouterr().err == "ls: command not found\n"


def test_ip_tool_answers_route_addr_and_link_for_the_node_nic() -> None:
    from pdtui.sim.tools import run as run_tool

    st = build_state([("prefill-0", "172.22.0.218", "A3", 16)], latency_ms=0)
    node = st.nodes[0]
    node.nic = "enp23s0f3"
    out = run_tool("ip", ["-4", "-o", "route", "get", "8.8.8.8"], st, node)
    assert "".join(out.out) == (
        "8.8.8.8 via 172.22.0.1 dev enp23s0f3 src 172.22.0.218 uid 0 \\    cache \n"
    )
    addr = "".join(run_tool("ip", ["-o", "-4", "addr", "show", "dev", "enp23s0f3"], st, node).out)
    assert addr.startswith("2: enp23s0f3    inet 172.22.0.218/24 brd 172.22.0.255")
    missing = run_tool("ip", ["-o", "link", "show", "eth7"], st, node)
    assert (missing.rc, "".join(missing.err)) == (1, 'Device "eth7" does not exist.\n')
