"""The runbook as a checklist that can run by itself: check, ranktable, launch, verify.

Steps, in the runbook's order: the NPU network check (with pings), the ranktable (generate,
lint, push: only when the connector reads one), prefill, decode, the proxy, and the
verification prompt through the proxy. ``run_all`` runs them in order and stops at the first
failure; every step keeps its state, its elapsed time and, when it fails, the reason and the
view that fixes it. Prefill and decode are started together (an HCCL link needs both sides up
within a minute of each other) and each step waits for its own role; the proxy starts once both
are ready. A running step carries its sub-step (``decode-0: loading weights``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pdtui.files import atomic_write
from pdtui.text import count

if TYPE_CHECKING:  # imported by the step functions when they run: the app's first frame
    # lists the steps (``steps_for``) without loading SSH, launch, ranktable and the probes
    from pdtui.cluster import Cluster
    from pdtui.doctor import Finding as DoctorFinding
    from pdtui.launch.control import ProcessStatus
    from pdtui.live.model import LiveModel
    from pdtui.npu.health import CheckReport
    from pdtui.npu.model import NodeHealth
    from pdtui.ranktable import Finding
    from pdtui.ssh import SshPool

StepState = Literal["pending", "running", "passed", "warning", "failed", "skipped"]
#: A step's state as one symbol (the checklist in the app and ``pdtui verify``'s lines).
STEP_MARKS: dict[str, str] = {
    "pending": "·",
    "running": "◌",
    "passed": "✓",
    "warning": "!",
    "failed": "✗",
    "skipped": "-",
}
VERIFY_PROMPT = "Who are you?"


@dataclass
class Step:
    key: str
    title: str
    view: str  # the app mode that shows (and fixes) this step
    state: StepState = "pending"
    seconds: float | None = None
    reason: str | None = None
    details: list[str] = field(default_factory=list)
    progress: str | None = None  # the sub-step while it runs

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def needs_ranktable(cluster: Cluster) -> bool:
    return cluster.spec.ranktable is not None and any(
        i.kv_transfer.get("kv_connector") == "LLMDataDistCMgrConnector" for i in cluster.instances
    )


@dataclass
class Verification:
    """What the verify steps need from the console: the prompt through the proxy (``send``)
    and the same request straight to one prefill instance, without the PD path (``direct``)."""

    send: Callable[[], Awaitable[dict[str, Any]]]
    direct: Callable[[], Awaitable[dict[str, Any]]] | None = None


@dataclass
class RunbookReport:
    cluster: str
    steps: list[Step]
    started_at: float
    seconds: float = 0.0
    check: CheckReport | None = None
    ranktable_findings: list[Finding] = field(default_factory=list)
    processes: list[ProcessStatus] = field(default_factory=list)
    verification: dict[str, Any] | None = None
    doctor: list[DoctorFinding] = field(default_factory=list)
    direct: dict[str, Any] | None = None
    ranktable_text: str | None = None

    @property
    def passed(self) -> bool:
        return all(s.state in ("passed", "warning", "skipped") for s in self.steps)

    @property
    def failed_step(self) -> Step | None:
        return next((s for s in self.steps if s.state == "failed"), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "passed": self.passed,
            "started_at": self.started_at,
            "seconds": round(self.seconds, 2),
            "steps": [s.to_dict() for s in self.steps],
            "grid": grid_text(self.check) if self.check else None,
            "ranktable_findings": [f.to_dict() for f in self.ranktable_findings],
            "processes": [p.to_dict() for p in self.processes],
            "verification": self.verification,
            "doctor": [f.to_dict() for f in self.doctor],
            "direct": self.direct,
        }


def grid_text(report: CheckReport) -> str:
    from pdtui.npu.report import render

    return render(report, color=False)


async def run_all(
    pool: SshPool,
    cluster: Cluster,
    verification: Verification | None,
    *,
    on_step: Callable[[Step], None] | None = None,
    ready_timeout: float = 1800,
    ranktable_file: Path | None = None,
    model: LiveModel | None = None,
) -> RunbookReport:
    """Run every step in order; stop at the first failure (later steps are skipped).

    ``on_step`` sees every change of a step (its state, then its sub-steps while it runs);
    ``model``, when given, is fed each step and what the steps learn (NPU samples, process
    states, the ranktable pushed), all marked as known from this run."""
    steps = steps_for(cluster)
    report = RunbookReport(cluster.name, steps, time.time())
    feed = _Feed(model, report, on_step)
    run = _Run(pool, cluster, report, verification, ready_timeout, ranktable_file, feed.step)
    t_all = time.monotonic()
    if model is not None:
        model.apply_run_started((s.key, s.title) for s in steps)

    for step in steps:
        t0 = time.monotonic()
        feed.mark(step, "running")
        try:
            state, reason = await _STEPS_BY_KEY[step.key].run(step, run)
        except Exception as exc:  # a step's own failure is a finding, never a crash
            state, reason = "failed", f"{type(exc).__name__}: {exc}"
        step.seconds = time.monotonic() - t0
        feed.mark(step, state, reason)
        if state == "failed":
            for later in steps[steps.index(step) + 1 :]:  # shown as skipped, and why
                feed.mark(later, "skipped", f"not run: {step.title} failed")
            break
    report.seconds = time.monotonic() - t_all
    if model is not None:
        model.apply_run_finished()
    return report


@dataclass(frozen=True)
class _Feed:
    """Tells ``on_step`` and the live model about every change of a step."""

    model: LiveModel | None
    report: RunbookReport
    on_step: Callable[[Step], None] | None

    def mark(self, step: Step, state: StepState, reason: str | None = None) -> None:
        step.state, step.reason, step.progress = state, reason, None
        if self.model is not None and state != "running":
            self._learned(self.model, step)
        self.step(step)

    def step(self, step: Step) -> None:
        if self.model is not None:
            if step.progress is None:
                self.model.apply_step(step.key, step.title, step.state, step.reason, step.seconds)
            else:
                self.model.apply_progress(step.key, step.progress)
        if self.on_step is not None:
            self.on_step(step)

    def _learned(self, model: LiveModel, step: Step) -> None:
        """What a finished step learned, as known from this run."""
        r = self.report
        if step.key == "network" and r.check is not None:
            model.apply_npu(r.check.nodes, live=False, pings=r.check.pings)
        elif step.key == "ranktable" and r.ranktable_text is not None:
            pushed = [
                d.split(":", 1)[0]
                for d in step.details
                if d.endswith((": written", ": up to date"))
            ]
            model.apply_generated(
                r.ranktable_text, findings=len(r.ranktable_findings), pushed_to=pushed
            )
        elif step.key in ("prefill", "decode", "proxy") and r.processes:
            model.apply_processes(r.processes, live=False)


@dataclass(frozen=True)
class _Run:
    """What every step function may use: the connections, the cluster and the shared report."""

    pool: SshPool
    cluster: Cluster
    report: RunbookReport
    verification: Verification | None
    ready_timeout: float
    ranktable_file: Path | None
    changed: Callable[[Step], None]  # a step's sub-step moved on
    launched: set[str] = field(default_factory=set)  # roles started by an earlier step


#: A step's end state and, unless it passed, the reason.
Outcome = tuple[StepState, str | None]


async def _network(step: Step, run: _Run) -> Outcome:
    """NPU health of every node, with pings; any failed, unknown or unreachable device fails."""
    from pdtui.npu.health import check

    total = len(run.cluster.nodes)
    answered: list[str] = []

    def on_node(node: NodeHealth) -> None:
        answered.append(node.name)
        step.progress = f"{len(answered)} of {count(total, 'node')} answered" + (
            "; pinging peers" if len(answered) == total else ""
        )
        run.changed(step)

    step.progress = f"0 of {count(total, 'node')} answered"
    run.changed(step)
    run.report.check = await check(run.pool, run.cluster, ping=True, on_node=on_node)
    nodes = run.report.check.nodes
    bad = [(n.name, d) for n in nodes for d in n.devices if d.state in ("fail", "unknown")]
    down = [n for n in nodes if not n.reachable]
    step.details = [f"{n}:{d.id} {d.state}: {'; '.join(d.reasons)}" for n, d in bad[:20]]
    if down:
        return "failed", f"{down[0].name} unreachable: {down[0].error}"
    if bad:
        n, d = bad[0]
        return "failed", f"{count(len(bad), 'device')} not ok; first {n}:{d.id}: {d.reasons[0]}"
    warns = sum(1 for n in nodes for d in n.devices if d.state == "warn")
    return ("warning", f"{count(warns, 'device')} with warnings") if warns else ("passed", None)


async def _ranktable(step: Step, run: _Run) -> Outcome:
    """Generate from the live addresses, lint, keep a copy if asked, push to every node."""
    from pdtui.ranktable import dumps, generate, lint
    from pdtui.ranktable.sync import push

    assert run.report.check is not None
    live = {n.name: n for n in run.report.check.nodes}
    rt = generate(run.cluster, live)
    run.report.ranktable_findings = lint(rt, run.cluster, live)
    errors = [f for f in run.report.ranktable_findings if f.severity == "error"]
    if errors:
        return "failed", f"{errors[0].location}: {errors[0].message}"
    text = dumps(rt)
    run.report.ranktable_text = text
    if run.ranktable_file is not None:
        run.ranktable_file.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(run.ranktable_file, text)
    results = await push(run.pool, run.cluster, text)
    step.details = [
        f"{r.node}: {'written' if r.changed else 'up to date'}" if r.ok else f"{r.node}: {r.error}"
        for r in results
    ]
    not_pushed = [r for r in results if not r.ok]
    if not_pushed:
        return "failed", f"push to {not_pushed[0].node} failed: {not_pushed[0].error}"
    return "passed", None


def _together(step: Step, run: _Run) -> list[str]:
    """The roles this step starts: prefill brings decode along (HCCL wants both sides up
    within a minute of each other); a role an earlier step started is not started again."""
    roles = [step.key]
    if step.key == "prefill" and any(s.key == "decode" for s in run.report.steps):
        roles.append("decode")
    return [r for r in roles if r not in run.launched]


async def _role(step: Step, run: _Run) -> Outcome:
    """Preflight and launch (prefill together with decode), then wait for this step's role."""
    from pdtui.launch.control import wait_ready

    only = _together(step, run)
    if only:
        problems = await _preflight_errors(run, only)
        if problems:
            step.details = problems
            return "failed", f"preflight: {problems[0]}"
        not_started, reused = await _launch_error(run, only)
        if not_started:
            return "failed", not_started
        run.launched.update(only)
        if reused:
            step.progress = f"reusing the running {', '.join(reused)} (stop it to restart)"
            step.details.append(step.progress)
            run.changed(step)

    def on_poll(current: list[ProcessStatus]) -> None:
        waiting = [p for p in current if p.state != "ready"] or current
        progress = f"{waiting[0].name}: {waiting[0].stage or 'starting'}" if waiting else None
        if progress != step.progress:
            step.progress = progress
            run.changed(step)

    final = await wait_ready(
        run.pool, run.cluster, [step.key], timeout=run.ready_timeout, interval=1.0, on_poll=on_poll
    )
    run.report.processes = [p for p in run.report.processes if p.role != step.key] + final
    step.details += [f"{p.name}: {p.state} ({p.stage or '-'})" for p in final]
    failed = [p for p in final if p.state != "ready"]
    if failed:
        return "failed", f"{failed[0].name}: {_why_not_ready(failed[0])}"
    return "passed", None


