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

    def __init__(self, focused: Widget | None, screen: Screen[object]) -> None:
        super().__init__(id="help-screen")
        self.focused_widget = focused
        self.under = screen

    def compose(self) -> ComposeResult:
        about = getattr(self.focused_widget, "HELP", "") or getattr(self.under, "HELP", "")
        title = getattr(self.under, "MODE", "") or "pdtui"
        lines = [f"[b]{title}[/b]", "", about or "No help for this view.", "", "[b]Keys[/b]"]
        seen: set[tuple[str, str]] = set()
        for _node, binding, enabled, _tooltip in self.app.active_bindings.values():
            if not enabled:
                continue
            key = binding.key_display or self.app.get_key_display(binding)
            row = (key, binding.description or binding.action)
            if row not in seen:
                seen.add(row)
                lines.append(f"  {key:<12} {row[1]}")
        lines += ["", "  ctrl+p       command palette (views, theme, quit)", "", "esc closes"]
        with VerticalScroll(id="help-box"):
            yield Static("\n".join(lines), markup=True)
