"""The offline analysis of saved logs (``pdtui diagnose``): any vLLM output, CANN plog or
proxy log, plain or gzip, from a file or stdin.

Inputs are untrusted: at most ``limit`` bytes are read (the report says what was cut), lines
are cut at ``LINE_MAX`` characters, and the text a report prints goes through
``pdtui.text.printable`` (the CLI does that).
"""

from __future__ import annotations

import gzip
import io
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Literal

from pdtui.launch.logs import plog
from pdtui.launch.logs.lines import dp_rank_of, dp_ranks, is_noise, natural, stamp_of
from pdtui.launch.logs.stages import STAGE_ORDER, STAGE_TITLES, STAGES
from pdtui.launch.logs.watcher import LogWatcher, Mark, Timeline

Kind = Literal["vllm", "plog", "proxy", "unknown"]
LIMIT = 64 * 1024 * 1024  # bytes read per file
LINE_MAX = 16 * 1024  # characters kept per line
_SAMPLE = 5000  # lines looked at to tell the kind

_PROXY = re.compile(
    r"Attempt \d+ failed for|attempts failed for|load_balance_proxy|proxy", re.IGNORECASE
)
_VLLM = re.compile(
    r"\([A-Za-z]\w*(?: rank=\d+)? pid=\d+\)|\b(?:INFO|WARNING|ERROR|DEBUG) "
    r"(?:\d\d-\d\d|\d{4}-\d\d-\d\d) \d\d:\d\d:\d\d"
)


@dataclass
class FileReport:
    """What one file says: its kind, stages (per timeline), findings, stats."""

    path: str
    kind: Kind = "unknown"
    watcher: LogWatcher = field(default_factory=lambda: LogWatcher(clock=lambda: 0.0))
    lines: int = 0
    bytes_read: int = 0
    cut: str | None = None  # what was left unread, in words
    error: str | None = None  # the file could not be read

    @property
    def fatal(self) -> bool:
        return any(f.fatal for f in self.watcher.all_findings)

    def to_json(self) -> dict[str, object]:
        """The ``--json`` shape (exactly these keys)."""
        tl = self.watcher.timeline
        return {
            "path": self.path,
            "kind": self.kind,
            "stage": tl.stage,
            "stages": [{"name": k, "line": m.line, "at": m.stamp} for k, m in tl.order()],
            "findings": [
                {
                    "id": f.key,
                    "severity": f.severity,
                    "line": f.lineno,
                    "text": f.line,
                    "hint": f.hint,
                }
                for f in self.watcher.all_findings
            ],
        }


def _chunks(stream: IO[bytes], limit: int) -> Iterator[bytes]:
    left = limit
    while left > 0:
        block = stream.read(min(1 << 20, left))
        if not block:
            return
        left -= len(block)
        yield block


def _open(path: str, stdin: IO[bytes] | None) -> tuple[IO[bytes], int | None]:
    """The file's bytes (gzip undone) and its size on disk, if known."""
    raw: IO[bytes]
    size: int | None = None
    if path == "-":
        raw = stdin if stdin is not None else open(0, "rb", closefd=False)  # noqa: SIM115
    else:
        raw = open(path, "rb")  # noqa: SIM115
        size = os.fstat(raw.fileno()).st_size
    head = raw.peek(2)[:2] if isinstance(raw, io.BufferedReader) else b""
    if head == b"\x1f\x8b" or path.endswith(".gz"):
        unzipped: IO[bytes] = gzip.GzipFile(fileobj=raw)  # type: ignore[assignment]
        return unzipped, size
    return raw, size


