"""Trust-on-first-use: show an unknown host key's fingerprint and let the operator decide."""

from __future__ import annotations

from typing import Literal

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from pdtui.ssh import HostKeyUnknown

Decision = Literal["once", "save", "refuse"]


class HostKeyScreen(ModalScreen[Decision]):
    """Asks about one unknown host key. Never offered for a changed key."""

    HELP = (
        "pdtui has never seen this node's SSH host key. Compare the fingerprint with the one "
        "your administrator gave you (on the node: ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub) "
        "before trusting it. A key that changed is never offered here: it is refused."
    )
    BINDINGS = [
        Binding("o", "decide('once')", "Trust once"),
        Binding("s", "decide('save')", "Trust and save"),
        Binding("r,escape", "decide('refuse')", "Refuse"),
    ]

    def __init__(self, error: HostKeyUnknown, save_to: str) -> None:
        super().__init__(id="hostkey-screen")
        self.error = error
        self.save_to = save_to

    def compose(self) -> ComposeResult:
        e = self.error
        with Vertical(id="hostkey-box"):
            yield Static(f"[b]Unknown host key for {e.node}[/b]", id="hostkey-title")
            yield Static(
                f"host         {e.host}:{e.port}\n"
                f"algorithm    {e.algorithm}\n"
                f"fingerprint  [b]{e.fingerprint}[/b]\n\n"
                f"Trust and save adds it to {self.save_to}.",
                id="hostkey-details",
            )
            with Horizontal(id="hostkey-buttons"):
                yield Button("Trust once (o)", id="once")
                yield Button("Trust and save (s)", id="save", variant="primary")
                yield Button("Refuse (r)", id="refuse", variant="error")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id)  # type: ignore[arg-type]

    def action_decide(self, decision: Decision) -> None:
        self.dismiss(decision)
