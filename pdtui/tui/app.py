"""The pdtui App: one mode per area of the runbook, switched with F2-F7 or 1-6."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import signal
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, cast

from rich.console import RenderableType
from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.theme import Theme
from textual.widget import AwaitMount
from textual.worker import Worker, WorkerState

from pdtui.live.model import LiveModel, Topic
from pdtui.live.poll import Scheduler
from pdtui.settings import Settings, load_settings, save_settings
from pdtui.themes import HEALTH_VARIABLES, ThemeSpec, load_themes
from pdtui.tui.messages import CommandRecorded, HealthUpdated, NodeStatusChanged
from pdtui.tui.safe import printable
from pdtui.tui.screens.base import MODE_KEYS, ModeScreen, NoSession
from pdtui.tui.screens.overview import OverviewScreen

if TYPE_CHECKING:
    from pdtui.cluster import Cluster, ClusterSource
    from pdtui.npu.health import CheckReport
    from pdtui.runbook import Verification
    from pdtui.ssh import CommandRecord, HostKeyUnknown, NodeStatus, SshPool

__all__ = ["MODE_KEYS", "PdTui", "to_textual_theme"]


def _lazy(module: str, name: str) -> Callable[[], Screen[None]]:
    """A mode's screen whose module is imported when the mode is first shown: the first
    frame (the Runbook view) does not wait for the other views' imports (httpx, ...)."""

    def make() -> Screen[None]:
        screen_class = getattr(importlib.import_module(f"pdtui.tui.screens.{module}"), name)
        return cast("Screen[None]", screen_class())

    return make


def _screen_class(mode: str) -> type[Screen[None]]:
    """A mode's screen class (its module imported now, for the palette's list of actions)."""
    made = PdTui.MODES[mode]
    if isinstance(made, type):
        return made
    name = {
        "overview": "OverviewScreen",
        "grid": "GridScreen",
        "ranktable": "RanktableScreen",
        "launch": "LaunchScreen",
        "console": "ConsoleScreen",
        "log": "CommandLogScreen",
    }[mode]
    module = {"log": "command_log"}.get(mode, mode)
    cls = getattr(importlib.import_module(f"pdtui.tui.screens.{module}"), name)
    return cast("type[Screen[None]]", cls)


def screenshot_dir() -> Path:
    """Where F8 saves: ``$PDTUI_SCREENSHOT_DIR``, else ``$XDG_DATA_HOME/pdtui/screenshots``
    (``~/.local/share/pdtui/screenshots``)."""
    if os.environ.get("PDTUI_SCREENSHOT_DIR"):
        return Path(os.environ["PDTUI_SCREENSHOT_DIR"]).expanduser()
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "pdtui" / "screenshots"


def to_textual_theme(spec: ThemeSpec) -> Theme:
    return Theme(
        name=spec.name,
        primary=spec.primary,
        secondary=spec.secondary,
        accent=spec.accent,
        warning=spec.warning,
        error=spec.error,
        success=spec.success,
        foreground=spec.foreground,
        background=spec.background,
        surface=spec.surface,
        panel=spec.panel,
        boost=spec.boost,
        dark=spec.dark,
        variables={**HEALTH_VARIABLES, **spec.variables},
    )


def toast_topic(title: str, message: str) -> str:
    """What a toast is about: its title, else its text up to the first colon."""
    return title or message.split(":", 1)[0]