def read_lines(
    path: str, limit: int = LIMIT, stdin: IO[bytes] | None = None
) -> tuple[list[str], int, str | None]:
    """(lines, bytes read, what was cut) of ``path`` (``-``: stdin), at most ``limit`` bytes
    (after gunzip). Raises OSError (and gzip's errors) for a file that cannot be read."""
    stream, size = _open(path, stdin)
    try:
        data = b"".join(_chunks(stream, limit + 1))
    finally:
        if path != "-":
            stream.close()
    cut = None
    if len(data) > limit:
        data = data[:limit]
        whole = f" of {size / 2**20:.1f} MiB on disk" if size else ""
        cut = (
            f"read the first {limit / 2**20:.1f} MiB{whole}; the rest was not read "
            "(--max-mb raises the limit)"
        )
    text = data.decode("utf-8", errors="replace")
    lines = text.splitlines()
    long = sum(1 for ln in lines if len(ln) > LINE_MAX)
    if long:
        lines = [ln[:LINE_MAX] for ln in lines]
        note = f"{long} line(s) longer than {LINE_MAX} characters were cut"
        cut = f"{cut}; {note}" if cut else note
    return lines, len(data), cut


def kind_of(path: str, lines: list[str]) -> Kind:
    """vLLM output, a CANN plog, a proxy log, or unknown."""
    sample = [ln for ln in lines[:_SAMPLE] if not is_noise(ln)]
    if plog.is_plog_name(os.path.basename(path)) or os.path.basename(path).startswith("plog-"):
        return "plog"
    records = sum(1 for ln in sample if plog.RECORD.match(ln.strip()))
    vllm = sum(1 for ln in sample if _VLLM.search(ln))
    if records and records >= vllm:
        return "plog"
    if vllm == 0 and any(_PROXY.search(ln) for ln in sample):
        return "proxy"
    if vllm or any(p.search(ln) for ln in sample for _k, _t, p in STAGES):
        return "vllm"
    return "unknown"


def analyse(
    path: str, lines: list[str], *, bytes_read: int = 0, cut: str | None = None
) -> FileReport:
    """The report of one file's ``lines``."""
    kind = kind_of(path, lines)
    report = FileReport(path, kind, lines=len(lines), bytes_read=bytes_read, cut=cut)
    watcher = report.watcher
    watcher.source = path
    for number, line in enumerate(lines, 1):
        watcher.feed(line, number)
    if kind == "unknown" and watcher.all_findings:
        report.kind = "vllm"
    return report


def diagnose_file(path: str, limit: int = LIMIT, stdin: IO[bytes] | None = None) -> FileReport:
    """Read and analyse one file; a file that cannot be read gives a report with ``error``."""
    try:
        lines, n, cut = read_lines(path, limit, stdin)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return FileReport(path, error=f"cannot read it: {why}")
    return analyse(path, lines, bytes_read=n, cut=cut)


# ------------------------------------------------------------------------------ text report


def _when(tl: Timeline, name: str) -> str:
    """A stage's time as its line (or the last stamped line before it) gave it; for a line
    before any stamp, the first stamp after it (``by ...``)."""
    m = tl.stages[name]
    if m.stamp:
        return m.stamp
    later = [x.stamp for _k, x in tl.order() if x.stamp and x.line > m.line]
    return f"by {later[0]}" if later else "no time in the log"


def _capture_line(tl: Timeline) -> str | None:
    s, f = tl.capture.get("started"), tl.capture.get("finished")
    if s is None and f is None:
        return None
    if s is None:
        return (
            f"    graph capture: finished line {f.line if f else '-'} (its start is not in the log)"
        )
    took = f" ({f.at - s.at:.0f} s)" if f and s.stamp and f.stamp else ""
    end = f"finished line {f.line}{took}" if f else "not finished"
    return f"    graph capture: started line {s.line}, {end}"


def _group(stage: str, members: list[tuple[str, Mark]]) -> str:
    """``weights on 8 (Worker_DP1_TP0 … Worker_DP1_TP7), lines 3-10``."""
    lines = sorted(m.line for _n, m in members)
    where = f"line {lines[0]}" if len(lines) == 1 else f"lines {lines[0]}-{lines[-1]}"
    if len(members) == 1:
        return f"{stage} on {members[0][0]} ({where})"
    names = sorted((n for n, _m in members), key=natural)
    who = ", ".join(names) if len(names) <= 3 else f"{names[0]} … {names[-1]}"
    return f"{stage} on {len(names)} ({who}), {where}"


