"""One live picture of a deployment: what is true now, and what is known only from a run.

``LiveModel`` holds the nodes and their connection, NPU health with its sample time, every
process's state, stage and pid, each node's copy of the ranktable, the proxy and its backends,
and the runbook's last run. Pollers and the runbook feed it through ``apply_*``; views and the
CLI read it and ``subscribe`` to be told which topics changed. Every value carries ``at`` (when
it was observed) and ``live`` (False: only known from an earlier run, shown "as of" ``at``).
Time comes from the injected ``clock``, so tests drive every transition.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # types only: the model itself loads no SSH, launch or probe code
    from pdtui.launch.control import ProcessStatus, State
    from pdtui.npu.model import NodeHealth, PingResult
    from pdtui.ranktable.sync import NodeCopy, SyncState

Clock = Callable[[], float]
Topic = Literal["nodes", "npu", "processes", "ranktable", "proxy", "runbook"]
TOPICS: tuple[Topic, ...] = ("nodes", "npu", "processes", "ranktable", "proxy", "runbook")
Listener = Callable[[frozenset[Topic]], None]

#: How long a restart may take to show its new run before the truth is shown again.
RESTART_GRACE = 120.0
#: Backoff of a node that did not answer a poll: 1, 2, 4 ... 60 poll intervals' worth of seconds.
BACKOFF_CAP = 60.0


@dataclass(frozen=True)
class NodeLink:
    """A node's SSH connection as the last poll saw it, and when to try it again."""

    name: str
    connected: bool | None = None  # None: not tried yet
    error: str | None = None
    at: float | None = None
    failures: int = 0
    retry_at: float | None = None


@dataclass(frozen=True)
class NpuSample:
    """One node's NPU health and when it was taken (``health.taken_at``)."""

    health: NodeHealth
    live: bool = True

    @property
    def at(self) -> float:
        return self.health.taken_at


@dataclass(frozen=True)
class ProcessView:
    """A process as the views show it: ``stage``, ``pid`` and ``since`` are None unless it runs."""

    name: str
    role: str
    node: str
    state: State
    stage: str | None = None
    pid: int | None = None
    since: float | None = None  # when the run started (the age shown is now - since)
    reason: str | None = None  # why it failed or stopped, in words
    at: float = 0.0
    live: bool = True


@dataclass(frozen=True)
class RanktableCopy:
    """One node's copy: same/different/missing compared with what the runbook pushed."""

    node: str
    state: SyncState
    sha256: str | None = None
    error: str | None = None
    at: float = 0.0
    live: bool = True


@dataclass(frozen=True)
class RanktableRecord:
    """What the runbook generated and pushed: the text's sha256 and when."""

    sha256: str
    generated_at: float
    pushed_to: tuple[str, ...] = ()
    findings: int = 0


@dataclass(frozen=True)
class Backend:
    """One proxy backend (or the proxy itself) asked directly: up, or why not."""

    name: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class ProxyView:
    backends: tuple[Backend, ...] = ()
    at: float | None = None
    live: bool = True


@dataclass(frozen=True)
class StepRecord:
    """A runbook step as its run left it (the view derives the state that is true now)."""

    key: str
    title: str
    state: str
    reason: str | None = None
    seconds: float | None = None
    progress: str | None = None  # the sub-step while it runs ("decode: loading weights")
    started: float | None = None
    at: float = 0.0


@dataclass
class _Expect:
    """A restart in flight: older failures of ``name`` are not shown until ``until``."""

    after: float
    until: float


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _health_key(h: NodeHealth) -> tuple[object, ...]:
    return (h.reachable, h.state, tuple((d.id, d.state) for d in h.devices))


