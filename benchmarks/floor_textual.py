"""The floor under the app's first frame: a Textual app with one line of text, nothing else.

The benchmark times it in the same pseudo-terminal as the app, until ``Runbook`` arrives; no
Textual program paints its first frame sooner, so the app minus this figure is what pdtui's
own screens, styles and start-up cost.

    python benchmarks/floor_textual.py
"""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import Static


class Floor(App[None]):
    BINDINGS = [("ctrl+q", "quit", "Quit")]

    def compose(self) -> ComposeResult:
        yield Static("Runbook")


if __name__ == "__main__":
    Floor().run()
