"""F1 / ? help: what the focused view does and every key that works there."""

from __future__ import annotations

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widget import Widget
from textual.widgets import Static

from pdtui.tui.screens.base import MODE_KEYS


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,f1", "dismiss", "Close"),
        Binding("q", "dismiss", "Close", show=False),
    ]

    def __init__(
        self,
        focused: Widget | None,
        screen: Screen[object],
        keys: list[tuple[str, str]],
        generic: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(id="help-screen")
        self.focused_widget = focused
        self.under = screen
        self.keys = keys  # the view's own keys, listed first
        self.generic = generic or []

    def compose(self) -> ComposeResult:
        about = getattr(self.focused_widget, "HELP", "") or getattr(self.under, "HELP", "")
        mode = getattr(self.under, "MODE", "")
        title = next((t for m, t, _f, _n in MODE_KEYS if m == mode), mode or "pdtui")
        lines = [
            f"[b]{title}[/b]",
            "",
            about or "No help for this view.",
            "",
            f"[b]{title} keys[/b]",
        ]
        lines += [f"  {escape(key):<12} {escape(what)}" for key, what in self.keys]
        if self.generic:
            lines += ["", "[b]Everywhere[/b]"]
            lines += [f"  {escape(key):<12} {escape(what)}" for key, what in self.generic]
        lines += ["", "ctrl+p opens the command palette (views, themes, quit); esc closes this"]
        with VerticalScroll(id="help-box"):
            yield Static("\n".join(lines), markup=True)
