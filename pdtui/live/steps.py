"""The runbook's steps as true now: a run's result, overridden by what the pollers see since.

A step that passed in the run but whose subject changed (decode stopped, a node's ranktable copy
went missing, a device failed) shows the state it has now, with the reason. A step only known
from the run carries ``as_of``, the time of that run. A failure always has a reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pdtui.live.model import LiveModel, ProcessView, StepRecord

#: Symbols of a step's state, the same on every front.
SYMBOLS = {
    "pending": "·",
    "running": "…",
    "passed": "✓",
    "warning": "!",
    "failed": "✗",
    "skipped": "-",
}


@dataclass(frozen=True)
class StepView:
    key: str
    title: str
    state: str  # pending | running | passed | warning | failed | skipped
    label: str  # what the state column says: "passed", "stopped", "loading weights 0:41"
    reason: str | None = None
    as_of: float | None = None  # set when the value is only from the last run

    @property
    def symbol(self) -> str:
        return SYMBOLS.get(self.state, "?")


def clock_text(seconds: float) -> str:
    """Elapsed time as ``m:ss`` (``h:mm:ss`` from an hour)."""
    s = max(0, int(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _from_run(rec: StepRecord, model: LiveModel, now: float) -> StepView:
    if rec.state == "running":
        took = clock_text(now - (rec.started or now))
        label = f"{rec.progress} {took}" if rec.progress else f"running {took}"
        return StepView(rec.key, rec.title, "running", label)
    reason = rec.reason
    if rec.state == "failed" and not reason:
        reason = "failed without a recorded reason; run it again to see why"
    as_of = None if rec.state == "pending" else (model.run_finished or rec.at)
    return StepView(rec.key, rec.title, rec.state, rec.state, reason, as_of)


def _processes(model: LiveModel, role: str, since: float) -> list[ProcessView] | None:
    """The role's processes, when every one of them was polled live after ``since``."""
    found = [p for p in model.processes.values() if p.role == role]
    if not found or not all(p.live and p.at >= since for p in found):
        return None
    return found


def _role_now(rec: StepRecord, model: LiveModel, now: float) -> StepView | None:
    procs = _processes(model, rec.key, rec.at)
    if procs is None:
        return None
    bad = [p for p in procs if p.state in ("failed", "stopped")]
    if bad:
        p = bad[0]
        why = p.reason or ("stopped" if p.state == "stopped" else "failed")
        return StepView(rec.key, rec.title, "failed", p.state, f"{p.name} {p.state}: {why}")
    starting = [p for p in procs if p.state == "starting"]
    if starting:
        p = starting[0]
        age = f" {clock_text(now - p.since)}" if p.since is not None else ""
        return StepView(rec.key, rec.title, "running", f"{p.stage or 'starting'}{age}")
    return StepView(rec.key, rec.title, "passed", "ready")


def _network_now(rec: StepRecord, model: LiveModel, now: float) -> StepView | None:
    samples = [s for s in model.npu.values() if s.live and s.at >= rec.at]
    if not samples or len(samples) < len(model.npu):
        return None
    down = [s.health for s in samples if not s.health.reachable]
    if down:
        return StepView(
            rec.key,
            rec.title,
            "failed",
            "unreachable",
            f"{down[0].name} unreachable: {down[0].error or 'no answer'}",
        )
    bad = [
        (s.health.name, d)
        for s in samples
        for d in s.health.devices
        if d.state in ("fail", "unknown")
    ]
    if bad:
        node, dev = bad[0]
        why = dev.reasons[0] if dev.reasons else dev.state
        return StepView(
            rec.key,
            rec.title,
            "failed",
            "failed",
            f"{len(bad)} not ok now; first {node}:{dev.id}: {why}",
        )
    if rec.state == "failed":
        return None  # the pings that failed are not polled: the run's result stands
    warns = sum(1 for s in samples for d in s.health.devices if d.state == "warn")
    if warns:
        return StepView(
            rec.key,
            rec.title,
            "warning",
            "warning",
            f"{warns} device{'s' if warns != 1 else ''} with warnings",
        )
    return StepView(rec.key, rec.title, "passed", "passed")


def _ranktable_now(rec: StepRecord, model: LiveModel, now: float) -> StepView | None:
    copies = [c for c in model.ranktable.values() if c.live and c.at >= rec.at]
    if not copies or model.generated is None:
        return None
    bad = [c for c in copies if c.state != "same"]
    if bad:
        c = bad[0]
        why = c.error or {
            "missing": "the copy is missing",
            "different": "the copy differs from what the runbook pushed",
        }.get(c.state, c.state)
        return StepView(rec.key, rec.title, "failed", c.state, f"{c.node}: {why}")
    return StepView(rec.key, rec.title, "passed", "same on every node")


_LIVE: dict[str, Callable[[StepRecord, LiveModel, float], StepView | None]] = {
    "network": _network_now,
    "ranktable": _ranktable_now,
    "prefill": _role_now,
    "decode": _role_now,
    "proxy": _role_now,
}


def step_views(model: LiveModel, now: float | None = None) -> list[StepView]:
    """Every step of the last run (in its order) as true now."""
    t = model.clock() if now is None else now
    out = []
    for rec in model.steps.values():
        live = _LIVE.get(rec.key)
        view = None
        if live is not None and rec.state in ("passed", "warning", "failed"):
            view = live(rec, model, t)
        out.append(view if view is not None else _from_run(rec, model, t))
    return out