async def _preflight_errors(run: _Run, only: list[str]) -> list[str]:
    """Preflight errors, less "already running" (the launch step then keeps what runs)."""
    from pdtui.launch.preflight import preflight

    return [
        str(p)
        for p in await preflight(run.pool, run.cluster, only)
        if p.severity == "error" and "already running" not in p.message
    ]


async def _launch_error(run: _Run, only: list[str]) -> tuple[str | None, list[str]]:
    """Launch; the first process that did not start, unless all of them already run, and
    the processes that already ran (they are kept, not restarted)."""
    from pdtui.launch.control import launch

    started = await launch(run.pool, run.cluster, only)
    not_started = [s for s in started if s.error]
    reused = [s.name for s in not_started if "already running" in (s.error or "")]
    if len(reused) < len(not_started):
        first = next(s for s in not_started if s.name not in reused)
        return f"{first.name}: {first.error}", reused
    return None, reused


def _why_not_ready(p: ProcessStatus) -> str:
    if p.findings:
        return f"{p.findings[0].meaning}: {p.findings[0].hint}"
    return f"{p.state} at stage {p.stage or 'start'}"


#: Decode log findings that explain a request that got no answer.
_STUCK_KEYS = ("waiting-remote-kv", "stuck", "llmdd-link", "mooncake-transfer", "mooncake-connect")


