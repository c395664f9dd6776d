"""The frame every mode shares: the mode keys, the mode bar and the mode screen.

Screens see the app through :class:`AppState` (what the core gave the app: the cluster, the
SSH pool, node states, the last NPU health report), so no screen imports the app module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Protocol, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Static
from textual.worker import Worker

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from pdtui.cluster import Cluster, ClusterSource
    from pdtui.live.model import LiveModel, Topic
    from pdtui.npu.health import CheckReport
    from pdtui.runbook import Verification
    from pdtui.ssh import NodeStatus, SshPool

#: (mode id, title, F-key, number key)
MODE_KEYS: list[tuple[str, str, str, str]] = [
    ("overview", "Runbook", "f2", "1"),
    ("grid", "NPU grid", "f3", "2"),
    ("ranktable", "Ranktable", "f4", "3"),
    ("launch", "Launch", "f5", "4"),
    ("console", "Console", "f6", "5"),
    ("log", "Command log", "f7", "6"),
]


#: The mode bar's names when the full ones do not fit.
SHORT_TITLES = {
    "overview": "Runbook",
    "grid": "NPU",
    "ranktable": "Rank",
    "launch": "Launch",
    "console": "Console",
    "log": "Log",
}


class NoSession(Exception):
    """A worker needs the cluster and its SSH pool, and no cluster is open (nothing to do:
    the app does not report it)."""


class AppState(Protocol):
    """What a mode screen reads from (and reports to) the app."""

    cluster: Cluster | None
    #: a cluster file read, validated right after the first frame (then ``cluster``)
    cluster_source: ClusterSource | None
    pool: SshPool | None
    connect_on_start: bool
    node_status: dict[str, NodeStatus]
    health: CheckReport | None
    live: LiveModel

    async def ready_pool(self) -> SshPool | None: ...

    def status_of(self, name: str) -> NodeStatus: ...

    def set_health(self, report: CheckReport) -> None: ...

    def verification(self) -> Verification | None: ...

    def need_live(self, topics: Iterable[Topic]) -> Callable[[], None]: ...

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None: ...


class ModeBar(Static):
    """The row of modes with their keys; the active one highlighted."""

    def __init__(self, active: str) -> None:
        super().__init__(id="mode-bar")
        self.active = active

    def on_mount(self) -> None:
        self._draw()

    def on_resize(self) -> None:
        self._draw()

    def _draw(self) -> None:
        """Every mode, with short names when the full ones do not fit (80 columns)."""
        full = self._text(short=False)
        width = self.size.width or self.app.size.width
        self.update(full if full.cell_len <= width else self._text(short=True))

    def _text(self, *, short: bool) -> Text:
        text = Text()
        for mode, title, fkey, num in MODE_KEYS:
            style = "reverse bold" if mode == self.active else ""
            label = (
                f" {fkey.upper()} {SHORT_TITLES[mode]} "
                if short
                else f" {fkey.upper()}/{num} {title} "
            )
            text.append(label, style=style)
            text.append(" ")
        return text


class ModeScreen(Screen[None]):
    """Common frame: header, mode bar, body, footer."""

    MODE: ClassVar[str] = ""
    HELP: ClassVar[str] = ""
    #: First in every view's footer, so 80 columns never cut it off; priority, so it works
    #: while a text field has focus.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f1", "app.help", "Help", key_display="F1", priority=True, id="help"),
        Binding("j", "vim(1)", "Down", show=False, id="vim-down"),
        Binding("k", "vim(-1)", "Up", show=False, id="vim-up"),
    ]

    @property
    def pdtui(self) -> AppState:
        return cast("AppState", self.app)

    @property
    def cluster(self) -> Cluster | None:
        return self.pdtui.cluster

    async def session(self) -> tuple[SshPool, Cluster]:
        """The SSH pool (once open: it opens right after the first frame) and the cluster a
        worker works on; :class:`NoSession` (which ends the worker quietly) when no cluster
        is open."""
        pool, cluster = await self.pdtui.ready_pool(), self.pdtui.cluster
        if pool is None or cluster is None:
            raise NoSession
        return pool, cluster

    def action_vim(self, step: int) -> None:
        """j/k move the focused table's cursor down/up (a text field takes them as text)."""
        table = self.focused
        if isinstance(table, DataTable):
            if step > 0:
                table.action_cursor_down()
            else:
                table.action_cursor_up()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A screen's worker messages do not bubble: show its failures as the app does."""
        self.pdtui.on_worker_state_changed(event)

    def compose(self) -> ComposeResult:
        yield Header()
        yield ModeBar(self.MODE)
        with VerticalScroll(id="body"):
            yield from self.body()
        yield Footer()

    def body(self) -> ComposeResult:
        yield Static("")

    async def show_cluster(self) -> None:
        """The cluster file was validated after this screen was made: show it (the body
        only; header, mode bar and footer stay)."""
        bodies = self.query("#body")
        if bodies:
            body = bodies.first(VerticalScroll)
            await body.remove_children()
            await body.mount_all(list(self.body()))
        else:  # a view with its own layout
            await self.recompose()
        self.on_cluster_shown()

    def on_cluster_shown(self) -> None:
        """Hook: the view was just composed again with the cluster (focus, polling)."""

    def open_filter(self, box_id: str) -> None:
        """``/``: show the view's filter box and type into it."""
        box = self.query_one(f"#{box_id}", Input)
        box.display = True
        box.focus()

    def close_filter(self, box_id: str, back_to: str) -> None:
        """``esc``: empty and hide the filter box, the focus back on ``back_to``."""
        box = self.query_one(f"#{box_id}", Input)
        box.value = ""
        box.display = False
        self.query_one(f"#{back_to}").focus()

    def no_cluster(self) -> Static:
        source = self.pdtui.cluster_source
        if source is not None:
            return Static(f"Reading {source.source} …", classes="placeholder")
        return Static(
            "No cluster file is open.\n\n"
            "  pdtui CLUSTER.toml      open a cluster file (see sample_clusters/)\n"
            "  pdtui demo              start a simulated cluster and open it\n"
            "  pdtui validate FILE     check a cluster file",
            classes="placeholder",
        )
