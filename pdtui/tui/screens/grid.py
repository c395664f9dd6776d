"""The NPU grid: one row per node, one cell per device, from the core's health sweep."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Header, Input, Static

from pdtui import containers
from pdtui.cluster import Cluster
from pdtui.npu.classify import classify_cluster
from pdtui.npu.health import CheckReport, check, pings
from pdtui.npu.model import DeviceHealth, NodeHealth, PingResult
from pdtui.npu.report import SYMBOLS
from pdtui.ssh import SshPool
from pdtui.tui.messages import HealthUpdated
from pdtui.tui.safe import printable
from pdtui.tui.screens.base import ModeBar, ModeScreen
from pdtui.tui.screens.device_detail import DeviceDetailScreen
from pdtui.tui.screens.ping_matrix import PingMatrixScreen
from pdtui.tui.widgets.npu_cells import NpuCells, legend

__all__ = ["DeviceDetailScreen", "GridScreen", "PingMatrixScreen"]

#: the summary column's width: a node's counts and age (its errors go to the detail pane)
SUMMARY_WIDTH = 30
#: in a row key, between a node's name and its first device of a wrapped row
WRAP = "\t"


class GridScreen(ModeScreen):
    """Every NPU of every node, coloured and marked by its health."""

    MODE = "grid"
    HELP = (
        "Every NPU of every node from one batched hccn_tool/npu-smi probe per node: link, net "
        "health, lldp, netdetect, gateway, IP, vNIC and TLS, plus npu-smi health, HBM and "
        "processes. Each cell's symbol carries its state on its own (✓ ok, ! warn, ✗ fail, "
        "? unknown: no data is never shown as ok); the colour repeats it. Move over a cell to "
        "see why; enter opens every parsed value and the raw tool output. p pings every "
        "device's peers on the other nodes and shows the matrix. / shows only the nodes "
        "whose name, error or device reasons have a text (esc clears); m switches between "
        "symbols only and symbol plus word; a node's devices wrap onto more rows when the "
        "terminal is narrow."
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "refresh_now", "Refresh", id="grid-refresh"),
        Binding("p", "ping", "Ping peers", id="grid-ping"),
        Binding("f", "toggle_failing", "Failing only", id="grid-failing"),
        Binding("a", "toggle_auto", "Auto-refresh", id="grid-auto"),
        Binding("m", "toggle_compact", "Symbols/words", id="grid-compact"),
        Binding("enter", "details", "Details", id="grid-details", show=False),
        Binding("slash", "filter", "Filter", id="grid-filter", show=False),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]
    #: Seconds each tool call of a sweep or ping run may take before the probe kills it.
    probe_timeout = 20
    #: Seconds between redraws while a sweep's nodes are landing.
    RENDER_DELAY = 0.25

    def __init__(self) -> None:
        super().__init__()
        self.nodes: dict[str, NodeHealth] = {}
        self.ping_results: list[PingResult] = []
        self.failing_only = False
        self.auto = True
        self.interval = 15.0
        self.compact: bool | None = None  # None: chosen by terminal size
        self.busy = False
        self.last_seconds: float | None = None
        self._timer: Timer | None = None  # the one auto-refresh timer
        self._cells: NpuCells | None = None
        self._render_pending: Timer | None = None
        self._node_render_at = 0.0  # when the last node that landed was drawn
        #: each node's serving container, read with every sweep (nodes with a container only)
        self.boxes: dict[str, containers.Status] = {}
        self._swept: dict[str, NodeHealth] = {}  # the last sweep, before pings
        self.pattern = ""  # / : only nodes matching it
        self.answered = 0  # nodes of the running sweep that answered
        self._sweep_started = 0.0  # time.monotonic() when the running sweep started

    @property
    def cells(self) -> NpuCells:
        """Cell styling in the app's theme (made on first use: the app is known by then)."""
        if self._cells is None:
            self._cells = NpuCells(self.app)
        return self._cells

    def compose(self) -> ComposeResult:
        yield Header()
        yield ModeBar(self.MODE)
        yield Static("", id="grid-status")
        yield Input(
            placeholder="filter: node name, error or device reason (enter keeps it, esc clears)",
            id="grid-filter",
        )
        if self.cluster is None:
            with VerticalScroll(id="body"):
                yield self.no_cluster()
        else:
            table: DataTable[Text | str] = DataTable(
                id="grid", cursor_type="cell", zebra_stripes=False
            )
            yield table
            with VerticalScroll(id="grid-detail"):
                yield Static("", id="grid-detail-text")
        yield Footer()

    def on_mount(self) -> None:
        if self.cluster is None:
            return
        self.query_one("#grid-filter", Input).display = False
        self._take_live()  # the runbook's last check (or another view's) at once
        self._build_columns()
        self._render_all()
        self.query_one("#grid", DataTable).focus()
        self.set_interval(1.0, self._tick_ages, name="grid-ages")
        if self.pdtui.connect_on_start:
            self.action_refresh_now()

    def _take_live(self) -> None:
        """Nodes the live model has a newer sample of than this view, and its pings (the
        model drops them when the health under them changed)."""
        live = self.pdtui.live
        for name, sample in live.npu.items():
            mine = self.nodes.get(name)
            if mine is None or sample.at > mine.taken_at:
                self.nodes[name] = sample.health
        self.ping_results = list(live.pings)

    def _tick_ages(self) -> None:
        """The sample age in each node's summary moves on every second (and a running
        sweep's elapsed time)."""
        if self.cluster is None or not self.is_current:
            return
        if self.busy:
            self._render_status()
        table = self.query_one("#grid", DataTable)
        rows = {str(k.value) for k in table.rows}
        for n in self.cluster.nodes:
            if n.name in rows:
                summary = self.cells.summary(self.nodes.get(n.name), self.pdtui.status_of(n.name))
                summary.append_text(self._box_text(n.name))
                table.update_cell(n.name, "summary", summary)

    # -- layout -----------------------------------------------------------------------

    def _is_compact(self) -> bool:
        if self.compact is not None:
            return self.compact
        c = self.cluster
        if c is None:
            return False
        most = max(n.npus for n in c.nodes)
        wide = 14 + 30 + most * 8
        return self.size.width < wide or len(c.nodes) > max(self.size.height - 14, 4)

    def _per_row(self) -> int:
        """Device cells per table row: all of a node's when they fit the terminal's width,
        else the fewest rows (16 devices at 80 columns: two rows of 8)."""
        c = self.cluster
        if c is None:
            return 1
        most = max(n.npus for n in c.nodes)
        cell = (1 if self._is_compact() else 6) + 2
        names = max(len(n.name) for n in c.nodes) + 2
        room = self.size.width - names - SUMMARY_WIDTH - 4 - (22 if self.boxes else 0)
        fit = max(1, room // cell)
        if fit >= most:
            return most
        rows = -(-most // fit)
        return -(-most // rows)

    def _build_columns(self) -> None:
        assert self.cluster is not None
        table = self.query_one("#grid", DataTable)
        table.clear(columns=True)
        table.add_column("node", key="node")
        table.add_column("summary", key="summary")
        compact = self._is_compact()
        for i in range(self._per_row()):
            table.add_column(f"{i}" if compact else f" {i:>2}  ", key=f"d{i}")

    def _render_all(self) -> None:
        if self._render_pending is not None:
            self._render_pending.stop()
            self._render_pending = None
        c = self.cluster
        if c is None:
            return
        table = self.query_one("#grid", DataTable)
        compact = self._is_compact()
        keep = table.cursor_coordinate
        table.clear()
        most = max(n.npus for n in c.nodes)
        per_row = self._per_row()
        for n in c.nodes:
            h = self.nodes.get(n.name)
            if not self._shown(n.name, h):
                continue
            devs = {d.id: d for d in h.devices} if h else {}
            cells = [
                self.cells.cell(devs.get(i), compact=compact, failing_only=self.failing_only)
                if h
                else Text("·", style="dim")
                for i in range(most)
            ]
            summary = self.cells.summary(h, self.pdtui.status_of(n.name))
            summary.append_text(self._box_text(n.name))
            table.add_row(Text(n.name), summary, *cells[:per_row], key=n.name)
            for start in range(per_row, most, per_row):  # the devices that wrap
                table.add_row(
                    Text(f"  {start}-{min(start + per_row, most) - 1}", style="dim"),
                    Text(""),
                    *cells[start : start + per_row],
                    key=f"{n.name}{WRAP}{start}",
                )
        if table.row_count:
            table.cursor_coordinate = table.validate_cursor_coordinate(keep)
        self._render_status()
        self._render_detail()

    def _shown(self, name: str, h: NodeHealth | None) -> bool:
        """Whether a node's row is shown: failing only, and the / filter (its name, its
        error, a device's reasons)."""
        if (
            self.failing_only
            and h is not None
            and h.reachable
            and all(d.state == "ok" for d in h.devices)
        ):
            return False
        p = self.pattern.lower()
        if not p or p in name.lower():
            return True
        if h is None:
            return False
        texts = [
            h.error or "",
            *h.reasons,
            *(f"{name}:{d.id} {d.state} {' '.join(d.reasons)}" for d in h.devices),
        ]
        return any(p in t.lower() for t in texts)

    def _box_text(self, name: str) -> Text:
        """``  container running`` (or ``✗ container exited``); why, and vLLM's version, are
        in the detail pane (:meth:`_box_detail`): a long text would widen the column."""
        st = self.boxes.get(name)
        if st is None:
            return Text("")
        if st.ok:
            return Text(f"  container {st.state}")
        return Text(printable(f"  ✗ container {st.state}")[:24], style=self.cells.style("fail"))

    def _box_detail(self, name: str) -> str:
        st = self.boxes.get(name)
        if st is None:
            return ""
        if st.ok:
            v = st.versions.get("vllm_ascend", "-")
            return f"\n  container {st.state}" + (f", vllm-ascend {v}" if v != "-" else "")
        why = st.error or (f"{len(st.missing)} missing inside" if st.missing else "")
        why = why or ("a tool fails inside" if not all(st.tools.values()) else "")
        return f"\n  ✗ container {st.state}" + (f": {why}" if why else "")

    async def _read_boxes(self, pool: SshPool, cluster: Cluster) -> None:
        boxed = [n for n in cluster.nodes if n.container is not None]
        got = await asyncio.gather(*(containers.status(pool, cluster, n) for n in boxed))
        self.boxes = {s.node: s for s in got}

    def _render_status(self) -> None:
        bits = []
        if self.busy and self.cluster is not None:
            took = time.monotonic() - self._sweep_started
            bits.append(
                f"probing: {self.answered} of {len(self.cluster.nodes)} nodes "
                f"answered, {int(took) // 60}:{int(took) % 60:02d}"
            )
        elif self.last_seconds is not None:
            bits.append(f"last sweep {self.last_seconds:.2f} s")
        else:
            bits.append("no sweep yet")
        bits.append(
            f"auto-refresh every {self.interval:.0f} s" if self.auto else "auto-refresh off"
        )
        if self.failing_only:
            bits.append("showing failing only")
        if self.pattern:
            bits.append(f"filter {self.pattern!r}")
        if self.ping_results:
            bad = sum(1 for p in self.ping_results if not p.ok)
            bits.append(f"pings {len(self.ping_results) - bad}/{len(self.ping_results)} ok")
        self.query_one("#grid-status", Static).update(" · ".join(bits) + "    " + legend())

    def selected(self) -> tuple[NodeHealth | None, DeviceHealth | None]:
        table = self.query_one("#grid", DataTable)
        if not table.row_count:
            return None, None
        row_key, col_key = table.coordinate_to_cell_key(table.cursor_coordinate)
        name, _, start = str(row_key.value).partition(WRAP)
        node = self.nodes.get(name)
        col = str(col_key.value)
        if node is None or not col.startswith("d"):
            return node, None
        return node, node.device(int(start or 0) + int(col[1:]))

    def _render_detail(self) -> None:
        node, dev = self.selected()
        out = self.query_one("#grid-detail-text", Static)
        if node is None:
            out.update("Select a cell. r refreshes now.")
        elif dev is None:
            out.update(
                Text(node.name, style="bold").append(
                    printable(_node_detail(node) + self._box_detail(node.name))
                )
            )
        else:
            out.update(Text(printable(_device_detail(node.name, dev))))

    # -- events -----------------------------------------------------------------------

    def on_data_table_cell_highlighted(self, event: DataTable.CellHighlighted) -> None:
        self._render_detail()

    def on_data_table_cell_selected(self, event: DataTable.CellSelected) -> None:
        self.action_details()

    def on_resize(self) -> None:
        if self.cluster is not None and self.is_mounted:
            self._build_columns()
            self._render_all()

    def on_health_updated(self, message: HealthUpdated) -> None:
        self._take_live()
        self._render_all()

    # -- actions ----------------------------------------------------------------------

    def action_details(self) -> None:
        node, dev = self.selected()
        if node is not None:
            self.app.push_screen(DeviceDetailScreen(node, dev))

    def action_toggle_failing(self) -> None:
        self.failing_only = not self.failing_only
        self._render_all()

    def action_toggle_compact(self) -> None:
        self.compact = not self._is_compact()
        self._build_columns()
        self._render_all()

    def action_filter(self) -> None:
        self.open_filter("grid-filter")

    def action_clear_filter(self) -> None:
        self.close_filter("grid-filter", back_to="grid")

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "grid-filter":
            self.pattern = event.value.strip()
            self._render_all()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "grid-filter":
            self.query_one("#grid", DataTable).focus()

    def action_toggle_auto(self) -> None:
        self.auto = not self.auto
        if not self.busy:  # when busy, the sweep or ping run arms the timer as it ends
            self._arm()
        self._render_status()

    def action_refresh_now(self) -> None:
        if self.busy:
            self.notify("a sweep is already running")
            return
        self._start(self.sweep)

    def action_ping(self) -> None:
        if self.busy:
            self.notify("a sweep is already running")
            return
        self._start(self.ping)

    def _start(self, job: Callable[[], object]) -> None:
        """Mark the grid busy now, not when the worker first runs: a tick or key press in
        between must see it (the workers are exclusive, a second one would cancel the first)."""
        if self.cluster is None:
            return  # nothing to probe; the placeholder says how to open a cluster
        self.busy = True
        self.answered, self._sweep_started = 0, time.monotonic()
        self._render_status()
        job()

    def _arm(self) -> None:
        """(Re)start the one auto-refresh timer, or stop it when auto-refresh is off.

        Called when a sweep or ping run ends, so sweeps never overlap: the next one starts
        ``interval`` seconds after the last one finished.
        """
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        if self.auto:
            self._timer = self.set_timer(self.interval, self._auto_tick, name="grid-auto")

    def _auto_tick(self) -> None:
        self._timer = None
        if self.auto and not self.busy:
            self._start(self.sweep)

    def _on_node(self, node: NodeHealth) -> None:
        """A node's answer landed: show it. The first of a sweep is shown at once; after
        that, nodes land in bursts and the grid is redrawn at most every RENDER_DELAY seconds
        (a redraw rebuilds and repaints every row: once per node kept a CPU busy at 64)."""
        self.nodes[node.name] = node
        self.answered += 1
        if self._render_pending is not None:
            return  # a redraw is already due; it will show this node too
        wait = self._node_render_at + self.RENDER_DELAY - time.monotonic()
        if wait <= 0:
            self._render_landed()
        else:
            self._render_pending = self.set_timer(wait, self._render_landed, name="grid-render")

    def _render_landed(self) -> None:
        self._render_all()
        # From the end of the redraw: a slow redraw must not make every node redraw at once.
        self._node_render_at = time.monotonic()

    def _publish(self, nodes: list[NodeHealth], started_at: float, seconds: float) -> None:
        """Keep ``nodes`` classified with the current pings and tell the other views."""
        assert self.cluster is not None
        classified = classify_cluster(nodes, self.ping_results) if self.ping_results else nodes
        self.nodes = {n.name: n for n in classified}
        self.pdtui.set_health(
            CheckReport(self.cluster.name, classified, self.ping_results, started_at, seconds)
        )

    @work(group="grid-sweep", exclusive=True, exit_on_error=False, name="NPU sweep")
    async def sweep(self) -> None:
        self.busy = True
        self._node_render_at = 0.0  # the first node of this sweep is drawn at once
        self.answered, self._sweep_started = 0, time.monotonic()
        self._render_status()
        try:
            pool, cluster = await self.session()
            report, _ = await asyncio.gather(
                check(pool, cluster, timeout=self.probe_timeout, on_node=self._on_node),
                self._read_boxes(pool, cluster),
            )
            # The last pings' verdicts stay until the next ping run, or until the health
            # under them changes.
            if any(
                _states(self._swept[n.name]) != _states(n)
                for n in report.nodes
                if n.name in self._swept
            ):
                self.ping_results = []
            self._swept = {n.name: n for n in report.nodes}
            self._publish(report.nodes, report.started_at, report.seconds)
            self.last_seconds = report.seconds
        finally:
            self.busy = False
            self._render_all()
            self._arm()

    @work(group="grid-sweep", exclusive=True, exit_on_error=False, name="NPU pings")
    async def ping(self) -> None:
        self.busy = True
        self.answered, self._sweep_started = 0, time.monotonic()
        self._render_status()
        try:
            pool, cluster = await self.session()
            if not self.nodes:
                report = await check(
                    pool, cluster, timeout=self.probe_timeout, on_node=self._on_node
                )
                self.nodes = {n.name: n for n in report.nodes}
            current = [self.nodes[n.name] for n in cluster.nodes if n.name in self.nodes]
            self.ping_results = await pings(pool, cluster, current, timeout=self.probe_timeout)
            self._publish(current, time.time(), 0.0)
        finally:
            self.busy = False
            self._render_all()
            self._arm()  # a tick that fell inside this run was skipped
        self.app.push_screen(PingMatrixScreen([n.name for n in cluster.nodes], self.ping_results))


def _states(node: NodeHealth) -> tuple[object, ...]:
    return (node.reachable, tuple((d.id, d.state) for d in node.devices))


def _node_detail(node: NodeHealth) -> str:
    """The lines under a node's name: reachability, reasons, tools, the devices not ok."""
    lines = [
        f"  {node.soc}  {'reachable' if node.reachable else 'unreachable: ' + (node.error or '')}"
    ]
    lines += [f"  {r}" for r in node.reasons]
    tools = ", ".join(f"{k} {'found' if v else 'MISSING'}" for k, v in node.tools.items())
    if tools:
        lines.append(f"  tools: {tools}")
    bad = [d for d in node.devices if d.state != "ok"]
    lines += [f"  {d.id}: {SYMBOLS[d.state]} {'; '.join(d.reasons)}" for d in bad[:8]]
    return "\n".join(lines)


def _device_detail(node: str, dev: DeviceHealth) -> str:
    """A device's state, reasons and main values, on a few lines."""
    lines = [f"{node}:{dev.id}  {SYMBOLS[dev.state]} {dev.state}"]
    lines += [f"  {r}" for r in dev.reasons] or ["  all checks passed"]
    lines.append(
        f"  link {dev.link or '?'}  health {dev.net_health or '?'}  ip {dev.ip or '-'}"
        f"  vnic {dev.vnic_ip or '-'}  sdid {dev.sdid if dev.sdid is not None else '-'}"
        f"  tls {dev.tls_switch if dev.tls_switch is not None else '?'}"
        f"  lldp {dev.lldp_ifname or '-'}"
    )
    return "\n".join(lines)