async def _verify(step: Step, run: _Run) -> Outcome:
    """The verification prompt through the proxy; a failure says why decode did not answer."""
    if run.verification is None:
        return "skipped", "no console"
    result = await run.verification.send()
    run.report.verification = result
    if not result.get("error"):
        return "passed", None
    # What the decode side logged while it handled the request explains most failures.
    from pdtui.launch.control import statuses

    run.report.processes = [p for p in run.report.processes if p.role != "decode"] + (
        await statuses(run.pool, run.cluster, ["decode"])
    )
    stuck = [f for p in run.report.processes for f in p.findings if f.key in _STUCK_KEYS]
    hint = f" ({stuck[0].meaning}: {stuck[0].hint})" if stuck else ""
    return "failed", f"{result['error']}{hint}"


async def _doctor(step: Step, run: _Run) -> Outcome:
    """The deployment doctor's rules over the cluster file and the nodes' live facts."""
    from pdtui.doctor import examine
    from pdtui.doctor.facts import collect

    checked = run.report.check.nodes if run.report.check is not None else None
    facts = await collect(run.pool, run.cluster, npu=False, check_nodes=checked)
    run.report.doctor = examine(run.cluster, facts)
    step.details = [f"{f.line()} (fix: {f.fix})" for f in run.report.doctor]
    errors = [f for f in run.report.doctor if f.severity == "error"]
    warnings = [f for f in run.report.doctor if f.severity == "warning"]
    if errors:
        first = errors[0]
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        return "failed", f"{first.id}: {first.where}: {first.message}{more}; fix: {first.fix}"
    if warnings:
        return (
            "warning",
            f"{len(warnings)} warning{'s' if len(warnings) > 1 else ''}: "
            f"{warnings[0].id} ({warnings[0].where})",
        )
    return "passed", None


