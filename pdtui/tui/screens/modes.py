"""One screen per mode. Each renders state from the core; none builds remote commands itself."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from pdtui.cluster import Cluster, format_devices
from pdtui.ssh import CommandRecord, NodeState, NodeStatus
from pdtui.tui.messages import CommandRecorded, HealthUpdated, NodeStatusChanged

if TYPE_CHECKING:
    from pdtui.tui.app import PdTui


class ModeBar(Static):
    """The row of modes with their keys; the active one highlighted."""

    def __init__(self, active: str) -> None:
        super().__init__(id="mode-bar")
        self.active = active

    def on_mount(self) -> None:
        from pdtui.tui.app import MODE_KEYS

        text = Text()
        for mode, title, fkey, num in MODE_KEYS:
            style = "reverse bold" if mode == self.active else ""
            text.append(f" {fkey.upper()}/{num} {title} ", style=style)
            text.append(" ")
        self.update(text)


class ModeScreen(Screen[None]):
    """Common frame: header, mode bar, body, footer."""

    MODE: ClassVar[str] = ""
    HELP: ClassVar[str] = ""

    @property
    def pdtui(self) -> PdTui:
        return self.app  # type: ignore[return-value]

    @property
    def cluster(self) -> Cluster | None:
        return self.pdtui.cluster

    def compose(self) -> ComposeResult:
        yield Header()
        yield ModeBar(self.MODE)
        with VerticalScroll(id="body"):
            yield from self.body()
        yield Footer()

    def body(self) -> ComposeResult:
        yield Static("")

    def no_cluster(self) -> Static:
        return Static(
            "No cluster file is open.\n\n"
            "  pdtui CLUSTER.toml      open a cluster file (see sample_clusters/)\n"
            "  pdtui demo              start a simulated cluster and open it\n"
            "  pdtui validate FILE     check a cluster file",
            classes="placeholder",
        )


def _table(
    id: str, columns: list[str], rows: list[list[str]], keys: list[str] | None = None
) -> DataTable[str | Text]:
    table: DataTable[str | Text] = DataTable(id=id, cursor_type="row", zebra_stripes=True)
    for col in columns:
        table.add_column(col, key=col)
    for i, row in enumerate(rows):
        table.add_row(*row, key=keys[i] if keys else None)
    return table


_SSH_SYMBOL = {
    NodeState.READY: ("●", "success", "connected"),
    NodeState.CONNECTING: ("◌", "warning", "connecting"),
    NodeState.FAILED: ("✗", "error", "failed"),
    NodeState.DISCONNECTED: ("·", "", "not connected"),
}


def ssh_cell(status: NodeStatus, app: object) -> Text:
    """Symbol (the state on its own, for colour-blind users) + word, coloured from the theme."""
    symbol, colour, word = _SSH_SYMBOL[status.state]
    theme = getattr(app, "current_theme", None)
    style = getattr(theme, colour, None) or "" if colour else ""
    text = Text(f"{symbol} {word}", style=str(style) if style else "")
    if status.error is not None:
        text.append(f": {status.error.message}"[:70], style="dim")
    return text


RUNBOOK_STEPS = [
    ("Verify NPU network", "link, net health, lldp, netdetect, gateway, IP of every device",
     "grid"),
    ("Cross-node ping", "every device pings its peers (ping on A2, hccs_ping on A3)", "grid"),
    ("Generate ranktable", "collected centrally over SSH, pushed to every node", "ranktable"),
    ("Launch prefill and decode", "vllm serve on their nodes, detached, logs tailed", "launch"),
    ("Start the proxy", "load_balance_proxy_server_example.py with derived backends", "launch"),
    ("Verify", "a completion through the proxy, with TTFT and tokens/s", "console"),
]


class OverviewScreen(ModeScreen):
    MODE = "overview"
    HELP = (
        "The runbook at a glance: the cluster's nodes, instances and proxy as the cluster file "
        "defines them, and the bring-up steps in order. Each step's state fills in as the "
        "views that own it (NPU grid, Ranktable, Launch, Console) run it."
    )

    def body(self) -> ComposeResult:
        c = self.cluster
        if c is None:
            yield self.no_cluster()
            return
        desc = c.spec.cluster.description
        yield Static(f"[b]{c.name}[/b]  {desc}", id="cluster-title")
        yield Static("Nodes", classes="section")
        yield _table(
            "nodes",
            ["node", "ssh", "data-plane ip", "soc", "npus", "nic", "jump", "connection"],
            [
                [
                    n.name,
                    f"{n.ssh.user + '@' if n.ssh.user else ''}{n.host}"
                    + (f":{n.ssh.port}" if n.ssh.port else ""),
                    n.ip,
                    n.soc,
                    str(n.npus),
                    n.nic or "-",
                    " > ".join(n.ssh.jump) or "-",
                    ssh_cell(self.pdtui.status_of(n.name), self.app),  # type: ignore[list-item]
                ]
                for n in c.nodes
            ],
            keys=[n.name for n in c.nodes],
        )
        yield Static("Instances", classes="section")
        yield _table(
            "instances",
            ["instance", "role", "node", "port", "devices", "connector"],
            [
                [
                    i.name,
                    i.role,
                    i.node,
                    str(i.port) if len(i.processes) == 1 else f"{i.port}-{i.processes[-1].port}",
                    format_devices(list(i.devices)),
                    str(i.kv_transfer.get("kv_connector", "-")),
                ]
                for i in c.instances
            ],
        )
        if c.spec.proxy:
            p = c.spec.proxy
            yield Static(
                f"Proxy  {p.host}:{p.port} on {p.node}  "
                f"({len(c.backends('prefill'))} prefillers, {len(c.backends('decode'))} decoders)",
                classes="section",
            )
        yield Static("Runbook", classes="section")
        yield _table(
            "steps",
            ["", "step", "what pdtui does", "view"],
            [["·", name, what, view] for name, what, view in RUNBOOK_STEPS],
            keys=[f"step{i}" for i in range(len(RUNBOOK_STEPS))],
        )
        yield Static("· not run yet   ✓ passed   ! warning   ✗ failed", classes="legend")

    def on_node_status_changed(self, message: NodeStatusChanged) -> None:
        self._show_status(message.status)

    def on_screen_resume(self) -> None:
        for status in self.pdtui.node_status.values():
            self._show_status(status)
        self._show_steps()

    def on_health_updated(self, message: HealthUpdated) -> None:
        self._show_steps()

    def _show_steps(self) -> None:
        report = self.pdtui.health
        tables = self.query("#steps")
        if report is None or not tables:
            return
        table = tables.first(DataTable)
        marks = {"ok": "✓", "warn": "!", "fail": "✗", "unknown": "?"}
        table.update_cell("step0", "", marks.get(report.state, "?"))
        if report.pings:
            ok = all(p.ok for p in report.pings)
            table.update_cell("step1", "", marks["ok" if ok else "fail"])

    def _show_status(self, status: NodeStatus) -> None:
        tables = self.query("#nodes")
        if not tables:
            return
        table = tables.first(DataTable)
        if status.name in {str(k.value) for k in table.rows}:
            table.update_cell(status.name, "connection", ssh_cell(status, self.app),
                              update_width=True)


class ConsoleScreen(ModeScreen):
    MODE = "console"
    HELP = "Send completions and chat requests through the proxy; see TTFT and tokens/s."

    def body(self) -> ComposeResult:
        c = self.cluster
        if c is None:
            yield self.no_cluster()
            return
        target = (
            f"Proxy: http://{c.spec.proxy.host}:{c.spec.proxy.port}  model "
            f"{c.spec.model.served_name}"
            if c.spec.proxy
            else "This cluster file defines no proxy."
        )
        yield Static(
            f"{target}\n\nNot built yet (issue #7): an OpenAI-compatible prompt console "
            "(completions and chat, streaming) with time to first token and tokens/s.",
            classes="placeholder",
        )


class CommandLogScreen(ModeScreen):
    MODE = "log"
    HELP = (
        "Every remote command pdtui runs: node, command line (secrets redacted), exit status "
        "and duration, newest last."
    )

    def body(self) -> ComposeResult:
        yield _table("command-log", ["time", "node", "rc", "ms", "command"], [])
        yield Static("No remote commands yet.", id="command-log-empty", classes="placeholder")

    def on_mount(self) -> None:
        self._shown = 0
        self._fill()

    def on_screen_resume(self) -> None:
        self._fill()

    def on_command_recorded(self, message: CommandRecorded) -> None:
        self._fill()

    def _fill(self) -> None:
        pool = self.pdtui.pool
        if pool is None:
            return
        records = list(pool.command_log)
        table = self.query_one("#command-log", DataTable)
        if len(records) < self._shown:  # the bounded log dropped old rows
            table.clear()
            self._shown = 0
        for rec in records[self._shown:]:
            table.add_row(*self._row(rec))
        self._shown = len(records)
        self.query_one("#command-log-empty").display = not records
        if records:
            table.move_cursor(row=table.row_count - 1)

    def _row(self, rec: CommandRecord) -> list[str | Text]:
        when = time.strftime("%H:%M:%S", time.localtime(rec.started_at))
        if rec.error is not None:
            rc: str | Text = Text("err", style="bold red")
        elif rec.exit_status == 0:
            rc = "0"
        else:
            rc = Text(str(rec.exit_status), style="bold yellow")
        cmd = " ".join(rec.command.split())
        return [when, rec.node, rc, f"{rec.duration * 1000:.0f}", cmd[:200]]
