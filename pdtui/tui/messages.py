"""Messages from the core's callbacks to the screens."""

from __future__ import annotations

from textual.message import Message

from pdtui.ssh import CommandRecord, NodeStatus


class NodeStatusChanged(Message):
    def __init__(self, status: NodeStatus) -> None:
        super().__init__()
        self.status = status


class CommandRecorded(Message):
    def __init__(self, record: CommandRecord) -> None:
        super().__init__()
        self.record = record
