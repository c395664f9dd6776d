"""Log lines as records: the process prefix (which rank), the line's own time stamp.

Every time stamp shape seen in real vLLM, vLLM-Ascend, CANN and Mooncake output is read:

- vLLM ``INFO 09-08 02:54:59 [file.py:1]`` (and ``file.py:1]`` before 0.8), vLLM 2026
  ``ERROR 2026-04-25 10:01:17.340 [file.py:1]``;
- CANN plog ``HCCL(60570,):2025-12-04-14:46:07.911.312`` (also ``...:17:012.780``), CANN
  error codes ``EI0006: [PID: 1] 2025-04-08-18:07:20.444.436`` / ``[PID: 1] 2025-12-29-...``,
  torch_npu ``[ERROR] 2025-08-04-03:13:46 (PID:42874, ...``;
- glog (Mooncake) ``E20260106 06:43:02.966156`` and ``I0331 02:48:57.801054``;
- torch ``[W511 11:38:06.008215514 ...]``, CI ``[2025-08-12T08:42:32Z]``, journald
  ``Aug 19 18:34:27``.

Stamps without a year (most of them) get the year that puts them nearest a reference time.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Protocol, TypeVar

_MONTHS = {
    m: i
    for i, m in enumerate(
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"],
        start=1,
    )
}


@dataclass(frozen=True)
class Stamp:
    """A time stamp as the line wrote it (the year may be missing)."""

    year: int | None
    month: int
    day: int
    hour: int
    minute: int
    second: int
    micro: int = 0

    @property
    def text(self) -> str:
        """``2026-04-25 10:01:17.340`` or, without a year, ``04-25 10:01:17``."""
        frac = f".{self.micro // 1000:03d}" if self.micro else ""
        day = (
            f"{self.month:02d}-{self.day:02d} {self.hour:02d}:{self.minute:02d}:"
            f"{self.second:02d}{frac}"
        )
        return day if self.year is None else f"{self.year:04d}-{day}"

    def epoch(self, ref: float) -> float | None:
        """Seconds since the epoch (local time); a missing year is the one nearest ``ref``."""
        base = dt.datetime.fromtimestamp(ref)
        years = [self.year] if self.year is not None else [base.year - 1, base.year, base.year + 1]
        best: float | None = None
        for year in years:
            try:
                t = dt.datetime(
                    year, self.month, self.day, self.hour, self.minute, self.second, self.micro
                ).timestamp()
            except (ValueError, OverflowError):
                continue
            if best is None or abs(t - ref) < abs(best - ref):
                best = t
        return best


_T = r"(\d\d):(\d\d):(\d\d)"
_LEVEL = r"\b(?:INFO|WARNING|WARN|ERROR|DEBUG|CRITICAL)"
# (regex, field order): Y=year M=month D=day h m s f=fraction (digits), b=month name
_SHAPES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(_LEVEL + r" (\d\d)-(\d\d) " + _T + r"\b"), "MDhms"),
    (re.compile(_LEVEL + r" (\d{4})-(\d\d)-(\d\d) " + _T + r"(?:[.,](\d+))?"), "YMDhmsf"),
    (re.compile(r"\b[A-Z]+\(\d+,[^)]*\):(\d{4})-(\d\d)-(\d\d)-" + _T + r"[.:](\d{3})"), "YMDhmsf"),
    (re.compile(r"\[PID: ?\d+\] (\d{4})-(\d\d)-(\d\d)-" + _T + r"\.(\d{3})"), "YMDhmsf"),
    (re.compile(r"\bE[A-Z0-9]\d{4}: (\d{4})-(\d\d)-(\d\d)-" + _T + r"\.(\d{3})"), "YMDhmsf"),
    (re.compile(r"\[(?:ERROR|WARNING|INFO)\] (\d{4})-(\d\d)-(\d\d)-" + _T + r" \(PID"), "YMDhms"),
    (re.compile(r"(?:^|\s|\))[IWEF](\d{4})(\d\d)(\d\d) " + _T + r"\.(\d{6}) +\d+ "), "YMDhmsf"),
    (re.compile(r"(?:^|\s|\))[IWEF](\d\d)(\d\d) " + _T + r"\.(\d{6}) +\d+ "), "MDhmsf"),
    (re.compile(r"\[[IWE](\d{1,2})(\d\d) " + _T + r"\.(\d+)"), "MDhmsf"),
    (re.compile(r"(\d{4})-(\d\d)-(\d\d)T" + _T + r"(?:\.(\d+))?"), "YMDhmsf"),
    (re.compile(r"^([A-Z][a-z]{2}) +(\d{1,2}) " + _T + r" "), "bDhms"),
]


def stamp_of(line: str) -> Stamp | None:
    """The first time stamp of a known shape in ``line``, else None."""
    for pattern, order in _SHAPES:
        m = pattern.search(line)
        if m is None:
            continue
        parts = dict(zip(order, m.groups(), strict=True))
        month = _MONTHS.get(parts["b"], 0) if "b" in parts else int(parts["M"])
        frac = (parts.get("f") or "")[:6].ljust(6, "0")
        stamp = Stamp(
            int(parts["Y"]) if "Y" in parts else None,
            month,
            int(parts["D"]),
            int(parts["h"]),
            int(parts["m"]),
            int(parts["s"]),
            int(frac),
        )
        if 1 <= stamp.month <= 12 and 1 <= stamp.day <= 31 and stamp.hour < 24:
            return stamp
    return None


def line_time(line: str, default: float) -> float:
    """The time ``line`` carries, else ``default``. A stamp without a year gets the year that
    puts it nearest ``default`` (or now, if ``default`` is negative)."""
    import time

    stamp = stamp_of(line)
    if stamp is None:
        return default
    t = stamp.epoch(default if default >= 0 else time.time())
    return default if t is None else t


# ------------------------------------------------------------------ process prefixes, records

#: ``(EngineCore_DP0 pid=298) ``, ``(VllmWorker rank=3 pid=50935) ``; doubled prefixes
#: (``(Worker pid=1) (Worker_DP0_TP1_EP1 pid=1) ``) name the last one.
_PREFIX = re.compile(r"(?:\(([A-Za-z]\w*)( rank=\d+)? pid=\d+\)[ \t]*)+")
_TORCH_RANK = re.compile(r"^\[rank(\d+)\]:")
_GLUED = re.compile(r"(?<=[^\s)])(?=\([A-Za-z]\w*(?: rank=\d+)? pid=\d+\) )")
_NOISE = re.compile(r"^(?:\[\.\.\. .*elided \.\.\.\]|# (?:source|what): .*)$")


def clean(line: str) -> str:
    """A physical line without its line end, pasted ``^M`` marks or trailing blanks."""
    return line.rstrip("\r\n").replace("^M", "").replace("\r", "").rstrip()


def split_glued(line: str) -> list[str]:
    """A progress bar and the record printed after it without a newline, as two records."""
    if " pid=" not in line:
        return [line]
    parts = _GLUED.split(line)
    return [p for p in parts if p.strip()] or [line]


def is_noise(line: str) -> bool:
    """Markers of a quoted excerpt (``# source:`` header, ``[... N lines elided ...]``)."""
    return bool(_NOISE.match(line))


def source_of(line: str) -> str:
    """The process a record comes from (``EngineCore_DP0``, ``VllmWorker rank=3``,
    ``rank1``), or ``""``."""
    m = _PREFIX.search(line, 0, 200)  # also after a compose (``vllm-1  | ``) prefix
    if m is not None:
        return m.group(1) + (m.group(2) or "")
    t = _TORCH_RANK.match(line)
    return f"rank{t.group(1)}" if t else ""


_DP_RANK = re.compile(r"_DP(\d+)|^EngineCore_(\d+)$")


def dp_rank_of(prefix: str) -> str | None:
    """``DP1`` for ``EngineCore_DP1``, ``Worker_DP1_TP3`` or the older ``EngineCore_1``;
    None for a prefix of the whole process (``APIServer``, ``VllmWorker rank=3``)."""
    m = _DP_RANK.search(prefix)
    return None if m is None else f"DP{m.group(1) or m.group(2)}"


_M = TypeVar("_M", bound="_HasLine")


class _HasLine(Protocol):
    @property
    def line(self) -> int: ...


def dp_ranks(ranks: dict[str, dict[str, _M]]) -> dict[str, dict[str, _M]]:
    """Per-process stage marks merged per data-parallel rank (engine core and its workers):
    each stage at the first line any of them reached it."""
    out: dict[str, dict[str, _M]] = {}
    for prefix, stages in ranks.items():
        rank = dp_rank_of(prefix)
        if rank is None:
            continue
        merged = out.setdefault(rank, {})
        for key, mark in stages.items():
            if key not in merged or mark.line < merged[key].line:
                merged[key] = mark
    return dict(sorted(out.items(), key=lambda kv: natural(kv[0])))


def natural(name: str) -> list[int | str]:
    """Sort key: ``Worker_DP0_TP10`` after ``Worker_DP0_TP9``."""
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


_Trie = dict[str, "_Trie"]


def literal_regex(words: tuple[str, ...]) -> re.Pattern[str]:
    """One pattern matching any of ``words`` (literal text), built as a trie: much faster on
    long logs than an alternation of the words."""
    trie: _Trie = {}
    for word in words:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: _Trie) -> str:
        alts = [re.escape(ch) + build(sub) for ch, sub in sorted(node.items()) if ch]
        if not alts:
            return ""
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        return f"(?:{body})?" if "" in node else body

    return re.compile(build(trie))
