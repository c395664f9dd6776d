"""Launch panes: every process's state and stage, its live log, start/stop with confirmation."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Footer, Header, Input, Static

from pdtui.launch.control import (
    Launchable,
    ProcessStatus,
    launch,
    launchables,
    plog_base,
    read_plogs,
    statuses,
    stop_all,
)
from pdtui.launch.follow import KEEP, LogFeed
from pdtui.launch.logs import STAGE_TITLES
from pdtui.launch.plan import render_script
from pdtui.launch.preflight import preflight
from pdtui.launch.run import run_dir, tail_batches
from pdtui.place import where
from pdtui.tui.safe import plain
from pdtui.tui.screens.base import ModeBar, ModeScreen
from pdtui.tui.screens.dialogs import ConfirmScreen, TextScreen
from pdtui.tui.widgets.filtered_log import FilteredLog

MARKS = {
    "ready": ("✓", "success"),
    "starting": ("◌", "warning"),
    "stopped": ("·", ""),
    "failed": ("✗", "error"),
}


class LaunchScreen(ModeScreen):
    """Prefill, decode and proxy on their nodes: state, stage, log, start and stop."""

    MODE = "launch"
    HELP = (
        "Every process the cluster file defines (data-parallel ranks separately) and the "
        "proxy. Each is started detached on its node (it survives pdtui and a lost "
        "connection) and stopped by TERM to exactly the process group pdtui started. s starts "
        "the selected process, S starts everything, x stops the selected one, R restarts "
        "it, X stops everything (proxy first); v shows the exact script; the log below follows the "
        "selected process live (end follows again after scrolling up; / shows only the lines "
        "with a text, w switches wrapping long lines and scrolling sideways); known fatal errors "
        "are recognised and explained."
    )
    BINDINGS: ClassVar[list[Binding]] = [  # type: ignore[assignment]
        Binding("s", "start_one", "Start", id="launch-start"),
        Binding("S", "start_all", "Start all", id="launch-start-all"),
        Binding("x", "stop_one", "Stop", id="launch-stop"),
        Binding("R", "restart_one", "Restart", id="launch-restart"),
        Binding("X", "stop_all", "Stop all", id="launch-stop-all"),
        Binding("v", "script", "Script", id="launch-script"),
        # hidden from the footer (it is full); the finding line names it when a plog has one
        Binding("P", "plog", "CANN log", id="launch-plog", show=False),
        Binding("r", "refresh_now", "Refresh", id="launch-refresh"),
        Binding("end", "follow", "Follow", id="launch-follow", show=False),
        Binding("slash", "filter", "Filter log", id="launch-filter", show=False),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        Binding("w", "wrap", "Wrap/scroll log", id="launch-wrap", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, ProcessStatus] = {}
        self.items: list[Launchable] = []
        self.tailing: str | None = None
        self.interval = 3.0
        self.busy = ""
        self._feed = LogFeed()  # the followed log's lines until the next tick
        self._finding = ""  # the finding line shown
        self._armed = False  # a status poll is running or scheduled

    def compose(self) -> ComposeResult:
        yield Header()
        yield ModeBar(self.MODE)
        yield Static("", id="launch-status")
        if self.cluster is None:
            with VerticalScroll(id="body"):
                yield self.no_cluster()
        else:
            table: DataTable[str | Text] = DataTable(id="processes", cursor_type="row")
            for col in (
                "process",
                "role",
                "node",
                *self._where_column(),
                "state",
                "stage",
                "pid",
                "url",
                "problem",
            ):
                table.add_column(col, key=col)
            yield table
            yield Static("", id="launch-finding")
            yield Input(
                placeholder="filter the log: only lines with this text (enter keeps "
                "it, esc clears)",
                id="launch-log-filter",
            )
            yield FilteredLog(id="launch-log", max_lines=KEEP, highlight=True, auto_scroll=True)
        yield Footer()

    def on_mount(self) -> None:
        if self.cluster is None:
            return
        self.items = launchables(self.cluster)
        table = self.query_one("#processes", DataTable)
        for item in self.items:
            runs_in = [where(self.cluster.node(item.node))] if self._where_column() else []
            table.add_row(
                item.name, item.role, item.node, *runs_in, "?", "", "", item.url, "", key=item.name
            )
        table.focus()
        self.query_one("#launch-log-filter", Input).display = False
        self.set_interval(0.1, self._flush_log, name="launch-log-flush")

    def _where_column(self) -> tuple[str, ...]:
        """``runs in`` (host or container NAME) when some node has a container."""
        c = self.cluster
        return ("runs in",) if c and any(n.container for n in c.nodes) else ()

    def _flush_log(self) -> None:
        """Batched writes (10 a second, at most what a pane can show: a log growing faster
        skips lines and says how many); follow only when the view is at the bottom."""
        if not len(self._feed):
            return
        skipped, lines = self._feed.take()
        if skipped:
            lines.insert(
                0,
                f"[pdtui] … {skipped} lines skipped (the log grows faster than a "
                f"pane shows; pdtui logs {self.tailing} has them all)",
            )
        log = self.query_one("#launch-log", FilteredLog)
        at_end = log.is_vertical_scroll_end or log.max_scroll_y == 0
        log.add(plain("\n".join(lines)).split("\n"), scroll_end=at_end)

    # -- rendering --------------------------------------------------------------------

    def _style(self, state: str) -> str:
        var = MARKS.get(state, ("?", ""))[1]
        return self.app.get_css_variables().get(var, "") if var else ""

    def _show(self) -> None:
        table = self.query_one("#processes", DataTable)
        for name, st in self.rows.items():
            self._show_row(table, name, st)
        self._show_finding()
        counts = {
            s: sum(1 for r in self.rows.values() if r.state == s)
            for s in ("ready", "starting", "failed", "stopped")
        }
        text = "  ".join(f"{MARKS[s][0]} {n} {s}" for s, n in counts.items() if n)
        self.query_one("#launch-status", Static).update(
            " · ".join(x for x in (self.busy, text or "no status yet") if x)
        )

    def _show_row(self, table: DataTable[str | Text], name: str, st: ProcessStatus) -> None:
        view = self.pdtui.live.processes.get(name)
        state = view.state if view is not None else st.state
        mark = MARKS.get(state, ("?", ""))[0]
        table.update_cell(
            name, "state", Text(f"{mark} {state}", style=self._style(state)), update_width=True
        )
        if view is not None and (state == "stopped" or view.stage == "restarting"):
            # A stopped process has no stage, age or pid; a restart shows itself, not the
            # old run's exit.
            stage_text = "restarting" if view.stage == "restarting" else "-"
            table.update_cell(name, "stage", stage_text, update_width=True)
            table.update_cell(name, "pid", "-", update_width=True)
            table.update_cell(name, "problem", "", update_width=True)
            return
        took = st.stage_seconds.get(st.stage or "")
        stage = STAGE_TITLES.get(st.stage or "", "-")
        table.update_cell(
            name, "stage", Text(f"{stage} {took:.0f}s" if took else stage), update_width=True
        )
        pid = str(st.pid or "-") + (f" (host {st.run.host_pid})" if st.run.host_pid else "")
        table.update_cell(name, "pid", pid, update_width=True)
        problem = (
            st.findings[0].meaning
            if st.findings
            else (f"exit {st.run.exit_status}" if st.run.exit_status not in (None, 0) else "")
        )
        table.update_cell(
            name, "problem", Text(problem, style=self._style("failed")), update_width=True
        )

    def _selected(self) -> Launchable | None:
        table = self.query_one("#processes", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return next((i for i in self.items if i.name == key), None)

    def _show_finding(self) -> None:
        item = self._selected()
        st = self.rows.get(item.name) if item else None
        text = ""
        if st is not None and st.findings:
            f = st.findings[0]
            where = (
                f" ({f.source} line {f.lineno}; P shows the CANN log)"
                if f.source != "out.log"
                else ""
            )
            text = f"✗ {f.meaning}{where}: {plain(f.line)}\n→ {f.hint}"
        if text != self._finding:  # an update lays the screen out again: only on a change
            self._finding = text
            self.query_one("#launch-finding", Static).update(
                Text(text, style=self._style("failed"))
            )

    # -- events -----------------------------------------------------------------------

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        item = self._selected()
        self._show_finding()
        if item is not None and item.name != self.tailing:
            self.tailing = item.name
            log = self.query_one("#launch-log", FilteredLog)
            log.reset()
            self._feed.clear()
            log.border_title = f"{item.name} on {item.node} — end follows"
            self.follow_log(item)

    # -- actions ----------------------------------------------------------------------

    def action_follow(self) -> None:
        self.query_one("#launch-log", FilteredLog).scroll_end(animate=False)

    def action_filter(self) -> None:
        self.open_filter("launch-log-filter")

    def action_clear_filter(self) -> None:
        self.close_filter("launch-log-filter", back_to="processes")

    def action_wrap(self) -> None:
        log = self.query_one("#launch-log", FilteredLog)
        log.toggle_wrap()
        self.notify(
            "long log lines wrap"
            if log.wrap
            else "long log lines scroll sideways (shift+wheel or the arrows)"
        )

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "launch-log-filter":
            self.query_one("#launch-log", FilteredLog).set_filter(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "launch-log-filter":
            self.query_one("#processes", DataTable).focus()

    def action_script(self) -> None:
        item = self._selected()
        if item is not None:
            self.app.push_screen(
                TextScreen(f"{item.name} on {item.node}", render_script(item.env, item.argv))
            )

    def action_plog(self) -> None:
        item = self._selected()
        if item is not None:
            self.show_plog(item)

    def action_refresh_now(self) -> None:
        self.poll()

    def action_start_one(self) -> None:
        item = self._selected()
        if item is not None:
            self.run_launch([item.name])

    def action_restart_one(self) -> None:
        item = self._selected()
        if item is not None:
            self.run_restart(item.name)

    def action_start_all(self) -> None:
        self.run_launch(None)

    def action_stop_one(self) -> None:
        item = self._selected()
        if item is not None:
            self.run_stop([item.name], f"Stop {item.name} on {item.node}?")

    def action_stop_all(self) -> None:
        self.run_stop(None, "Stop every process pdtui started on this cluster?")

    # -- workers ----------------------------------------------------------------------

    @work(group="launch-plog", exclusive=True, exit_on_error=False, name="CANN log")
    async def show_plog(self, item: Launchable) -> None:
        pool, cluster = await self.session()
        files = await read_plogs(pool, cluster, item)
        text = "\n\n".join(f"==> {name} <==\n" + "\n".join(lines) for name, lines in files)
        self.app.push_screen(
            TextScreen(
                f"CANN log of {item.name}",
                plain(text) or f"no CANN log of this run yet (in {plog_base(cluster, item)}/debug)",
            )
        )

    def on_screen_resume(self) -> None:
        if self.cluster is not None and self.pdtui.connect_on_start and not self._armed:
            self.poll()

    @work(group="launch-poll", exclusive=True, exit_on_error=False, name="process status")
    async def poll(self) -> None:
        """Every process's status, every few seconds while the view is shown (a hidden
        view polls nothing; it polls again at once when shown)."""
        pool, cluster = await self.session()
        self._armed = True
        try:
            found = await statuses(pool, cluster)
            self.pdtui.live.apply_processes(s for s in found if s.run.state != "unknown")
            self.rows = {s.name: s for s in found}
            self._show()
        finally:
            if self.is_current:
                self.set_timer(self.interval, self.poll, name="launch-poll")
            else:
                self._armed = False

    @contextlib.contextmanager
    def _busy(self, label: str) -> Iterator[None]:
        """Show ``label`` as what the screen is doing while the block runs."""
        self.busy = label
        self._show()
        try:
            yield
        finally:
            self.busy = ""
            self._show()

    @work(group="launch-action", exclusive=True, exit_on_error=False, name="launch")
    async def run_launch(self, only: list[str] | None) -> None:
        pool, cluster = await self.session()
        with self._busy("preflight…"):
            problems = await preflight(pool, cluster, only)
        errors = [p for p in problems if p.severity == "error"]
        for p in problems:
            if p.severity == "warning":
                self.notify(str(p), severity="warning", timeout=15)
        if errors and not await self.app.push_screen_wait(
            ConfirmScreen(
                f"Preflight found {len(errors)} problem(s). Start anyway?",
                "\n".join(str(p) for p in errors),
            )
        ):
            return
        with self._busy("starting…"):
            started = await launch(pool, cluster, only)
        bad = [s for s in started if s.error]
        for s in bad:
            self.notify(f"{s.name} on {s.node}: {s.error}", severity="error", timeout=15)
        if not bad:
            self.notify(f"started {', '.join(s.name for s in started)}")
        self.poll()

    @work(group="launch-action", exclusive=True, exit_on_error=False, name="stop")
    async def run_stop(self, only: list[str] | None, question: str) -> None:
        pool, cluster = await self.session()
        names = ", ".join(i.name for i in launchables(cluster, only))
        if not await self.app.push_screen_wait(ConfirmScreen(question, names)):
            return
        with self._busy("stopping…"):
            results = await stop_all(pool, cluster, only)
        self.notify("; ".join(f"{k}: {v}" for k, v in results.items()))
        self.poll()

    @work(group="launch-action", exclusive=True, exit_on_error=False, name="restart")
    async def run_restart(self, name: str) -> None:
        pool, cluster = await self.session()
        if not await self.app.push_screen_wait(
            ConfirmScreen(f"Restart {name}?", "stop (TERM, then KILL), start")
        ):
            return
        self.pdtui.live.expect_restart([name])
        with self._busy(f"restarting {name}…"):
            stopped = await stop_all(pool, cluster, [name])
            started = await launch(pool, cluster, [name])
        bad = [s for s in started if s.error]
        self.notify(
            f"{name}: {stopped.get(name, '?')}, then "
            + (f"not started: {bad[0].error}" if bad else "started"),
            severity="error" if bad else "information",
        )
        self.poll()

    @work(group="launch-tail", exclusive=True, exit_on_error=False, name="log tail")
    async def follow_log(self, item: Launchable) -> None:
        pool, cluster = await self.session()
        node = cluster.node(item.node)
        path = run_dir(node, cluster.name, item.name) + "/out.log"
        offset: int | None = None
        while True:
            try:
                if offset is None:
                    stream = tail_batches(pool, node, path, start_lines=200)
                else:  # resume exactly where the last stream stopped
                    stream = tail_batches(pool, node, path, offset)
                async for batch in stream:
                    offset = batch.offset
                    self._feed.push(batch.lines)
            except Exception as exc:
                self._feed.push([f"[pdtui] log stream lost: {exc}; reconnecting…"])
            await asyncio.sleep(2.0)
