"""The per-node health probe: one batched script per node, framed output, one SSH round trip.

The script runs every check of every device in parallel on the node (at most ``cap`` at once,
each under ``timeout``), then prints one frame per check::

    @@PDTUI:<nonce> <key> <rc> <stdout bytes> <stderr bytes>\\n<stdout><stderr>

Lengths are exact byte counts and the nonce is random per run, so no tool output, however odd,
can be mistaken for a frame. Anything between frames (a noisy ``.bashrc``) is ignored.
"""

from __future__ import annotations

import functools
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


#: Each tool call may write this many bytes to stdout and to stderr (a file-size limit on the
#: node, no extra fork per call: past it the tool is stopped by SIGXFSZ); a cut call's stderr
#: ends with ``CUT_NOTE`` (one ``find`` over the output files at the end).
MAX_CALL_OUTPUT = 64 << 10
CUT_NOTE = f"pdtui: output cut at {MAX_CALL_OUTPUT} bytes (the tool printed more)"

_BRACE_SAFE = re.compile(r"[A-Za-z0-9_.-]+")
# The closing newline is only looked at, not consumed: it may open the next marker.
_MARKER = re.compile(r"\n@@(\S+) (\S+) (-?\d+|-) (out|err)(?=\n)", re.ASCII)


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
    return [(key, list(argv)) for key, argv in _jobs(spec)]


def job_commands(spec: ProbeSpec) -> dict[str, str]:
    """Frame key -> the command line it ran (for the drill-down)."""
    return dict(_commands(spec))


@functools.lru_cache(maxsize=256)
def _commands(spec: ProbeSpec) -> tuple[tuple[str, str], ...]:
    return tuple((key, " ".join(argv)) for key, argv in _jobs(spec))


@functools.lru_cache(maxsize=256)
def _jobs(spec: ProbeSpec) -> tuple[tuple[str, tuple[str, ...]], ...]:
    jobs: list[tuple[str, list[str]]] = []
    a3 = spec.soc == "A3"
    checks = {**DEVICE_CHECKS, **(A3_DEVICE_CHECKS if a3 else {})}
    for dev in spec.devices:
        for key, args in checks.items():
            jobs.append((f"d{dev}.{key}", [spec.hccn_tool, "-i", str(dev), *args]))
        if a3:
            card, chip = divmod(dev, 2)
            jobs.append(
                (
                    f"d{dev}.spod",
                    [spec.npu_smi, "info", "-t", "spod-info", "-i", str(card), "-c", str(chip)],
                )
            )
    jobs += [
        ("n.npu_smi_info", [spec.npu_smi, "info"]),
        ("n.npu_smi_map", [spec.npu_smi, "info", "-m"]),
        ("n.npu_smi_list", [spec.npu_smi, "info", "-l"]),
        ("n.hccn_conf", ["cat", spec.hccn_conf]),
        ("n.hostname_i", ["hostname", "-I"]),
        # The address vLLM's get_ip() picks without VLLM_HOST_IP: the default route's source.
        # `ip route get` only looks the route up; nothing is sent.
        ("n.route", ["ip", "-4", "-o", "route", "get", "8.8.8.8"]),
    ]
    return tuple((key, tuple(argv)) for key, argv in jobs)


def build_script(spec: ProbeSpec, nonce: str) -> str:
    """The bash script (sent on stdin to ``bash -s``) for one node."""
    head, tail = _script_parts(spec)
    return f"{head}N={shlex.quote(nonce)}\n{tail}"


@functools.lru_cache(maxsize=256)
def _script_parts(spec: ProbeSpec) -> tuple[str, str]:
    """The node's script around its ``N=`` line (the only line a new nonce changes)."""
    text = framed_script(
        device_jobs(spec),
        "0",
        tools=[spec.hccn_tool, spec.npu_smi],
        cap=spec.cap,
        timeout=spec.timeout,
        free=("n",),
    )
    head, _, tail = text.partition("\nN=0\n")
    return head + "\n", tail


