"""Edit one ranktable value; the field's rule is checked as you type."""

from __future__ import annotations

import re
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

_IPV4 = re.compile(r"^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$")


def validate_value(field: str, value: str) -> str | None:
    """None when ``value`` fits ``field``, else why not."""
    if field in ("server_id", "device_ip"):
        return None if _IPV4.match(value) else f"{field} must be an IPv4 address"
    if field in ("device_id", "super_pod_id", "super_device_id", "cluster_id"):
        return None if value.isdigit() else f"{field} must be a whole number"
    return None


class EditCellScreen(ModalScreen[str | None]):
    """Edit one value; the field's rule is checked as you type."""

    BINDINGS: ClassVar[list[Binding]] = [Binding("escape", "cancel", "Cancel")]  # type: ignore[assignment]

    def __init__(self, where: str, field: str, value: str) -> None:
        super().__init__(id="edit-screen")
        self.where = where
        self.field = field
        self.value = value

    def compose(self) -> ComposeResult:
        with Vertical(id="edit-box"):
            yield Label(f"[b]{self.where}[/b]")
            yield Input(self.value, id="edit-input")
            yield Static("", id="edit-error")
            yield Static("enter saves · esc cancels", classes="legend")

    def on_input_changed(self, event: Input.Changed) -> None:
        problem = validate_value(self.field, event.value)
        self.query_one("#edit-error", Static).update(problem or "")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        problem = validate_value(self.field, event.value)
        optional = self.field in ("super_pod_id", "super_device_id") and event.value == ""
        if problem and not optional:
            self.query_one("#edit-error", Static).update(problem)
            return
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
