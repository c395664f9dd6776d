"""The ``:`` command line (k9s style): an action by name, from any view.

``:check`` sweeps the NPUs, ``:ping`` pings, ``:launch [NAME]`` starts one process or all,
``:stop [NAME]`` stops, ``:run`` runs the runbook, ``:doctor`` asks the doctor, and a view's
name (``:grid``, ``:log`` ...) goes there. Each command is the view's own action, so it asks
the same confirmations as its key does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static


@dataclass(frozen=True)
class Command:
    """A parsed command line: the view to go to, the action there and its argument."""

    mode: str
    action: str | None = None
    arg: str | None = None


#: name -> (view, action on that view, takes a process name)
ACTIONS: dict[str, tuple[str, str, bool]] = {
    "check": ("grid", "refresh_now", False),
    "ping": ("grid", "ping", False),
    "launch": ("launch", "start", True),
    "start": ("launch", "start", True),
    "stop": ("launch", "stop", True),
    "run": ("overview", "run_all", False),
    "doctor": ("overview", "doctor", False),
}
VIEWS = {
    "runbook": "overview",
    "overview": "overview",
    "grid": "grid",
    "npu": "grid",
    "ranktable": "ranktable",
    "rank": "ranktable",
    "launch": "launch",
    "console": "console",
    "log": "log",
    "commands": "log",
}


def parse(line: str) -> Command | str:
    """The command, or why the line is not one (in words, with what is known)."""
    words = line.strip().removeprefix(":").split()
    if not words:
        return "type a command: " + ", ".join(sorted(ACTIONS))
    name, rest = words[0].lower(), words[1:]
    if name in ACTIONS:
        mode, action, takes_name = ACTIONS[name]
        if rest and not takes_name:
            return f":{name} takes no argument"
        if len(rest) > 1:
            return f":{name} takes one process name"
        return Command(mode, action, rest[0] if rest else None)
    if name in VIEWS and not rest:
        return Command(VIEWS[name])
    return (
        f"unknown command {name!r}: try {', '.join(sorted(ACTIONS))}, or a view "
        f"({', '.join(sorted(set(VIEWS) - set(ACTIONS)))})"
    )


class CommandLineScreen(ModalScreen[Command | None]):
    """One line at the bottom; enter runs it, esc closes."""

    BINDINGS: ClassVar[list[Binding]] = [Binding("escape", "cancel", "Cancel")]  # type: ignore[assignment]

    def compose(self) -> ComposeResult:
        with Vertical(id="command-line-box"):
            yield Label(
                ":check  :ping  :launch [NAME]  :stop [NAME]  :run  :doctor  "
                ":grid ...  (enter runs, esc closes)"
            )
            yield Input(placeholder=":", id="command-line")
            yield Static("", id="command-line-error")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        got = parse(event.value)
        if isinstance(got, str):
            self.query_one("#command-line-error", Static).update(got)
            return
        self.dismiss(got)

    def action_cancel(self) -> None:
        self.dismiss(None)
