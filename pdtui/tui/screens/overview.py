"""The Runbook view: the cluster's nodes and instances, and the bring-up steps as a checklist."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from pdtui.cluster.devices import format_devices
from pdtui.live.steps import clock_text, step_views
from pdtui.runbook import STEP_MARKS, Step, StepState, run_all, steps_for
from pdtui.text import count
from pdtui.tui.messages import HealthUpdated, LiveChanged, NodeStatusChanged
from pdtui.tui.safe import printable
from pdtui.tui.screens.base import ModeScreen
from pdtui.tui.screens.dialogs import ConfirmScreen
from pdtui.tui.widgets.tables import data_table

if TYPE_CHECKING:
    from pdtui.doctor import Finding as DoctorFinding
    from pdtui.live import LiveModel
    from pdtui.live.model import ProcessView, Topic
    from pdtui.npu.health import CheckReport
    from pdtui.ssh import NodeStatus

#: an SSH connection's state (its NodeState value): symbol, theme colour, word
_SSH_SYMBOL = {
    "ready": ("●", "success", "connected"),
    "connecting": ("◌", "warning", "connecting"),
    "failed": ("✗", "error", "failed"),
    "disconnected": ("·", "", "not connected"),
}


def ssh_cell(status: NodeStatus | None, app: object) -> Text:
    """Symbol (the state on its own, for colour-blind users) + word, coloured from the theme;
    ``None`` is a node pdtui has not tried yet."""
    symbol, colour, word = _SSH_SYMBOL[status.state.value if status else "disconnected"]
    theme = getattr(app, "current_theme", None)
    style = getattr(theme, colour, None) or "" if colour else ""
    text = Text(f"{symbol} {word}", style=str(style) if style else "")
    if status is not None and status.error is not None:
        text.append(printable(f": {status.error.message}")[:40], style="dim")
    return text


#: What the Runbook view shows, so what is polled while it is on screen.
_NEEDS: tuple[Topic, ...] = ("nodes", "processes", "runbook", "ranktable", "proxy")
_PROCESS_MARKS = {
    "ready": ("●", "success"),
    "starting": ("◌", "warning"),
    "stopped": ("·", ""),
    "failed": ("✗", "error"),
}
_PROCESS_ORDER = ("failed", "stopped", "starting", "ready")


def process_cell(procs: list[ProcessView], now: float, app: object) -> Text:
    """The state of an instance's processes (the worst first), its stage and age while it
    starts, and "as of" when it is only known from the runbook's last run."""
    if not procs:
        return Text("? not polled yet", style="dim")
    p = min(procs, key=lambda x: _PROCESS_ORDER.index(x.state))
    symbol, colour = _PROCESS_MARKS[p.state]
    theme = getattr(app, "current_theme", None)
    style = str(getattr(theme, colour, "") or "") if colour else ""
    text = Text(f"{symbol} {p.state}", style=style)
    if p.state == "starting":
        age = f" {clock_text(now - p.since)}" if p.since is not None else ""
        text.append(f" ({p.stage or 'starting'}{age})")
    if not p.live:
        text.append(time.strftime(" as of %H:%M:%S", time.localtime(p.at)), style="dim")
    return text


_STEP_COLOURS = {"passed": "success", "warning": "warning", "failed": "error"}


def _network_state(state: StepState, report: CheckReport | None) -> StepState:
    """The network step's state from the last NPU health report (a sweep or a ping run in
    the grid counts too); a running or skipped step keeps its state."""
    if report is None or state not in ("pending", "passed", "warning", "failed"):
        return state
    if report.pings and not all(p.ok for p in report.pings):
        return "failed"
    if report.state == "ok":
        return "passed"
    return "warning" if report.state == "warn" else "failed"


def _backends_line(live: LiveModel) -> str:
    """The proxy and its backends in words: which do not answer, and what to do about it."""
    down = [b for b in live.proxy.backends if not b.ok]
    if not down:
        return "proxy and backends: all answer"
    running = {p.name for p in live.processes.values() if p.state in ("starting", "ready")}
    stopped = [b.name for b in down if b.name not in running]
    said = f"not answering: {', '.join(b.name for b in down)}"
    if len(stopped) == len(down):
        return f"{said} (not running: start them in Launch, F5, or R here)"
    first = next(b for b in down if b.name in running)
    return f"{said}; {first.name} runs but does not answer: {first.detail}"


