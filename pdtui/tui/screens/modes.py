"""Where the mode screens were before they got one module each (kept for old imports)."""

from __future__ import annotations

from pdtui.tui.screens.base import ModeBar, ModeScreen
from pdtui.tui.screens.command_log import CommandLogScreen
from pdtui.tui.screens.overview import OverviewScreen

__all__ = ["CommandLogScreen", "ModeBar", "ModeScreen", "OverviewScreen"]
