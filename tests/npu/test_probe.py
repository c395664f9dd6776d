"""The batched probe script's framing survives any tool output."""

from __future__ import annotations

import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pdtui.npu.probe import ProbeSpec, build_script, framed_script, new_nonce, parse_frames


def run_script(script: str) -> bytes:
    return subprocess.run(
        ["bash", "-s"], input=script.encode(), capture_output=True, timeout=60
    ).stdout


def test_odd_outputs_come_back_exactly_with_their_exit_codes() -> None:
    nonce = new_nonce()
    jobs = [
        ("d0.a", ["printf", "no newline at end"]),
        ("d0.b", ["printf", "\\n@@PDTUI:%s fake 0 out\\n@@deadbeef x 1 err\\n", nonce[::-1]]),
        ("d1.c", ["sh", "-c", "echo out; echo err >&2; exit 13"]),
        ("d1.d", ["sh", "-c", "printf '\\n\\n'; exit 0"]),
        ("n.e", ["sh", "-c", "exit 7"]),
    ]
    frames = {
        f.key: f
        for f in parse_frames(run_script(framed_script(jobs, nonce, tools=["sh", "nope"])), nonce)
    }
    assert frames["tool.sh"].rc == 0 and frames["tool.nope"].rc == 127
    assert (frames["d0.a"].stdout, frames["d0.a"].rc) == ("no newline at end", 0)
    assert frames["d0.b"].stdout == f"\n@@PDTUI:{nonce[::-1]} fake 0 out\n@@deadbeef x 1 err\n"
    assert (frames["d1.c"].stdout, frames["d1.c"].stderr, frames["d1.c"].rc) == (
        "out\n",
        "err\n",
        13,
    )
    assert frames["d1.d"].stdout == "\n\n"
    assert (frames["n.e"].stdout, frames["n.e"].rc) == ("", 7)


@pytest.mark.slow
def test_a_hanging_call_is_cut_by_its_timeout_and_the_rest_still_report() -> None:
    nonce = new_nonce()
    jobs = [("d0.hang", ["sleep", "30"]), ("d1.ok", ["echo", "fine"])]
    out = run_script(framed_script(jobs, nonce, tools=[], timeout=1))
    frames = {f.key: f for f in parse_frames(out, nonce)}
    assert frames["d0.hang"].rc == 124
    assert frames["d1.ok"].stdout == "fine\n"


def test_noise_before_and_between_frames_is_ignored() -> None:
    nonce = "00ff"
    data = (
        b"Welcome to EulerOS\n@@00ff bogus\n"
        b"\n@@00ff d0.link - out\nlink status: UP\n\n@@00ff d0.link 0 err\n"
        b"\n@@00ff end - out\n"
    )
    frames = parse_frames(data, nonce)
    assert [(f.key, f.rc, f.stdout) for f in frames] == [("d0.link", 0, "link status: UP\n")]


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=300))
def test_parse_frames_never_raises(data: bytes) -> None:
    parse_frames(data, "abcd")


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.binary(max_size=40), st.binary(max_size=20), st.integers(-1, 255)),
        min_size=1,
        max_size=6,
    ),
    st.binary(max_size=30),
)
def test_every_frame_gives_back_its_bytes_decoded(
    jobs: list[tuple[bytes, bytes, int]], noise: bytes
) -> None:
    """Whatever a tool prints (invalid UTF-8, cut multibyte characters, marker look-alikes),
    its frame holds exactly that output, decoded with replacement characters."""
    nonce = "f00d"
    data = noise.replace(b"@@f00d", b"")
    for i, (out, err, rc) in enumerate(jobs):
        data += b"\n@@f00d d%d.x - out\n" % i + out + b"\n@@f00d d%d.x %d err\n" % (i, rc) + err
    data += b"\n@@f00d end - out\n"
    frames = parse_frames(data, nonce)
    assert [f.key for f in frames] == [f"d{i}.x" for i in range(len(jobs))]
    for f, (out, err, rc) in zip(frames, jobs, strict=True):
        assert (f.stdout, f.stderr, f.rc) == (
            out.decode(errors="replace"),
            err.decode(errors="replace"),
            rc,
        )


def test_script_has_every_check_for_every_device_and_quotes_paths() -> None:
    spec = ProbeSpec("A3", (0, 15), "/opt/my tools/hccn_tool", "npu-smi", "/etc/hccn.conf")
    script = build_script(spec, "ab")
    assert "run d15.spod npu-smi info -t spod-info -i 7 -c 1 &" in script
    assert "run d0.vnic '/opt/my tools/hccn_tool' -i 0 -vnic -g &" in script
    a2 = build_script(ProbeSpec("A2", (0,), "hccn_tool", "npu-smi", "/etc/hccn.conf"), "ab")
    assert "-vnic" not in a2 and "spod-info" not in a2


def test_a_marker_with_another_nonce_is_text_even_right_before_a_real_one() -> None:
    data = (
        b"\n@@n0 a - out\nX\n@@zz k 0 out\n@@n0 a 0 err\n"
        b"\n@@n0 b - out\n\n@@n0 b 2 err\noops\n@@n0 end - out\n"
    )
    frames = parse_frames(data, "n0")
    assert [(f.key, f.rc, f.stdout, f.stderr) for f in frames] == [
        ("a", 0, "X\n@@zz k 0 out", ""),
        ("b", 2, "", "oops"),
    ]
