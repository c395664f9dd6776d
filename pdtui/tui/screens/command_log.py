"""The Command log view: every remote command pdtui ran, newest last, following the bottom.

Rows are tracked by each command's sequence number, so the view keeps up after the bounded
log starts dropping its oldest entries; ``/`` filters, enter shows the whole command.
"""

from __future__ import annotations

import collections
import time
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Input, Static

from pdtui.ssh import CommandRecord
from pdtui.tui.messages import CommandRecorded
from pdtui.tui.safe import printable
from pdtui.tui.screens.base import ModeScreen
from pdtui.tui.widgets.tables import data_table


def _rc(rec: CommandRecord) -> str | Text:
    if rec.error is not None:
        return Text("err", style="bold red")
    if rec.exit_status == 0:
        return "0"
    return Text(str(rec.exit_status), style="bold yellow")


def details(rec: CommandRecord) -> str:
    """Everything the log knows about one command, in words."""
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(rec.started_at))
    status = f"error: {rec.error}" if rec.error is not None else f"exit status {rec.exit_status}"
    return printable(
        f"#{rec.seq} on {rec.node} at {when}, took {rec.duration * 1000:.0f} ms, "
        f"{status}\n\n{rec.command}"
    )


class CommandLogScreen(ModeScreen):
    MODE = "log"
    HELP = (
        "Every remote command pdtui runs: node, command line (secrets redacted), exit status "
        "and duration, newest last (the view follows the bottom while the cursor is there). "
        "enter shows the whole command; / filters by node or text."
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        Binding("j", "cursor(1)", "Down", show=False),
        Binding("k", "cursor(-1)", "Up", show=False),
    ]

    def body(self) -> ComposeResult:
        yield Input(
            placeholder="filter: node or text (enter keeps it, esc clears)", id="command-log-filter"
        )
        yield data_table("command-log", ["#", "time", "node", "rc", "ms", "command"], [])
        yield Static("No remote commands yet.", id="command-log-empty", classes="placeholder")

    def on_mount(self) -> None:
        self._shown: collections.deque[int] = collections.deque()
        self._records: dict[int, CommandRecord] = {}
        self._filter = ""
        self.query_one("#command-log-filter", Input).display = False
        self._fill()
        self.query_one("#command-log", DataTable).focus()

    def on_screen_resume(self) -> None:
        self._fill()

    def on_command_recorded(self, message: CommandRecorded) -> None:
        self._fill()

    def _wanted(self, rec: CommandRecord) -> bool:
        f = self._filter.lower()
        return not f or f in rec.node.lower() or f in rec.command.lower()

    def _fill(self) -> None:
        pool = self.pdtui.pool
        if pool is None:
            return
        records = list(pool.command_log)
        table = self.query_one("#command-log", DataTable)
        at_bottom = table.row_count == 0 or table.cursor_row >= table.row_count - 1
        first = records[0].seq if records else 0
        while self._shown and self._shown[0] < first:  # dropped from the bounded log
            seq = self._shown.popleft()
            table.remove_row(str(seq))
            self._records.pop(seq, None)
        last = self._shown[-1] if self._shown else 0
        for rec in records:
            if rec.seq > last and self._wanted(rec):
                table.add_row(*self._row(rec), key=str(rec.seq))
                self._shown.append(rec.seq)
                self._records[rec.seq] = rec
        self.query_one("#command-log-empty").display = not records
        if at_bottom and table.row_count:
            table.move_cursor(row=table.row_count - 1)

    def _row(self, rec: CommandRecord) -> list[str | Text]:
        when = time.strftime("%H:%M:%S", time.localtime(rec.started_at))
        cmd = " ".join(rec.command.split())
        return [
            str(rec.seq),
            when,
            rec.node,
            _rc(rec),
            f"{rec.duration * 1000:.0f}",
            Text(printable(cmd)[:200]),
        ]

    def _refill(self) -> None:
        table = self.query_one("#command-log", DataTable)
        table.clear()
        self._shown.clear()
        self._records.clear()
        self._fill()

    def action_cursor(self, step: int) -> None:
        table = self.query_one("#command-log", DataTable)
        table.move_cursor(row=max(0, table.cursor_row + step))

    def action_filter(self) -> None:
        self.open_filter("command-log-filter")

    def action_clear_filter(self) -> None:
        self.close_filter("command-log-filter", back_to="command-log")

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "command-log-filter":
            self._filter = event.value.strip()
            self._refill()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "command-log-filter":
            self.query_one("#command-log", DataTable).focus()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        from pdtui.tui.screens.dialogs import TextScreen

        rec = self._records.get(int(event.row_key.value or 0))
        if rec is not None:
            self.app.push_screen(TextScreen(f"command #{rec.seq}", details(rec)))
