"""F1 / ? help: what the focused view does and every key that works there."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widget import Widget
from textual.widgets import Static


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape", "dismiss", "Close"),
        Binding("q", "dismiss", "Close", show=False),
    ]

    def __init__(
        self, focused: Widget | None, screen: Screen[object], keys: list[tuple[str, str]]
    ) -> None:
        super().__init__(id="help-screen")
        self.focused_widget = focused
        self.under = screen
        self.keys = keys

    def compose(self) -> ComposeResult:
        about = getattr(self.focused_widget, "HELP", "") or getattr(self.under, "HELP", "")
        title = getattr(self.under, "MODE", "") or "pdtui"
        lines = [f"[b]{title}[/b]", "", about or "No help for this view.", "", "[b]Keys[/b]"]
        lines += [f"  {key:<12} {what}" for key, what in self.keys]
        lines += ["", "ctrl+p opens the command palette (views, themes, quit); esc closes this"]
        with VerticalScroll(id="help-box"):
            yield Static("\n".join(lines), markup=True)