def _first_difference(a: str, b: str) -> int:
    return next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )


async def _answer(step: Step, run: _Run) -> Outcome:
    """The same request straight to a prefill instance must give the proxy's answer.

    A KV transfer that corrupts data leaves the service up and the answer garbled
    (https://github.com/vllm-project/vllm-ascend/issues/7711); both run at temperature 0.
    """
    proxied = run.report.verification or {}
    if run.verification is None or run.verification.direct is None or not proxied.get("text"):
        return "skipped", "no answer through the proxy to compare"
    direct = await run.verification.direct()
    run.report.direct = direct
    if direct.get("error"):
        return "failed", f"the prefill instance did not answer: {direct['error']}"
    via_pd, alone = str(proxied["text"]).strip(), str(direct.get("text") or "").strip()
    if via_pd == alone:
        return "passed", None
    at = _first_difference(via_pd, alone)
    step.details = [f"through the proxy: {via_pd!r}", f"prefill alone:     {alone!r}"]
    return "failed", (
        f"the answer through the proxy differs from the prefill instance's own "
        f"from character {at} on: the KV transfer may corrupt data"
    )


async def _containers(step: Step, run: _Run) -> Outcome:
    """Each node's serving container: created or started when managed (never pulled), then
    checked from inside (mounts, devices, tools, vLLM, Mooncake when used)."""
    from pdtui.containers import bring_up

    ups, problems = await bring_up(run.pool, run.cluster)
    step.details = [f"{r.node}: {r.container} {r.action}" for r in ups] + problems
    bad = [f"{r.node}: {r.message}" for r in ups if not r.ok] + problems
    return ("failed", bad[0]) if bad else ("passed", None)


def _always(cluster: Cluster) -> bool:
    return True


def _has_containers(cluster: Cluster) -> bool:
    return any(n.container is not None for n in cluster.nodes)


def _has_proxy(cluster: Cluster) -> bool:
    return cluster.spec.proxy is not None


@dataclass(frozen=True)
class _StepKind:
    key: str
    title: str
    view: str  # the app mode that shows (and fixes) this step
    run: Callable[[Step, _Run], Awaitable[Outcome]]
    applies: Callable[[Cluster], bool] = _always


#: The runbook, in its order: each step's key, title, view, function and when it applies.
STEPS: tuple[_StepKind, ...] = (
    _StepKind(
        "containers",
        "Containers up, mounts and devices inside",
        "overview",
        _containers,
        _has_containers,
    ),
    _StepKind("network", "NPU network and pings", "grid", _network),
    _StepKind(
        "ranktable", "Ranktable generated, linted, pushed", "ranktable", _ranktable, needs_ranktable
    ),
    _StepKind("doctor", "Doctor: the field's rules", "overview", _doctor),
    _StepKind("prefill", "Prefill instances ready", "launch", _role),
    _StepKind("decode", "Decode instances ready", "launch", _role),
    _StepKind("proxy", "Proxy ready", "launch", _role, _has_proxy),
    _StepKind("verify", "Verification prompt through the proxy", "console", _verify, _has_proxy),
    _StepKind("answer", "Same answer without the PD path", "console", _answer, _has_proxy),
)
_STEPS_BY_KEY = {kind.key: kind for kind in STEPS}