def framed_script(
    jobs: list[tuple[str, list[str]]],
    nonce: str,
    *,
    tools: list[str],
    cap: int = 16,
    timeout: int = 20,
    free: tuple[str, ...] = (),
) -> str:
    """Run ``jobs`` in parallel and print them framed.

    Jobs are grouped by the part of their key before the first ``.`` (``d3.link`` belongs to
    device 3): the checks of one group run at once, and at most ``cap`` groups run at once
    (so by default all 16 devices of an A3 node are probed together). Groups named in
    ``free`` (the node-wide checks) start first and do not count against ``cap``. Each call
    runs under
    ``timeout`` seconds. Also prints ``tool.<name>`` frames saying whether each of ``tools``
    exists (rc 0 / 127). Per call the node forks only a subshell, ``timeout`` and the tool:
    headers are written by the shell's own ``printf`` and one ``cat`` prints everything.
    """
    q = shlex.quote
    groups: dict[str, list[tuple[str, list[str]]]] = {}
    for key, argv in jobs:
        groups.setdefault(key.split(".", 1)[0], []).append((key, argv))
    blocks = []
    order = [g for g in groups if g in free] + [g for g in groups if g not in free]
    for name in order:
        calls = "\n".join(f"    run {q(key)} {shlex.join(argv)} &" for key, argv in groups[name])
        if name in free:
            blocks.append(f"(\n{calls}\n    wait\n) &")
        else:
            blocks.append(f"gate\n(\n{calls}\n    wait\n) &\nRUNNING=$((RUNNING + 1))")
    files = _frame_files([key for key, _ in jobs])
    tool_words = " ".join(q(t) for t in tools)
    body = "\n".join(blocks)
    kib = MAX_CALL_OUTPUT // 1024
    return f"""set -u
export LC_ALL=C
N={q(nonce)}
CAP={int(cap)}
TO={int(timeout)}
T=$(mktemp -d 2>/dev/null || mktemp -d -t pdtui) ||
    {{ printf '\\n@@%s fatal 90 out\\n' "$N"; exit 90; }}
trap 'rm -rf "$T"' EXIT
RUNNING=0
FL=$(ulimit -S -f)
gate() {{
    if [ "$RUNNING" -ge "$CAP" ]; then wait -n; RUNNING=$((RUNNING - 1)); fi
}}
run() {{
    local k=$1 rc; shift
    printf '\\n@@%s %s - out\\n' "$N" "$k" >"$T/$k.a"
    ulimit -S -f {kib}
    timeout -k 2 "$TO" "$@" >"$T/$k.o" 2>"$T/$k.e" </dev/null
    rc=$?
    ulimit -S -f "$FL"
    printf '\\n@@%s %s %s err\\n' "$N" "$k" "$rc" >"$T/$k.m"
}}
for t in {tool_words}; do
    if command -v "$t" >/dev/null 2>&1; then r=0; else r=127; fi
    printf '\\n@@%s tool.%s %s out\\n' "$N" "${{t##*/}}" "$r"
done
{body}
wait
find "$T" -name '*.[oe]' -size +{MAX_CALL_OUTPUT - 1}c 2>/dev/null | while read -r f; do
    printf '\\n%s\\n' {q(CUT_NOTE)} >>"${{f%.?}}.e"
done
cat {files} 2>/dev/null
printf '\\n@@%s end - out\\n' "$N"
"""


def _frame_files(keys: list[str]) -> str:
    """The shell words naming every job's four frame files, in the order they print."""
    if len(keys) > 1 and all(_BRACE_SAFE.fullmatch(k) for k in keys):
        # brace expansion keeps the order: k1.a k1.o k1.m k1.e k2.a ... (and the script short)
        return '"$T"/{' + ",".join(keys) + "}.{a,o,m,e}"
    q = shlex.quote
    return " ".join(f'"$T"/{q(key)}.{ext}' for key in keys for ext in "aome")


def new_nonce() -> str:
    return secrets.token_hex(8)


def parse_frames(data: bytes, nonce: str) -> list[Frame]:
    """Split the probe's output into frames; bytes outside frames are ignored.

    Each job prints ``\\n@@<nonce> <key> - out\\n<stdout>\\n@@<nonce> <key> <rc> err\\n<stderr>``;
    the nonce is random per run, so tool output cannot imitate a marker.
    """
    # One decode for the whole output: markers are ASCII lines, so no invalid sequence can
    # straddle one, and decoding the parts separately would give the same text.
    text = data.decode(errors="replace")
    text = "\n" + text if not text.startswith("\n") else text
    # One pattern for every nonce (a per-nonce pattern would be compiled on every call);
    # a marker with another nonce is not a marker: it stays inside the frame's text.
    found = [m for m in _MARKER.finditer(text) if m.group(1) == nonce]
    parts: dict[str, dict[str, str]] = {}
    rcs: dict[str, int | None] = {}
    order: list[str] = []
    for i, m in enumerate(found):
        key, rc_text, stream = m.group(2, 3, 4)
        if key == "end":
            break
        end = found[i + 1].start() if i + 1 < len(found) else len(text)
        if key not in parts:
            parts[key] = {}
            order.append(key)
        parts[key][stream] = text[m.end() + 1 : end]
        if stream == "err" or key.startswith("tool.") or key == "fatal":
            rcs[key] = None if rc_text == "-" else int(rc_text)
    frames = []
    for key in order:
        if key.startswith("tool.") or key == "fatal":
            frames.append(Frame(key, rcs.get(key), "", ""))
            continue
        p = parts[key]
        frames.append(Frame(key, rcs.get(key), p.get("out", ""), p.get("err", "")))
    return frames


def ping_jobs(
    pings: list[tuple[int, str, str]], hccn_tool: str, count: int = 3
) -> list[tuple[str, list[str]]]:
    """``(src_dev, "ping"|"hccs_ping", address)`` -> framed jobs ``p0``, ``p1``, ..."""
    return [
        (
            f"p{i}",
            [hccn_tool, "-i", str(dev), f"-{kind}", "-g", "address", address, "cnt", str(count)],
        )
        for i, (dev, kind, address) in enumerate(pings)
    ]
