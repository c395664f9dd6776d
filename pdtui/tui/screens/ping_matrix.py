"""The ping matrix: which node's NPUs answered which, and the failing pairs."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from pdtui.npu.model import PingResult
from pdtui.npu.report import SYMBOLS


class PingMatrixScreen(ModalScreen[None]):
    """Source node x destination node, answered/sent, with the failing pairs listed."""

    BINDINGS: ClassVar[list[Binding]] = [  # type: ignore[assignment]
        Binding("escape,q,enter", "dismiss", "Close"),
    ]

    def __init__(self, names: list[str], results: list[PingResult]) -> None:
        super().__init__(id="ping-screen")
        self.names = names
        self.results = results

    def compose(self) -> ComposeResult:
        table: DataTable[str] = DataTable(id="ping-matrix", cursor_type="none")
        table.add_column("from \\ to")
        for n in self.names:
            table.add_column(n)
        for src in self.names:
            table.add_row(src, *(self._cell(src, dst) for dst in self.names))
        bad = [p for p in self.results if not p.ok]
        lines = [f"{len(self.results)} pings, {len(bad)} failed"]
        lines += [
            f"  {p.src_node}:{p.src_dev} → {p.dst_node}:{p.dst_dev} {p.address}: "
            f"{p.reason or 'failed'}"
            for p in bad[:50]
        ]
        lines.append("esc closes")
        with VerticalScroll(id="ping-box"):
            yield Static("Pings between nodes (answered/sent, mean latency)", classes="section")
            yield table
            yield Static("\n".join(lines), markup=False)

    def _cell(self, src: str, dst: str) -> str:
        """``✓ answered/sent mean`` of the pings from ``src`` to ``dst``; ``-`` for none."""
        mine = [p for p in self.results if p.src_node == src and p.dst_node == dst]
        if src == dst or not mine:
            return "-"
        good = sum(1 for p in mine if p.ok)
        avg = [p.avg_ms for p in mine if p.avg_ms is not None]
        mean = f" {sum(avg) / len(avg):.3f} ms" if avg else ""
        mark = SYMBOLS["ok"] if good == len(mine) else SYMBOLS["fail"]
        return f"{mark} {good}/{len(mine)}{mean}"
