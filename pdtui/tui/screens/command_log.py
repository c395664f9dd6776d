"""The Command log view: every remote command pdtui ran, newest last."""

from __future__ import annotations

import time

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import DataTable, Static

from pdtui.ssh import CommandRecord
from pdtui.tui.messages import CommandRecorded
from pdtui.tui.safe import printable
from pdtui.tui.screens.base import ModeScreen
from pdtui.tui.widgets.tables import data_table


class CommandLogScreen(ModeScreen):
    MODE = "log"
    HELP = (
        "Every remote command pdtui runs: node, command line (secrets redacted), exit status "
        "and duration, newest last."
    )

    def body(self) -> ComposeResult:
        yield data_table("command-log", ["time", "node", "rc", "ms", "command"], [])
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
        return [when, rec.node, rc, f"{rec.duration * 1000:.0f}", Text(printable(cmd)[:200])]