def steps_for(cluster: Cluster) -> list[Step]:
    return [Step(k.key, k.title, k.view) for k in STEPS if k.applies(cluster)]


def write_report(report: RunbookReport, folder: Path) -> tuple[Path, Path]:
    """``verify.md`` and ``verify.json`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    data = report.to_dict()
    json_path = folder / "verify.json"
    atomic_write(json_path, json.dumps(data, indent=2, default=str) + "\n")
    lines = [
        f"# pdtui verify: {report.cluster}",
        "",
        f"Result: **{'passed' if report.passed else 'FAILED'}** in {report.seconds:.1f} s",
        "",
        "| step | state | time | reason |",
        "|---|---|---|---|",
    ]
    for s in report.steps:
        took = f"{s.seconds:.1f} s" if s.seconds is not None else ""
        lines.append(f"| {s.title} | {s.state} | {took} | {s.reason or ''} |")
    if report.check is not None:
        lines += ["", "## NPU network", "", "```", grid_text(report.check), "```"]
    if report.ranktable_findings:
        lines += ["", "## Ranktable findings", ""]
        lines += [
            f"- {f.severity} {f.location}: {f.message} (fix: {f.fix})"
            for f in report.ranktable_findings
        ]
    if report.processes:
        lines += _processes_section(report.processes)
    if report.doctor:
        lines += ["", "## Doctor", ""]
        lines += [
            f"- {f.severity} `{f.id}` {f.where}: {f.message} (fix: {f.fix}; {f.source})"
            for f in report.doctor
        ]
    if report.verification is not None:
        lines += _verification_section(report.verification)
    if report.direct is not None:
        lines += [
            "",
            "## The same prompt, prefill alone",
            "",
            "```",
            str(report.direct.get("text") or report.direct.get("error")),
            "```",
        ]
    md_path = folder / "verify.md"
    atomic_write(md_path, "\n".join(lines) + "\n")
    return md_path, json_path


def _processes_section(processes: list[ProcessStatus]) -> list[str]:
    lines = ["", "## Processes", "", "| process | node | state | stages |", "|---|---|---|---|"]
    for p in processes:
        stages = ", ".join(f"{k} {v:.1f}s" for k, v in p.stage_seconds.items())
        lines.append(f"| {p.name} | {p.node} | {p.state} | {stages} |")
    return lines


def _verification_section(v: dict[str, Any]) -> list[str]:
    lines = ["", "## Verification", "", f"Prompt: {VERIFY_PROMPT!r}", ""]
    for key in (
        "status",
        "ttft",
        "tokens_per_s",
        "prompt_tokens",
        "completion_tokens",
        "total",
        "error",
    ):
        value = v.get(key)
        if value is not None:
            lines.append(
                f"- {key}: {value:.3f}" if isinstance(value, float) else f"- {key}: {value}"
            )
    if v.get("text"):
        lines += ["", "```", str(v["text"]), "```"]
    return lines


def verification(pool: SshPool, cluster: Cluster, *, timeout: float = 300) -> Verification:
    """The runbook's ``curl``: its completion request through the proxy (over SSH)."""
    from pdtui.console import Request, backend_endpoints, http_client, reach, send

    req = Request(
        "completion",
        VERIFY_PROMPT,
        cluster.spec.model.served_name,
        max_tokens=100,
        temperature=0.0,
        stream=True,
    )

    async def run() -> dict[str, Any]:
        async with reach(pool, cluster) as base, http_client(timeout) as client:
            result = await send(client, base, req)
        return result.to_dict()

    roles = {p.name: p.role for p in cluster.processes()}
    prefill = next((e for e in backend_endpoints(cluster) if roles[e[0]] == "prefill"), None)

    async def direct() -> dict[str, Any]:
        assert prefill is not None
        name, node, host, port = prefill
        async with (
            reach(pool, cluster, host, port, node=node.name) as base,
            http_client(timeout) as client,
        ):
            result = await send(client, base, req)
        return {**result.to_dict(), "process": name}

    return Verification(run, direct if prefill is not None else None)
