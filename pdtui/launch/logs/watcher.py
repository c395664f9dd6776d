"""``LogWatcher``: follows one process's log (and its CANN plog) line by line.

It keeps the stages reached, overall and per process prefix (``EngineCore_DP1``,
``Worker_DP0_TP3``, ...), each with its line number and the line's own time stamp; graph
capture's start and finish; every known failure (first line of each, with its number and
the file it came from); the last engine stats. A process that starts again inside the same
log (a wrapper's restart) begins a new timeline: ``stages`` and ``findings`` are the current
one's, ``timelines`` holds them all.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from pdtui.launch.logs.fingerprints import FINGERPRINT_KEYS, GENERIC, Severity, matches
from pdtui.launch.logs.lines import (
    Stamp,
    clean,
    is_noise,
    literal_regex,
    source_of,
    split_glued,
    stamp_of,
)
from pdtui.launch.logs.stages import CAPTURE_START, SHARDS, STAGE_KEYS, STAGE_ORDER, STAGES, START

STATS_KEY = "Avg prompt throughput"
#: A line holding none of these can match no stage, fingerprint or stats pattern (the corpus
#: test checks it): such lines only update the time, which keeps long logs fast.
_KEYS = literal_regex(STAGE_KEYS + FINGERPRINT_KEYS + (STATS_KEY,))
_STATS = re.compile(
    r"Avg prompt throughput: ([\d.]+) tokens/s, Avg generation throughput: ([\d.]+) tokens/s, "
    r"Running: (\d+) reqs, (?:Swapped: \d+ reqs, )?Waiting: (\d+) reqs"
    r"(?:, Deferred: (\d+) reqs)?, (?:GPU )?KV cache usage: ([\d.]+)%"
)


@dataclass
class EngineStats:
    prompt_tps: float
    generation_tps: float
    running: int
    waiting: int
    kv_cache_pct: float


def parse_stats(line: str) -> EngineStats | None:
    m = _STATS.search(line)
    if m is None:
        return None
    return EngineStats(
        float(m.group(1)), float(m.group(2)), int(m.group(3)), int(m.group(4)), float(m.group(6))
    )


@dataclass(frozen=True)
class Mark:
    """Where a stage (or event) was first seen: time, line number, the stamp as written."""

    at: float
    line: int
    stamp: str | None
    source: str = ""


@dataclass
class Finding:
    """A known failure seen in a log: the first matching line, its number and file."""

    key: str
    meaning: str
    hint: str
    line: str
    at: float
    lineno: int = 0
    severity: Severity = "fatal"
    source: str = "log"
    url: str = ""

    @property
    def fatal(self) -> bool:
        return self.severity == "fatal"


@dataclass
class Timeline:
    """One start of the process: stages overall and per process prefix, capture, findings."""

    first_line: int
    stages: dict[str, Mark] = field(default_factory=dict)
    ranks: dict[str, dict[str, Mark]] = field(default_factory=dict)
    capture: dict[str, Mark] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    starts: dict[str, set[str]] = field(default_factory=dict)

    @property
    def stage(self) -> str | None:
        reached = [s for s in STAGE_ORDER if s in self.stages]
        return reached[-1] if reached else None

    def order(self) -> list[tuple[str, Mark]]:
        """Stages in the order they were reached."""
        return sorted(self.stages.items(), key=lambda kv: (kv[1].line, STAGE_ORDER.index(kv[0])))


@dataclass
class LogWatcher:
    """Follows one process's log: stages, fingerprints, engine stats."""

    clock: Callable[[], float]
    source: str = "log"
    started_at: float | None = None
    stages: dict[str, float] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    stats: EngineStats | None = None
    shards: tuple[int, int] | None = None
    stuck_intervals: int = 0
    timelines: list[Timeline] = field(default_factory=lambda: [Timeline(1)])
    stats_seen: int = 0
    _stamp: Stamp | None = None  # the last time stamp seen
    _epoch: tuple[Stamp, float] | None = None  # the last stamp turned into seconds
    _lineno: int = 0
    _t0_stamped: bool = False  # started_at is a line's own time, not the clock's

    def __post_init__(self) -> None:
        self.findings = self.timeline.findings

    @property
    def stage(self) -> str | None:
        reached = [s for s in STAGE_ORDER if s in self.stages]
        return reached[-1] if reached else None

    @property
    def ready(self) -> bool:
        return "ready" in self.stages

    @property
    def timeline(self) -> Timeline:
        return self.timelines[-1]

    @property
    def all_findings(self) -> list[Finding]:
        return [f for t in self.timelines for f in t.findings]

    def feed(self, line: str, lineno: int | None = None, source: str | None = None) -> None:
        """One physical line (``lineno``: its number in the file, else the next one)."""
        self._lineno = lineno if lineno is not None else self._lineno + 1
        text = clean(line)
        if not text.strip() or is_noise(text):
            return
        for record in split_glued(text):
            self._record(record, self._lineno, source or self.source)

    def _record(self, rec: str, lineno: int, source: str) -> None:
        stamp = stamp_of(rec)
        if stamp is not None:
            self._stamp = stamp
        if self.started_at is None or (stamp is not None and not self._t0_stamped):
            # a log whose first lines carry no time starts at its first stamp, not "now"
            self._start_at(self._now(), stamped=stamp is not None)
        if not _KEYS.search(rec):
            return
        proc = source_of(rec)
        mark = Mark(self._now(), lineno, self._stamp.text if self._stamp else None, proc)
        start = START.search(rec)
        if start is not None and self._restarts(proc, start.group(0)):
            self._new_timeline(lineno, mark.at)
        if start is not None:
            self.timeline.starts.setdefault(proc, set()).add(start.group(0))
        for key, _title, pattern in STAGES:
            if pattern.search(rec):
                self._reach(key, mark)
        if CAPTURE_START.search(rec):
            self.timeline.capture.setdefault("started", mark)
        m = SHARDS.search(rec)
        if m:
            self.shards = (int(m.group(2)), int(m.group(3)))
        self._note_fingerprints(rec, mark, source)
        stats = parse_stats(rec)
        if stats is not None:
            self._note_stats(stats, rec, mark.at)

    def _start_at(self, t0: float, stamped: bool) -> None:
        """The start is ``t0``; stages reached before it (lines without a time) are at it."""
        if self.started_at is not None:
            tl = self.timeline
            self.stages = {k: t0 for k in self.stages}
            tl.stages = {k: replace(m, at=t0) for k, m in tl.stages.items()}
            tl.ranks = {
                r: {k: replace(m, at=t0) for k, m in st.items()} for r, st in tl.ranks.items()
            }
        self.started_at = t0
        self._t0_stamped = stamped

    def _now(self) -> float:
        """The time of the last stamp seen (a line without one, uvicorn's, has the time of
        the stamped line before it), or the clock's when none was seen yet."""
        if self._stamp is None:
            return self.clock()
        if self._epoch is not None and self._epoch[0] == self._stamp:
            return self._epoch[1]
        t = self._stamp.epoch(self._epoch[1] if self._epoch else time.time())
        if t is None:
            return self._epoch[1] if self._epoch else self.clock()
        self._epoch = (self._stamp, t)
        return t

    def _restarts(self, proc: str, marker: str) -> bool:
        """A start line after a fatal error, or one this process printed already after it
        loaded its weights, is a new start."""
        tl = self.timeline
        if any(f.fatal for f in tl.findings):
            return True
        reached = tl.ranks.get(proc, {})
        past = any(STAGE_ORDER.index(s) >= STAGE_ORDER.index("weights") for s in reached)
        return past and marker in tl.starts.get(proc, set())

    def _new_timeline(self, lineno: int, at: float) -> None:
        self.timelines.append(Timeline(lineno))
        self.stages = {}
        self.findings = self.timeline.findings
        self.started_at = at
        self._t0_stamped = self._stamp is not None
        self.stuck_intervals = 0

    def _reach(self, key: str, mark: Mark) -> None:
        tl = self.timeline
        tl.ranks.setdefault(mark.source, {}).setdefault(key, mark)
        if key == "graphs":
            tl.capture.setdefault("finished", mark)
        if key not in tl.stages:
            tl.stages[key] = mark
            self.stages.setdefault(key, mark.at)

    def _note_fingerprints(self, rec: str, mark: Mark, source: str) -> None:
        tl = self.timeline
        for fp in matches(rec):
            tl.counts[fp.key] = tl.counts.get(fp.key, 0) + 1
            if tl.counts[fp.key] < fp.min_count or any(f.key == fp.key for f in tl.findings):
                continue
            self._add(
                Finding(
                    fp.key,
                    fp.meaning,
                    fp.hint,
                    rec.strip()[:300],
                    mark.at,
                    mark.line,
                    fp.severity,
                    source,
                    fp.url,
                )
            )

    def _add(self, found: Finding) -> None:
        """A specific cause goes before the generic "it failed" findings."""
        findings = self.timeline.findings
        if found.key in GENERIC:
            findings.append(found)
        else:
            at = next((i for i, f in enumerate(findings) if f.key in GENERIC), len(findings))
            findings.insert(at, found)
        self.findings = findings

    def _note_stats(self, stats: EngineStats, line: str, now: float) -> None:
        """Keeps the last stats; three intervals in a row with requests waiting and nothing
        running or generated add the "stuck" finding."""
        self.stats = stats
        self.stats_seen += 1
        stuck = stats.waiting > 0 and stats.running == 0 and stats.generation_tps == 0
        self.stuck_intervals = self.stuck_intervals + 1 if stuck else 0
        if self.stuck_intervals >= 3 and not any(f.key == "stuck" for f in self.findings):
            self._add(
                Finding(
                    "stuck",
                    "requests wait and nothing runs",
                    "decode is probably waiting for remote KV (WAITING_FOR_REMOTE_KVS): check "
                    "the KV link and the prefiller's log",
                    line.strip()[:300],
                    now,
                    self._lineno,
                    "warning",
                    self.source,
                )
            )

    def elapsed(self, stage: str) -> float | None:
        """Seconds from the first line (of the current timeline) to ``stage``."""
        if stage not in self.stages or self.started_at is None:
            return None
        return self.stages[stage] - self.started_at
