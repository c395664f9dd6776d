"""How an NPU's health looks in a cell: symbol, word and theme colour; a node's summary.

The symbol carries the state on its own (for colour-blind users); the colour repeats it.
"""

from __future__ import annotations

import time

from rich.text import Text
from textual.app import App

from pdtui.npu.model import DeviceHealth, NodeHealth, worst
from pdtui.npu.report import SYMBOLS
from pdtui.ssh import NodeStatus

#: the theme variable that colours each state
STATE_VAR = {"ok": "success", "warn": "warning", "fail": "error", "unknown": "npu-unknown"}
#: the word after the symbol in a wide cell
WORDS = {"ok": "ok", "warn": "warn", "fail": "FAIL", "unknown": "?"}
STATES = ("ok", "warn", "fail", "unknown")


def age_text(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.0f}h"


def legend() -> str:
    return "  ".join(f"{SYMBOLS[s]} {s}" for s in STATES)


class NpuCells:
    """Renders device cells and node summaries in the app's current theme."""

    def __init__(self, app: App[object]) -> None:
        self.app = app
        self._variables: tuple[str, dict[str, str]] | None = None

    def style(self, state: str) -> str:
        # get_css_variables() regenerates the theme's whole colour system (about 1 ms): once
        # per theme, not once per cell -- a 64-node grid has over 1000 cells.
        theme = self.app.theme
        if self._variables is None or self._variables[0] != theme:
            self._variables = (theme, self.app.get_css_variables())
        colour = self._variables[1].get(STATE_VAR.get(state, "npu-unknown"), "")
        return f"bold {colour}" if state == "fail" else colour

    def cell(self, dev: DeviceHealth | None, *, compact: bool, failing_only: bool) -> Text:
        """One device: symbol (and word unless ``compact``); a dim dot for a hidden ok one."""
        if dev is None:
            return Text("")
        style = self.style(dev.state)
        sym = SYMBOLS.get(dev.state, "?")
        if failing_only and dev.state == "ok":
            return Text("·", style="dim")
        if compact:
            return Text(sym, style=style)
        return Text(f"{sym} {WORDS[dev.state]}", style=style)

    def summary(self, node: NodeHealth | None, status: NodeStatus) -> Text:
        """A node's counts per state and the age of its data, in its worst state's colour."""
        if node is None:
            return Text(f"? no data  ({status.state.value})", style=self.style("unknown"))
        if not node.reachable:  # why is in the detail pane: the column stays narrow
            return Text("? unreachable", style=self.style("unknown"))
        counts = {s: sum(1 for d in node.devices if d.state == s) for s in STATES}
        state = worst(d.state for d in node.devices) if node.devices else "unknown"
        parts = [f"{SYMBOLS[state]} {counts['ok']}/{len(node.devices)} ok"]
        parts += [f"{counts[s]} {'?' if s == 'unknown' else s}" for s in STATES[1:] if counts[s]]
        parts.append(age_text(max(0.0, time.time() - node.taken_at)))
        return Text("  ".join(parts), style=self.style(state))