class OverviewScreen(ModeScreen):
    MODE = "overview"
    BINDINGS: ClassVar[list[Binding]] = [  # type: ignore[assignment]
        Binding("R", "run_all", "Run all", id="runbook-run-all"),
        Binding("c", "containers_up", "Containers up", id="runbook-containers"),
        Binding("d", "doctor", "Doctor", id="runbook-doctor"),
    ]
    steps: list[Step]
    doctor_findings: list[DoctorFinding] | None = None
    running = False
    HELP = (
        "The runbook at a glance: the cluster's nodes and their SSH connection, the instances "
        "and proxy as the cluster file defines them, and the bring-up steps as a live "
        "checklist: the NPU network check with pings, the ranktable (when the connector "
        "reads one), prefill, decode, the proxy, and the verification prompt. R runs them in "
        "order and stops at the first failure, with the reason; enter on a step opens the "
        "view that shows (and fixes) it. With a container table in the cluster file the "
        "first step is Containers: c creates or starts each node's container (never pulls "
        "an image) and checks mounts, devices, tools and vLLM inside."
    )

    def body(self) -> ComposeResult:
        c = self.cluster
        if c is None:
            yield self.no_cluster()
            return
        desc = c.spec.cluster.description
        yield Static(f"[b]{c.name}[/b]  {desc}", id="cluster-title")
        yield Static("Nodes", classes="section")
        yield data_table(
            "nodes",
            # connection second: a narrow terminal (80 columns) cuts the last columns off
            ["node", "connection", "ssh", "data-plane ip", "soc", "npus", "nic", "jump"],
            [
                [
                    n.name,
                    ssh_cell(self.pdtui.node_status.get(n.name), self.app),
                    f"{n.ssh.user + '@' if n.ssh.user else ''}{n.host}"
                    + (f":{n.ssh.port}" if n.ssh.port else ""),
                    n.ip,
                    n.soc,
                    str(n.npus),
                    n.nic or "-",
                    " > ".join(n.ssh.jump) or "-",
                ]
                for n in c.nodes
            ],
            keys=[n.name for n in c.nodes],
        )
        yield Static("Instances", classes="section")
        yield data_table(
            "instances",
            ["instance", "role", "node", "port", "devices", "connector", "state"],
            [
                [
                    i.name,
                    i.role,
                    i.node,
                    str(i.port) if len(i.processes) == 1 else f"{i.port}-{i.processes[-1].port}",
                    format_devices(list(i.devices)),
                    str(i.kv_transfer.get("kv_connector", "-")),
                    Text("? not polled yet", style="dim"),
                ]
                for i in c.instances
            ],
            keys=[i.name for i in c.instances],
        )
        if c.spec.proxy:
            p = c.spec.proxy
            yield Static(
                f"Proxy  {p.host}:{p.port} on {p.node}  "
                f"({count(len(c.backends('prefill')), 'prefiller')}, "
                f"{count(len(c.backends('decode')), 'decoder')})",
                classes="section",
            )
            yield Static(Text("? not polled yet", style="dim"), id="proxy-state")
        yield Static(
            "Runbook  (R runs every step in order; enter opens a step's view)", classes="section"
        )
        self.steps = steps_for(c)
        yield data_table(
            "steps",
            ["", "step", "state", "time", "as of", "reason", "view"],
            [[STEP_MARKS["pending"], st.title, st.state, "", "", "", st.view] for st in self.steps],
            keys=[st.key for st in self.steps],
        )
        yield Static(
            "· pending  ◌ running  ✓ passed  ! warning  ✗ failed  - skipped", classes="legend"
        )

    def on_node_status_changed(self, message: NodeStatusChanged) -> None:
        self._show_status(message.status)

    def on_mount(self) -> None:
        self._release: Callable[[], None] | None = None

        def changed(topics: frozenset[Topic]) -> None:
            self.post_message(LiveChanged(frozenset(topics)))

        self._unsubscribe = self.pdtui.live.subscribe(changed)
        self._ticker = self.set_interval(1.0, self._show_live, pause=True)
        self._focus_steps()

    def _focus_steps(self) -> None:
        if self.query("#steps"):
            steps = self.query_one("#steps", DataTable)
            steps.focus()
            # On a small terminal the checklist sits below the fold: bring it into view.
            self.call_after_refresh(steps.scroll_visible, animate=False)

    def on_cluster_shown(self) -> None:
        self._focus_steps()
        if self.is_current and self._release is None:
            self._release = self.pdtui.need_live(_NEEDS)
        self._show_live()

    def on_unmount(self) -> None:
        self._unsubscribe()

    def on_screen_resume(self) -> None:
        for status in self.pdtui.node_status.values():
            self._show_status(status)
        if self.cluster is not None and self._release is None:
            self._release = self.pdtui.need_live(_NEEDS)
        self._ticker.resume()
        self._show_live()

    def on_screen_suspend(self) -> None:
        """Hidden: nothing is polled for this view, and its clock stops."""
        if self._release is not None:
            self._release()
            self._release = None
        self._ticker.pause()

    def on_live_changed(self, message: LiveChanged) -> None:
        self._show_live()

    def _show_live(self) -> None:
        self._show_steps()
        self._show_instances()
        self._show_proxy()

    def _show_instances(self) -> None:
        tables = self.query("#instances")
        if not tables or self.cluster is None:
            return
        table = tables.first(DataTable)
        live, now = self.pdtui.live, time.time()
        for inst in self.cluster.instances:
            procs = [
                p
                for p in live.processes.values()
                if p.name == inst.name or p.name.startswith(inst.name + ".")
            ]
            table.update_cell(
                inst.name, "state", process_cell(procs, now, self.app), update_width=True
            )

    def _show_proxy(self) -> None:
        lines = self.query("#proxy-state")
        if not lines:
            return
        live = self.pdtui.live
        proc = live.processes.get("proxy")
        text = process_cell([proc] if proc else [], time.time(), self.app)
        if live.proxy.at is not None:
            text.append("  ")
            text.append(printable(_backends_line(live))[:160])
        lines.first(Static).update(text)

    def on_health_updated(self, message: HealthUpdated) -> None:
        self._show_steps()

    def _show_steps(self) -> None:
        """Step states as true now: the live model's (a run, then what the pollers saw
        since), else this view's own (a step run alone, the grid's last check)."""
        tables = self.query("#steps")
        if not tables or self.cluster is None:
            return
        table = tables.first(DataTable)
        net = next((st for st in self.steps if st.key == "network"), None)
        if net is not None:
            net.state = _network_state(net.state, self.pdtui.health)
        views = {v.key: v for v in step_views(self.pdtui.live)}
        variables = self.app.get_css_variables()
        for st in self.steps:
            v = views.get(st.key)
            state, label = (v.state, v.label) if v else (st.state, st.state)
            reason = (v.reason if v else st.reason) or (
                "failed without a recorded reason" if state == "failed" else ""
            )
            as_of = v.as_of if v else None
            style = variables.get(_STEP_COLOURS.get(state, ""), "")
            table.update_cell(st.key, "", Text(STEP_MARKS.get(state, "?"), style=style))
            table.update_cell(st.key, "state", Text(label, style=style), update_width=True)
            table.update_cell(
                st.key,
                "time",
                f"{st.seconds:.1f}s" if st.seconds is not None else "",
                update_width=True,
            )
            table.update_cell(
                st.key,
                "as of",
                time.strftime("%H:%M:%S", time.localtime(as_of)) if as_of else "",
                update_width=True,
            )
            table.update_cell(st.key, "reason", Text(printable(reason)[:90]), update_width=True)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "steps":
            step = next(st for st in self.steps if st.key == event.row_key.value)
            if step.key == "doctor":
                self.show_doctor()
                return
            self.app.switch_mode(step.view)

    def action_doctor(self) -> None:
        if self.cluster is not None and not self.running:
            self.run_doctor()

    @work(group="runbook", exclusive=True, exit_on_error=False, name="doctor")
    async def run_doctor(self) -> None:
        """The doctor's rules over the cluster file and the nodes' live facts, now."""
        from pdtui.doctor import examine
        from pdtui.doctor.facts import collect

        pool, cluster = await self.session()
        step = next((st for st in self.steps if st.key == "doctor"), None)
        if step is None:
            return
        self.running = True
        self._on_step(replace(step, state="running", reason="asking the nodes"))
        try:
            facts = await collect(
                pool,
                cluster,
                npu=False,
                check_nodes=(self.pdtui.health.nodes if self.pdtui.health is not None else None),
            )
        finally:
            self.running = False
        self.doctor_findings = examine(cluster, facts)
        errors = [f for f in self.doctor_findings if f.severity == "error"]
        state: StepState = "failed" if errors else ("warning" if self.doctor_findings else "passed")
        reason = (
            f"{errors[0].id}: {errors[0].where}"
            if errors
            else (count(len(self.doctor_findings), "warning") if self.doctor_findings else None)
        )
        self._on_step(
            replace(
                step, state=state, reason=reason, details=[f.line() for f in self.doctor_findings]
            )
        )
        self.show_doctor()

    def show_doctor(self) -> None:
        """The doctor's findings (of the last run, or of the cluster file alone)."""
        from pdtui.doctor import examine
        from pdtui.tui.screens.doctor import DoctorScreen

        c = self.cluster
        if c is None:
            return
        findings = self.doctor_findings if self.doctor_findings is not None else examine(c)
        title = (
            "Doctor"
            if self.doctor_findings is not None
            else "Doctor (the cluster file only: d asks the nodes too)"
        )

        def go(view: str | None) -> None:
            if view:
                self.app.switch_mode(view)

        self.app.push_screen(DoctorScreen(findings, title), go)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "containers_up":
            c = self.cluster
            return c is not None and any(n.container for n in c.nodes)
        return True

    def action_containers_up(self) -> None:
        if self.cluster is not None and not self.running:
            self.containers_up()

    @work(group="runbook", exclusive=True, exit_on_error=False, name="containers up")
    async def containers_up(self) -> None:
        from pdtui import containers

        pool, cluster = await self.session()
        boxed = [n for n in cluster.nodes if n.container is not None]
        if not await self.app.push_screen_wait(
            ConfirmScreen(
                "Create or start the serving containers?",
                "\n".join(
                    f"{n.name}: {n.container.name} ({n.container.mode})"  # type: ignore[union-attr]
                    for n in boxed
                )
                + "\n\nA managed container that is absent is created, a stopped one started; "
                "a running one is left alone. No image is pulled.",
            )
        ):
            return
        step = next((st for st in self.steps if st.key == "containers"), None)
        if step is None:
            return
        self.running = True
        self._on_step(replace(step, state="running", reason=None))
        try:
            ups, problems = await containers.bring_up(pool, cluster)
        finally:
            self.running = False
        bad = [f"{r.node}: {r.message}" for r in ups if not r.ok] + problems
        self._on_step(
            replace(
                step,
                state="failed" if bad else "passed",
                reason=bad[0] if bad else None,
                details=[f"{r.node}: {r.container} {r.action}" for r in ups] + bad,
            )
        )
        if bad:
            self.notify(f"Containers: {bad[0]}", severity="error", timeout=30)
        else:
            self.notify("Containers: up, and everything needed is inside")

    def action_run_all(self) -> None:
        if self.cluster is not None and not self.running:
            self.run_all()

    @work(group="runbook", exclusive=True, exit_on_error=False, name="run all")
    async def run_all(self) -> None:
        pool, cluster = await self.session()
        if not await self.app.push_screen_wait(
            ConfirmScreen(
                "Run every step of the runbook?",
                "\n".join(f"{i + 1}. {st.title}" for i, st in enumerate(self.steps))
                + "\n\nThis starts prefill, decode and the proxy on their nodes.",
            )
        ):
            return
        self.running = True
        self.steps = steps_for(cluster)
        try:
            # The ranktable the run generates and pushes is the Ranktable view's file too.
            rt_file = (
                cluster.path.resolve().with_name(f"{cluster.path.stem}.ranktable.json")
                if cluster.path is not None and cluster.spec.ranktable
                else None
            )
            report = await run_all(
                pool,
                cluster,
                self.pdtui.verification(),
                on_step=lambda st: self._on_step(st),
                model=self.pdtui.live,
                ranktable_file=rt_file,
            )
        finally:
            self.running = False
        self.steps = report.steps
        self.doctor_findings = (
            report.doctor
            if any(
                st.key == "doctor" and st.state not in ("pending", "skipped") for st in report.steps
            )
            else self.doctor_findings
        )
        self._show_steps()
        if report.check is not None:
            self.pdtui.set_health(report.check)
        failed = report.failed_step
        if failed:
            self.notify(f"{failed.title}: {failed.reason}", severity="error", timeout=30)
        else:
            self.notify(f"runbook passed in {report.seconds:.1f} s")

    def _on_step(self, step: Step) -> None:
        self.steps = [step if st.key == step.key else st for st in self.steps]
        if not self.running or step.key in ("doctor", "containers"):
            live = self.pdtui.live  # a step run on its own is part of the live picture too
            if live.steps.get(step.key) is None or live.steps[step.key].state != step.state:
                live.apply_step(step.key, step.title, step.state, step.reason, step.seconds)
        self._show_steps()

    def _show_status(self, status: NodeStatus) -> None:
        tables = self.query("#nodes")
        if not tables:
            return
        table = tables.first(DataTable)
        if status.name in {str(k.value) for k in table.rows}:
            table.update_cell(
                status.name, "connection", ssh_cell(status, self.app), update_width=True
            )