def _per_process(ranks: dict[str, dict[str, Mark]], label: str) -> str:
    """Each process (or DP rank) at the furthest stage it reached, grouped, slowest first."""
    by_stage: dict[str, list[tuple[str, Mark]]] = {}
    for r, st in ranks.items():
        last = max(st, key=STAGE_ORDER.index)
        by_stage.setdefault(last, []).append((r, st[last]))
    groups = [_group(s, by_stage[s]) for s in sorted(by_stage, key=STAGE_ORDER.index)]
    return f"    {label}: " + "; ".join(groups)


def _timeline_lines(tl: Timeline, index: int, count: int) -> list[str]:
    out = []
    if count > 1:
        out.append(f"  start {index + 1} of {count} (from line {tl.first_line}):")
        if not tl.stages:
            out.append("    no start-up stage line")
    stamped = [m for _k, m in tl.order() if m.stamp]
    t0 = stamped[0].at if stamped else None
    for name, m in tl.order():
        since = f"  +{m.at - t0:.0f} s" if t0 is not None and m.stamp else ""
        who = f"  [{m.source}]" if m.source else ""
        out.append(f"    {name:<9} line {m.line:<6} {_when(tl, name):<23}{since}{who}")
    cap = _capture_line(tl)
    if cap:
        out.append(cap)
    out.extend(_rank_lines({r: st for r, st in tl.ranks.items() if r}))
    return out


def _rank_lines(ranks: dict[str, dict[str, Mark]]) -> list[str]:
    """The DP ranks (when two or more), then each kind of process there are several of
    (workers, engine cores), unless that only repeats the DP ranks."""
    out = []
    dp = dp_ranks(ranks)
    if len(dp) > 1:
        out.append(_per_process(dp, f"{len(dp)} DP ranks"))
    kinds: dict[str, dict[str, dict[str, Mark]]] = {}
    for r, st in ranks.items():
        kinds.setdefault(re.sub(r"\d+", "N", r), {})[r] = st
    for members in kinds.values():
        one_per_rank = len({dp_rank_of(r) for r in members} - {None}) == len(members)
        if len(members) > 1 and not (len(dp) > 1 and one_per_rank):
            out.append(_per_process(members, "processes"))
    return out


def render(report: FileReport) -> list[str]:
    """The human report of one file (not yet made printable)."""
    if report.error:
        return [f"{report.path}: {report.error}"]
    w = report.watcher
    head = f"{report.path}: {report.kind}, {report.lines} lines"
    out = [head + (f" ({report.cut})" if report.cut else "")]
    stage = w.timeline.stage
    out.append(
        f"  stage: {stage} ({STAGE_TITLES[stage]})"
        if stage
        else "  stage: none (no start-up stage line in this file)"
    )
    for i, tl in enumerate(w.timelines):
        out.extend(_timeline_lines(tl, i, len(w.timelines)))
    findings = w.all_findings
    out.append(f"  findings: {len(findings) or 'none'}")
    for f in findings:
        stamp = stamp_of(f.line)
        when = f" {stamp.text}" if stamp else ""
        out.append(f"    {f.severity.upper():<7} {f.key}  line {f.lineno}{when}: {f.meaning}")
        out.append(f"        {f.line[:240]}")
        out.append(f"        fix: {f.hint}")
    if w.stats is not None:
        s = w.stats
        seen = f"{w.stats_seen} line" + ("s" if w.stats_seen != 1 else "")
        out.append(
            f"  engine stats ({seen}), last: prompt {s.prompt_tps} tok/s, "
            f"generation {s.generation_tps} tok/s, running {s.running}, waiting "
            f"{s.waiting}, KV cache {s.kv_cache_pct}%"
        )
    return out
