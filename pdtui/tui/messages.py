"""Messages from the core's callbacks to the screens."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:
    from pdtui.npu.health import CheckReport
    from pdtui.ssh import CommandRecord, NodeStatus


class NodeStatusChanged(Message):
    def __init__(self, status: NodeStatus) -> None:
        super().__init__()
        self.status = status


class CommandRecorded(Message):
    def __init__(self, record: CommandRecord) -> None:
        super().__init__()
        self.record = record


class HealthUpdated(Message):
    """A new NPU health report (sweep or pings) is on the app."""

    def __init__(self, report: CheckReport) -> None:
        super().__init__()
        self.report = report


class LiveChanged(Message):
    """The live model changed (``topics`` says what)."""

    def __init__(self, topics: frozenset[str]) -> None:
        super().__init__()
        self.topics = topics
