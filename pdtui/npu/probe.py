"""The per-node health probe: one batched script per node, framed output, one SSH round trip.

The script runs every check of every device in parallel on the node (at most ``cap`` at once,
each under ``timeout``), then prints one frame per check::

    @@PDTUI:<nonce> <key> <rc> <stdout bytes> <stderr bytes>\\n<stdout><stderr>

Lengths are exact byte counts and the nonce is random per run, so no tool output, however odd,
can be mistaken for a frame. Anything between frames (a noisy ``.bashrc``) is ignored.
"""

from __future__ import annotations

import re
import secrets
import shlex
from dataclasses import dataclass

#: Per-device checks: key -> hccn_tool arguments after ``-i <dev>``.
DEVICE_CHECKS: dict[str, tuple[str, ...]] = {
    "lldp": ("-lldp", "-g"),
    "link": ("-link", "-g"),
    "net_health": ("-net_health", "-g"),
    "netdetect": ("-netdetect", "-g"),
    "gateway": ("-gateway", "-g"),
    "ip": ("-ip", "-g"),
    "tls": ("-tls", "-g"),
}
A3_DEVICE_CHECKS: dict[str, tuple[str, ...]] = {"vnic": ("-vnic", "-g")}


@dataclass(frozen=True)
class Frame:
    key: str
    rc: int | None
    stdout: str
    stderr: str


@dataclass(frozen=True)
class ProbeSpec:
    """What to probe on one node."""

    soc: str
    devices: tuple[int, ...]
    hccn_tool: str
    npu_smi: str
    hccn_conf: str
    cap: int = 16
    timeout: int = 20


def device_jobs(spec: ProbeSpec) -> list[tuple[str, list[str]]]:
    """``(frame key, argv)`` for every check of the node."""
    jobs: list[tuple[str, list[str]]] = []
    a3 = spec.soc == "A3"
    checks = {**DEVICE_CHECKS, **(A3_DEVICE_CHECKS if a3 else {})}
    for dev in spec.devices:
        for key, args in checks.items():
            jobs.append((f"d{dev}.{key}", [spec.hccn_tool, "-i", str(dev), *args]))
        if a3:
            card, chip = divmod(dev, 2)
            jobs.append((f"d{dev}.spod", [spec.npu_smi, "info", "-t", "spod-info",
                                          "-i", str(card), "-c", str(chip)]))
    jobs += [
        ("n.npu_smi_info", [spec.npu_smi, "info"]),
        ("n.npu_smi_map", [spec.npu_smi, "info", "-m"]),
        ("n.npu_smi_list", [spec.npu_smi, "info", "-l"]),
        ("n.hccn_conf", ["cat", spec.hccn_conf]),
        ("n.hostname_i", ["hostname", "-I"]),
    ]
    return jobs


def build_script(spec: ProbeSpec, nonce: str) -> str:
    """The bash script (sent on stdin to ``bash -s``) for one node."""
    return framed_script(device_jobs(spec), nonce, tools=[spec.hccn_tool, spec.npu_smi],
                         cap=spec.cap, timeout=spec.timeout)


def framed_script(jobs: list[tuple[str, list[str]]], nonce: str, *, tools: list[str],
                  cap: int = 16, timeout: int = 20) -> str:
    """Run ``jobs`` in parallel (``cap`` at once, each under ``timeout``), print them framed.

    Also prints ``tool.<name>`` frames saying whether each of ``tools`` exists (rc 0 / 127).
    """
    q = shlex.quote
    body = "\n".join(f"job {q(key)} {shlex.join(argv)}" for key, argv in jobs)
    tool_words = " ".join(q(t) for t in tools)
    return f"""set -u
export LC_ALL=C
N={q(nonce)}
CAP={int(cap)}
TO={int(timeout)}
T=$(mktemp -d 2>/dev/null || mktemp -d -t pdtui) || {{ echo "@@PDTUI:$N fatal 90 0 0"; exit 90; }}
trap 'rm -rf "$T"' EXIT
KEYS=""
job() {{
    local key=$1; shift
    while [ "$(jobs -rp | wc -l)" -ge "$CAP" ]; do wait -n 2>/dev/null || sleep 0.01; done
    ( timeout -k 2 "$TO" "$@" >"$T/$key.o" 2>"$T/$key.e" </dev/null; echo $? >"$T/$key.r" ) &
    KEYS="$KEYS $key"
}}
for t in {tool_words}; do
    if command -v "$t" >/dev/null 2>&1; then r=0; else r=127; fi
    printf '@@PDTUI:%s tool.%s %s 0 0\\n' "$N" "$(basename -- "$t")" "$r"
done
{body}
wait
for key in $KEYS; do
    rc=$(cat "$T/$key.r" 2>/dev/null || echo x)
    printf '@@PDTUI:%s %s %s %s %s\\n' "$N" "$key" "$rc" \\
        "$(wc -c <"$T/$key.o" | tr -d ' ')" "$(wc -c <"$T/$key.e" | tr -d ' ')"
    cat "$T/$key.o" "$T/$key.e"
done
"""


def new_nonce() -> str:
    return secrets.token_hex(8)


_HEADER = re.compile(rb"^@@PDTUI:([0-9a-f]+) (\S+) (-?\d+|x) (\d+) (\d+)$")


def parse_frames(data: bytes, nonce: str) -> list[Frame]:
    """Split the probe's output into frames; bytes outside frames are ignored."""
    frames: list[Frame] = []
    pos = 0
    marker = f"@@PDTUI:{nonce} ".encode()
    while True:
        start = data.find(marker, pos)
        if start < 0:
            break
        if start > 0 and data[start - 1 : start] != b"\n":
            pos = start + 1
            continue
        end = data.find(b"\n", start)
        if end < 0:
            break
        m = _HEADER.match(data[start:end])
        if m is None or m.group(1).decode() != nonce:
            pos = end + 1
            continue
        key = m.group(2).decode(errors="replace")
        rc = None if m.group(3) == b"x" else int(m.group(3))
        n_out, n_err = int(m.group(4)), int(m.group(5))
        body = end + 1
        out = data[body : body + n_out]
        err = data[body + n_out : body + n_out + n_err]
        frames.append(Frame(key, rc, out.decode(errors="replace"), err.decode(errors="replace")))
        pos = body + n_out + n_err
    return frames


def ping_jobs(pings: list[tuple[int, str, str]], hccn_tool: str,
              count: int = 3) -> list[tuple[str, list[str]]]:
    """``(src_dev, "ping"|"hccs_ping", address)`` -> framed jobs ``p0``, ``p1``, ..."""
    return [
        (f"p{i}", [hccn_tool, "-i", str(dev), f"-{kind}", "-g", "address", address,
                   "cnt", str(count)])
        for i, (dev, kind, address) in enumerate(pings)
    ]