@dataclass
class LiveModel:
    """The observable model; ``apply_*`` methods are its only writers."""

    clock: Clock = time.time
    nodes: dict[str, NodeLink] = field(default_factory=dict)
    npu: dict[str, NpuSample] = field(default_factory=dict)
    pings: list[PingResult] = field(default_factory=list)
    pings_at: float | None = None
    processes: dict[str, ProcessView] = field(default_factory=dict)
    ranktable: dict[str, RanktableCopy] = field(default_factory=dict)
    generated: RanktableRecord | None = None
    proxy: ProxyView = field(default_factory=ProxyView)
    steps: dict[str, StepRecord] = field(default_factory=dict)
    run_started: float | None = None
    run_finished: float | None = None
    _expect: dict[str, _Expect] = field(default_factory=dict)
    _listeners: list[Listener] = field(default_factory=list)

    # ------------------------------------------------------------------ observable

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with the changed topics after every change; returns unsubscribe."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return unsubscribe

    def notify(self, *topics: Topic) -> None:
        changed = frozenset(topics)
        for listener in list(self._listeners):
            listener(changed)

    # ------------------------------------------------------------------ nodes

    def node_due(self, name: str, now: float | None = None) -> bool:
        """False while a node that did not answer is backed off."""
        link = self.nodes.get(name)
        t = self.clock() if now is None else now
        return link is None or link.retry_at is None or t >= link.retry_at

    def apply_reach(self, name: str, error: str | None) -> None:
        """A node answered (``error`` None) or did not; failures back it off 1, 2, 4 ... s."""
        now = self.clock()
        prev = self.nodes.get(name, NodeLink(name))
        if error is None:
            link = NodeLink(name, True, None, now)
        else:
            failures = prev.failures + 1
            delay = min(BACKOFF_CAP, 2.0 ** (failures - 1))
            link = NodeLink(name, False, error, now, failures, now + delay)
        if link != prev:
            self.nodes[name] = link
            self.notify("nodes")

    # ------------------------------------------------------------------ NPU

    def apply_npu(
        self,
        healths: Iterable[NodeHealth],
        *,
        live: bool = True,
        pings: list[PingResult] | None = None,
    ) -> None:
        """New NPU samples; the ping results go when the health under them changed."""
        changed = False
        for h in healths:
            prev = self.npu.get(h.name)
            if prev is not None and prev.at > h.taken_at:
                continue  # an older sample (say, the runbook's) never hides a newer one
            if prev is not None and _health_key(prev.health) != _health_key(h):
                changed = True
            self.npu[h.name] = NpuSample(h, live)
            if live:
                self.apply_reach(h.name, None if h.reachable else (h.error or "no answer"))
        if pings is not None:
            self.pings, self.pings_at = list(pings), self.clock()
        elif changed and self.pings:
            self.pings, self.pings_at = [], None
        self.notify("npu")

    # ------------------------------------------------------------------ processes

    def expect_restart(self, names: Iterable[str]) -> None:
        """A stop-then-start is under way: its stop is not shown as a failure."""
        now = self.clock()
        for name in names:
            self._expect[name] = _Expect(now, now + RESTART_GRACE)
            prev = self.processes.get(name)
            if prev is not None:
                self.processes[name] = replace(
                    prev,
                    state="starting",
                    stage="restarting",
                    pid=None,
                    since=None,
                    reason=None,
                    at=now,
                )
        self.notify("processes")

    def apply_processes(self, polled: Iterable[ProcessStatus], *, live: bool = True) -> None:
        now = self.clock()
        for p in polled:
            view = self._process_view(p, now, live)
            if view is not None:
                self.processes[p.name] = view
        self.notify("processes")

    def _process_view(self, p: ProcessStatus, now: float, live: bool) -> ProcessView | None:
        expect = self._expect.get(p.name)
        if expect is not None and live:
            newer = p.run.started_at is not None and p.run.started_at >= expect.after - 1
            if now < expect.until and not newer:
                return None  # the old run's exit: the restart is still on its way
            del self._expect[p.name]
        view = process_view(p, now, live)
        prev = self.processes.get(p.name)
        if not live and prev is not None and prev.live:
            return None  # a run's snapshot never hides a live poll
        return view

    # ------------------------------------------------------------------ ranktable

    def apply_generated(
        self, text: str, *, findings: int = 0, pushed_to: Iterable[str] = ()
    ) -> None:
        """What the runbook (or the editor) generated and pushed."""
        self.generated = RanktableRecord(sha256(text), self.clock(), tuple(pushed_to), findings)
        self.notify("ranktable")

    def apply_copies(self, copies: Iterable[NodeCopy], *, live: bool = True) -> None:
        """Each node's copy, compared with what was generated (when known)."""
        now = self.clock()
        for c in copies:
            sha = sha256(c.text) if c.text is not None else None
            state = c.state
            if self.generated is not None and sha is not None and state != "unreachable":
                state = "same" if sha == self.generated.sha256 else "different"
            self.ranktable[c.node] = RanktableCopy(c.node, state, sha, c.error, now, live)
        self.notify("ranktable")

    # ------------------------------------------------------------------ proxy

    def apply_proxy(self, backends: Iterable[Backend], *, live: bool = True) -> None:
        self.proxy = ProxyView(tuple(backends), self.clock(), live)
        self.notify("proxy")

    # ------------------------------------------------------------------ runbook

    def apply_run_started(self, steps: Iterable[tuple[str, str]]) -> None:
        """A run begins: every step pending, the previous run's records gone."""
        now = self.clock()
        self.run_started, self.run_finished = now, None
        self.steps = {k: StepRecord(k, t, "pending", at=now) for k, t in steps}
        self.notify("runbook")

    def apply_step(
        self,
        key: str,
        title: str,
        state: str,
        reason: str | None = None,
        seconds: float | None = None,
    ) -> None:
        now = self.clock()
        prev = self.steps.get(key)
        started = now if state == "running" else (prev.started if prev else None)
        self.steps[key] = StepRecord(key, title, state, reason, seconds, None, started, now)
        self.notify("runbook")

    def apply_progress(self, key: str, progress: str) -> None:
        """A running step's sub-step ("decode: loading weights")."""
        prev = self.steps.get(key)
        if prev is not None and prev.state == "running" and prev.progress != progress:
            self.steps[key] = replace(prev, progress=progress)
            self.notify("runbook")

    def apply_run_finished(self) -> None:
        self.run_finished = self.clock()
        self.notify("runbook")

    @property
    def running(self) -> bool:
        return self.run_started is not None and self.run_finished is None


def process_view(p: ProcessStatus, now: float, live: bool = True) -> ProcessView:
    """A polled status as shown: a stopped process has no stage, pid or age."""
    if p.state == "stopped":
        reason = p.run.error or ("exited with status 0" if p.run.state == "exited" else None)
        return ProcessView(p.name, p.role, p.node, "stopped", reason=reason, at=now, live=live)
    reason = None
    if p.state == "failed":
        reason = _failure(p)
    return ProcessView(
        p.name, p.role, p.node, p.state, p.stage, p.pid, p.run.started_at, reason, now, live
    )


def _failure(p: ProcessStatus) -> str:
    if p.findings:
        return f"{p.findings[0].meaning}: {p.findings[0].hint}"
    if p.run.error:
        return p.run.error
    if p.run.exit_status is not None:
        return f"exited with status {p.run.exit_status} at stage {p.stage or 'start'}"
    return f"failed at stage {p.stage or 'start'}"