class PdTui(App[None]):
    """Terminal control panel for PD-disaggregated vLLM-Ascend."""

    TITLE = "pdtui"
    CSS_PATH = "pdtui.tcss"
    MODES: ClassVar[dict[str, str | Callable[[], Screen[None]]]] = {
        "overview": OverviewScreen,
        "grid": _lazy("grid", "GridScreen"),
        "ranktable": _lazy("ranktable", "RanktableScreen"),
        "launch": _lazy("launch", "LaunchScreen"),
        "console": _lazy("console", "ConsoleScreen"),
        "log": _lazy("command_log", "CommandLogScreen"),
    }
    BINDINGS: ClassVar[list[BindingType]] = [
        *[
            Binding(
                fkey,
                f"switch_mode('{mode}')",
                title,
                key_display=f"{fkey.upper()}",
                priority=True,
                id=f"mode-{mode}",
                show=False,
            )
            for mode, title, fkey, _num in MODE_KEYS
        ],
        *[
            Binding(num, f"switch_mode('{mode}')", title, show=False, id=f"mode-{mode}-num")
            for mode, title, _f, num in MODE_KEYS
        ],
        Binding("f8", "save_svg", "Screenshot (SVG)", priority=True, show=False, id="screenshot"),
        Binding("question_mark", "help", "Help", show=False, id="help-q"),
        Binding("colon", "command_line", "Command", show=False, id="command-line"),
        Binding("ctrl+q", "quit", "Quit", priority=True, id="quit"),
        Binding("q", "quit", "Quit", show=False, id="quit-q"),
    ]

    def __init__(
        self,
        cluster: Cluster | None = None,
        *,
        settings: Settings | None = None,
        persist_settings: bool = True,
        connect: bool = True,
        notes: list[str] | None = None,
        source: ClusterSource | None = None,
    ) -> None:
        self.cluster = cluster
        #: a cluster file read but not yet validated: validated right after the first frame
        self.cluster_source = source if cluster is None else None
        #: why ``cluster_source`` could not be used (the app then ends with exit code 2)
        self.load_problems: list[str] = []
        self.connect_on_start = connect
        self.pool: SshPool | None = None
        self._pool_open = asyncio.Event()
        #: start-up steps that wait for the next frame on the terminal (``_display``)
        self._after_display: list[Callable[[], object]] = []
        #: a view asked for while the cluster file was being validated: shown after it
        self._mode_after_load: str | None = None
        self.node_status: dict[str, NodeStatus] = {}
        self.health: CheckReport | None = None
        self.live = LiveModel()  # one live picture every view renders from
        self._scheduler: Scheduler | None = None
        self._asked: set[tuple[str, int, str]] = set()
        self.persist_settings = persist_settings
        self.startup_warnings: list[str] = []
        self.notes = notes or []
        self._signals: list[signal.Signals] = []
        if settings is None:
            settings, warning = load_settings()
            if warning:
                self.startup_warnings.append(warning)
        self.settings = settings
        super().__init__()
        specs, problems = load_themes()
        self.startup_warnings.extend(problems)
        for spec in specs:
            self.register_theme(to_textual_theme(spec))
        if cluster is not None:
            self.sub_title = cluster.name
        elif source is not None:
            self.sub_title = f"reading {source.source}"
        wanted = settings.theme
        self.theme = wanted if wanted in self.available_themes else "textual-dark"

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """Toasts do not stack up: one per topic (its title, else its text up to the first
        colon) replaces the previous of the same topic."""
        topic = toast_topic(title, message)
        old = [n for n in self._notifications if toast_topic(n.title, n.message) == topic]
        for n in old:
            self._unnotify(n, refresh=False)
        if old:
            self._refresh_notifications()
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(HEALTH_VARIABLES)

    async def on_mount(self) -> None:
        self._catch_hangup()
        self.switch_mode("overview")
        for warning in self.startup_warnings:
            self.notify(warning, severity="warning", timeout=10)
        for note in self.notes:
            self.notify(note, timeout=8)

    def on_ready(self) -> None:
        """The first layout is done: once it is on the terminal, validate the cluster file,
        show it, and then open the SSH pool (pydantic and the SSH library are a large share of
        start-up) and connect."""
        self._after_display.append(self._after_first_frame)
        self.screen.refresh()  # Textual may lay the screen out before it can write it

    def _display(self, screen: Screen[object], renderable: RenderableType | None) -> None:
        """Textual's frame writer, followed by what waited for a frame. Textual also calls it
        for nothing to write, and while the first layout is batched (it writes nothing then):
        those are not frames. (Its public ``post_display_hook`` cannot tell them apart.)"""
        super()._display(screen, renderable)
        if renderable is None or self._batch_count or not self.is_running:
            return
        if self._after_display:
            waiting, self._after_display = self._after_display, []
            for callback in waiting:
                self.call_later(callback)

    async def _after_first_frame(self) -> None:
        if self.cluster_source is None:
            await self._open_pool()
        elif self._open_cluster(self.cluster_source):
            self._after_display.append(self._open_pool)  # the cluster on screen first, then SSH
            for screen in self._mode_screens():
                await screen.show_cluster()
            self.screen.refresh()
            if self._mode_after_load is not None:
                self.switch_mode(self._mode_after_load)

    def switch_mode(self, mode: str) -> AwaitMount:
        """Textual's, but a view asked for while the cluster file is being validated (a key
        pressed as the app opens) is shown once the cluster is: no view is made without it."""
        if self.cluster_source is not None and mode != "overview":
            self._mode_after_load = mode
            return AwaitMount(self.screen, [])
        return super().switch_mode(mode)

    def _open_cluster(self, source: ClusterSource) -> bool:
        """Validate the file read before the first frame; its problems end the app (exit 2),
        printed in the terminal as if it had never opened (``load_problems``)."""
        from pdtui.cluster import ClusterError
        from pdtui.cluster.io import build

        try:
            cluster = build(source)
        except ClusterError as exc:
            self.load_problems = list(exc.problems)
            self.exit(return_code=2)
            return False
        finally:
            self.cluster_source = None
        self.cluster = cluster
        self.sub_title = cluster.name
        return True

    def _mode_screens(self) -> list[ModeScreen]:
        """The mode screens made so far: the first view's (no other view is made while the
        file is validated, see ``switch_mode``)."""
        return [s for s in self.screen_stack if isinstance(s, ModeScreen)]

    async def _open_pool(self) -> None:
        if self.cluster is None or self.pool is not None:
            return
        from pdtui.ssh.remote import pool_for

        pool = pool_for(self.cluster)
        await pool.__aenter__()
        pool.listeners.append(self._on_command)
        pool.state_listeners.append(self._on_node_status)
        self.pool = pool
        self._pool_open.set()
        if self.connect_on_start:
            self.connect_nodes()

    async def ready_pool(self) -> SshPool | None:
        """The SSH pool once it is open (right after the first frame); None without a
        cluster."""
        if self.cluster is None and self.cluster_source is None:
            return None
        await self._pool_open.wait()
        return self.pool

    async def on_unmount(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in self._signals:
            loop.remove_signal_handler(sig)
        if self.pool is not None:
            await self.pool.close()

    def _catch_hangup(self) -> None:
        """A closed terminal (SIGHUP) or a kill (SIGTERM) ends the app the normal way: its
        connections close and ``pdtui demo`` stops its fake nodes."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGHUP, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self.exit, None, 128 + sig)
            except (RuntimeError, ValueError, NotImplementedError):  # not the main thread
                continue
            self._signals.append(sig)

    # -- SSH --------------------------------------------------------------------------------

    def _on_command(self, record: CommandRecord) -> None:
        self.screen.post_message(CommandRecorded(record))

    def _on_node_status(self, status: NodeStatus) -> None:
        self.node_status[status.name] = status
        self.screen.post_message(NodeStatusChanged(status))

    @work(group="connect", exclusive=True, exit_on_error=False, name="connect")
    async def connect_nodes(self, names: list[str] | None = None) -> None:
        """Connect to every node (or the named ones); ask about unknown host keys."""
        from pdtui.ssh import HostKeyChanged, HostKeyUnknown, SshError
        from pdtui.ssh.remote import target

        pool = await self.ready_pool()
        assert self.cluster is not None and pool is not None
        nodes = [n for n in self.cluster.nodes if names is None or n.name in names]
        results = await pool.connect_all([target(n) for n in nodes])
        for name, error in results.items():
            if isinstance(error, HostKeyChanged):
                self.notify(
                    printable(str(error)),
                    title="HOST KEY CHANGED",
                    severity="error",
                    timeout=60,
                    markup=False,
                )
            elif isinstance(error, HostKeyUnknown):
                await self._ask_host_key(name, error)
            elif isinstance(error, SshError):
                self.notify(printable(str(error)), severity="error", timeout=15, markup=False)

    async def _ask_host_key(self, name: str, error: HostKeyUnknown) -> None:
        from pdtui.ssh import HostKeyUnknown
        from pdtui.ssh.remote import target
        from pdtui.tui.screens.hostkey import HostKeyScreen

        assert self.pool is not None and self.cluster is not None
        ask = (error.host, error.port, error.fingerprint)
        if ask in self._asked or error.key is None:
            return
        self._asked.add(ask)
        decision = await self.push_screen_wait(HostKeyScreen(error, str(self.pool.store.save_to)))
        if decision == "refuse":
            self.notify(
                f"{name}: host key refused; the node stays disconnected", severity="warning"
            )
            return
        tgt = error.target or target(self.cluster.node(name))
        self.pool.trust_host_key(tgt, error.key, save=decision == "save")
        self._asked.discard(ask)
        results = await self.pool.connect_all([target(self.cluster.node(name))])
        failure = results.get(name)
        if isinstance(failure, HostKeyUnknown):
            await self._ask_host_key(name, failure)
        elif failure is not None:
            self.notify(printable(str(failure)), severity="error", timeout=15, markup=False)

    def set_health(self, report: CheckReport) -> None:
        """Keep the latest NPU health report and tell every mode screen about it."""
        self.health = report
        self.live.apply_npu(report.nodes, pings=report.pings)
        for mode in self.MODES:
            with contextlib.suppress(Exception):
                for screen in self._screen_stacks.get(mode, []):
                    screen.post_message(HealthUpdated(report))

    def need_live(self, topics: Iterable[Topic]) -> Callable[[], None]:
        """A view shows ``topics``: poll them until the returned function is called (when
        the view is hidden). Nothing is polled without a cluster or when the app does not
        connect."""
        if self.cluster is None or not self.connect_on_start:
            return lambda: None
        if self._scheduler is None:
            self._scheduler = Scheduler(time.time)
            self.run_worker(
                self._run_live(self._scheduler),
                name="live pollers",
                group="live",
                exit_on_error=False,
            )
        return self._scheduler.need(topics)

    async def _run_live(self, scheduler: Scheduler) -> None:
        pool = await self.ready_pool()  # after the first frame: the sources load SSH code
        if pool is None or self.cluster is None:
            return
        from pdtui.live.sources import pollers

        scheduler.pollers.extend(pollers(pool, self.cluster, self.live))
        await scheduler.run()

    def verification(self) -> Verification | None:
        """How the runbook's last step sends its prompt: through the proxy, over SSH."""
        if self.pool is None or self.cluster is None or self.cluster.spec.proxy is None:
            return None
        from pdtui.runbook import verification

        return verification(self.pool, self.cluster)

    def status_of(self, name: str) -> NodeStatus:
        status = self.node_status.get(name)
        if status is None:
            from pdtui.ssh import NodeState, NodeStatus

            status = NodeStatus(name, NodeState.DISCONNECTED)
        return status

    def watch_theme(self, theme: str) -> None:
        if self.settings.theme != theme:
            self.settings.theme = theme
            if self.persist_settings:
                try:
                    save_settings(self.settings)
                except OSError as exc:
                    self.notify(f"could not save settings: {exc}", severity="warning")

    def action_save_svg(self) -> None:
        """Save the screen as SVG (F8) under the screenshot folder and say where; the
        toasts are cleared first so they are not in the picture."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        folder = screenshot_dir()
        self.clear_notifications()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = self.save_screenshot(f"pdtui-{self.current_mode}-{stamp}.svg", path=str(folder))
        except OSError as exc:
            self.notify(
                printable(
                    f"screenshot not saved in {folder}: {exc}; set "
                    "PDTUI_SCREENSHOT_DIR to a folder you can write"
                ),
                severity="error",
                markup=False,
            )
            return
        self.notify(printable(f"saved {path}"), title="Screenshot", timeout=6, markup=False)

    def action_help(self) -> None:
        from pdtui.tui.screens.help import HelpScreen

        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss()
            return
        own: list[tuple[str, str]] = []
        generic: list[tuple[str, str]] = []
        for node, binding, enabled, _tooltip in self.active_bindings.values():
            row = (
                binding.key_display or self.get_key_display(binding),
                binding.description or binding.action,
            )
            mine = node is not self and binding.action != "app.help"
            keys = own if mine else generic  # the view's own keys come first
            if enabled and row not in own and row not in generic:
                keys.append(row)
        self.push_screen(HelpScreen(self.focused, self.screen, own, generic))

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for mode, title, fkey, num in MODE_KEYS:
            yield SystemCommand(
                f"Go to {title}",
                f"Switch to the {title} view ({fkey.upper()} or {num})",
                lambda mode=mode: self.switch_mode(mode),
            )
        yield from self._view_commands()

    def _view_commands(self) -> Iterable[SystemCommand]:
        """Every action of every view (the palette finds "Ping" from the Runbook view)."""
        for mode, title, _fkey, _num in MODE_KEYS:
            screen_class = _screen_class(mode)
            for binding in getattr(screen_class, "BINDINGS", []):
                if (
                    not isinstance(binding, Binding)
                    or not binding.description
                    or binding.action.startswith("app.")
                ):
                    continue
                key = binding.key_display or binding.key
                yield SystemCommand(
                    f"{title}: {binding.description}",
                    f"{binding.description} ({key} in the {title} view)",
                    lambda mode=mode, action=binding.action: self.run_worker(
                        self._in_view(mode, action), name=f"{mode}: {action}", exit_on_error=False
                    ),
                )

    async def _in_view(self, mode: str, action: str, arg: str | None = None) -> None:
        """Go to ``mode`` and run its ``action`` there (``arg``: a process name to start or
        stop)."""
        await self.switch_mode(mode)
        screen = self.screen
        if action in ("start", "stop"):
            from pdtui.launch.control import unknown_names
            from pdtui.tui.screens.launch import LaunchScreen

            if not isinstance(screen, LaunchScreen) or self.cluster is None:
                return
            if arg and unknown_names(self.cluster, [arg]):
                self.notify(
                    printable(f"no process or instance named {arg!r}"),
                    severity="error",
                    markup=False,
                )
                return
            only = [arg] if arg else None
            if action == "start":
                screen.run_launch(only)
            else:
                screen.run_stop(only, f"Stop {arg or 'every process pdtui started'}?")
            return
        await screen.run_action(action)

    def action_command_line(self) -> None:
        """``:`` opens the command line (``:check``, ``:launch decode-0``, ``:stop``, ...)."""
        from pdtui.tui.screens.command_line import Command, CommandLineScreen

        def run(cmd: Command | None) -> None:
            if cmd is not None:
                self.run_worker(
                    self._in_view(cmd.mode, cmd.action, cmd.arg)
                    if cmd.action
                    else self.switch_mode(cmd.mode),
                    name="command line",
                    exit_on_error=False,
                )

        self.push_screen(CommandLineScreen(), run)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Background work never takes the app down: a failure is shown where it happened."""
        error = event.worker.error
        if (
            event.state == WorkerState.ERROR
            and error is not None
            and not isinstance(error, NoSession)
        ):
            where = event.worker.name or "background task"
            self.notify(printable(f"{where}: {error}"), severity="error", timeout=15, markup=False)
