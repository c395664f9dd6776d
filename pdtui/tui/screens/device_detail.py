"""A device's (or a node's) every parsed value and the raw tool output behind it."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from pdtui.npu.model import DeviceHealth, NodeHealth
from pdtui.npu.report import SYMBOLS
from pdtui.tui.safe import printable


class DeviceDetailScreen(ModalScreen[None]):
    """Every parsed value of a device (or a node) and the raw tool output behind it."""

    BINDINGS: ClassVar[list[Binding]] = [  # type: ignore[assignment]
        Binding("escape,q,enter", "dismiss", "Close"),
    ]

    def __init__(self, node: NodeHealth, dev: DeviceHealth | None) -> None:
        super().__init__(id="detail-screen")
        self.node = node
        self.dev = dev

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="detail-box"):
            yield Static(self._text(), markup=False)

    def _text(self) -> Text:
        n, d = self.node, self.dev
        t = Text()

        def add(text: str, style: str = "") -> None:
            t.append(printable(text), style=style)

        if d is None:
            add(
                f"{n.name}  ({n.soc})  {'reachable' if n.reachable else 'unreachable'}\n",
                style="bold",
            )
            if n.error:
                add(f"error: {n.error}\n")
            for r in n.reasons:
                add(f"  {r}\n")
            add(f"tools: {n.tools}\n")
            raws = n.raw
        else:
            add(f"{n.name} device {d.id}: {SYMBOLS[d.state]} {d.state}\n", style="bold")
            for r in d.reasons:
                add(f"  {r}\n")
            add("\n")
            fields = d.to_dict()
            for key in (
                "link",
                "net_health",
                "lldp_ifname",
                "netdetect",
                "gateway",
                "gateway_iface",
                "ip",
                "netmask",
                "ip_preset",
                "vnic_link",
                "vnic_ip",
                "vnic_netmask",
                "tls_switch",
                "sdid",
                "super_pod_id",
                "server_index",
                "card",
                "chip",
                "phy_id",
                "npu_health",
                "hbm_used_mb",
                "hbm_total_mb",
            ):
                add(f"  {key:<14} {fields.get(key)!s}\n")
            if d.processes:
                procs = ", ".join(f"{p.pid} {p.name}" for p in d.processes)
                add(f"  processes      {procs}\n")
            if d.conf:
                add(f"  hccn.conf      {d.conf}\n")
            raws = d.raw
        for raw in raws.values():
            add(f"\n$ {raw.command}   (rc {raw.rc})\n", style="bold")
            add(raw.stdout or "")
            if raw.stderr:
                add(raw.stderr, style="red")
        t.append("\n\nesc closes")
        return t
