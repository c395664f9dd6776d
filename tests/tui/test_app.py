"""The app shell driven through Textual's Pilot: modes, keys, help, themes, errors."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input

from pdtui.cluster import load
from pdtui.settings import Settings, settings_path
from pdtui.themes import load_themes
from pdtui.tui.app import MODE_KEYS, PdTui
from pdtui.tui.screens.help import HelpScreen

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = ROOT / "sample_clusters" / "deepseek-v3.2-a3-1p1d.toml"


def make_app(**kw: object) -> PdTui:
    # connect=False: the sample's addresses are not ours; tests never leave loopback.
    return PdTui(load(RUNBOOK), settings=Settings(), persist_settings=False, connect=False, **kw)  # type: ignore[arg-type]


@pytest.mark.slow
async def test_every_mode_is_reached_by_f_key_and_number_key() -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        assert app.current_mode == "overview"
        for mode, _title, fkey, num in MODE_KEYS:
            await pilot.press("f2" if mode != "overview" else "f3")
            await pilot.press(fkey)
            assert app.current_mode == mode
            await pilot.press("f3" if mode != "grid" else "f2")
            await pilot.press(num)
            assert app.current_mode == mode


@pytest.mark.slow
async def test_f_keys_switch_modes_even_while_a_text_input_has_focus() -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        field = Input(id="probe")
        await app.screen.mount(field)
        field.focus()
        await pilot.press("2", "x")
        assert field.value == "2x" and app.current_mode == "overview"
        await pilot.press("f5")
        assert app.current_mode == "launch"


async def test_overview_shows_the_cluster_nodes_and_instances() -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)):
        nodes = app.screen.query_one("#nodes", DataTable)
        assert [nodes.get_row_at(i)[0] for i in range(nodes.row_count)] == ["prefill-0", "decode-0"]
        assert nodes.get_row_at(0)[3] == "172.22.0.218"
        assert str(nodes.get_row_at(0)[1]).startswith("· ")  # connection, second: 80 columns
        inst = app.screen.query_one("#instances", DataTable)
        assert inst.get_row_at(1)[:4] == ["decode-0", "decode", "decode-0", "8000"]
        assert app.sub_title == "deepseek-v3.2-a3-1p1d"


@pytest.mark.slow
async def test_help_shows_the_view_description_and_keys_and_closes_with_escape() -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f3", "f1")
        assert isinstance(app.screen, HelpScreen)
        text = str(app.screen.query_one("#help-box Static").render())
        assert "hccn_tool" in text and "f1" in text.lower() and "F5" in text
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)


async def test_app_without_a_cluster_says_how_to_get_one() -> None:
    app = PdTui(None, settings=Settings(), persist_settings=False)
    async with app.run_test(size=(100, 30)):
        assert "pdtui demo" in str(app.screen.query_one(".placeholder").render())


@pytest.mark.slow
async def test_actions_without_a_cluster_do_nothing_and_report_nothing() -> None:
    app = PdTui(None, settings=Settings(), persist_settings=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f5", "S", "f3", "r", "f2", "R")
        await pilot.pause(0.2)
        assert app.is_running and not list(app._notifications)


def test_shipped_themes_load_including_colour_blind_and_high_contrast() -> None:
    specs, problems = load_themes()
    assert problems == []
    names = {s.name for s in specs}
    assert {"pdtui-dark", "pdtui-colorblind", "pdtui-high-contrast", "pdtui-light"} <= names


@pytest.mark.slow
async def test_every_theme_renders_and_the_choice_is_remembered() -> None:
    app = PdTui(load(RUNBOOK), settings=Settings(), connect=False)
    async with app.run_test(size=(100, 30)) as pilot:
        for spec in load_themes()[0]:
            app.theme = spec.name
            await pilot.pause()
        app.theme = "pdtui-colorblind"
        await pilot.pause()
    saved = tomllib.loads(settings_path().read_text())
    assert saved["theme"] == "pdtui-colorblind"
    again = PdTui(None)
    assert again.theme == "pdtui-colorblind"


def test_a_broken_theme_file_is_reported_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text('name = "x"\nprimary = 3\n')
    (tmp_path / "junk.toml").write_text("name = \n")
    specs, problems = load_themes([tmp_path])
    assert specs == [] and len(problems) == 2
    assert any("bad.toml: primary" in p for p in problems)


@pytest.mark.slow
async def test_a_failing_background_worker_is_shown_not_fatal() -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:

        async def boom() -> None:
            raise RuntimeError("node decode-0 unreachable")

        app.run_worker(boom(), name="probe decode-0", exit_on_error=False)
        await pilot.pause(0.2)
        assert app.is_running
        assert any("node decode-0 unreachable" in str(n.message) for n in app._notifications)


@pytest.mark.slow
async def test_a_failing_worker_of_a_screen_is_shown_too() -> None:
    """Worker messages do not bubble from a screen to the app; the screen forwards them."""
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f3")
        screen = app.screen

        async def boom() -> None:
            raise RuntimeError("grid [/bold] sweep exploded")

        screen.run_worker(boom(), name="NPU sweep", exit_on_error=False)
        await pilot.pause(0.2)
        assert app.is_running and app.screen is screen
        assert any(
            "NPU sweep: grid [/bold] sweep exploded" in str(n.message) for n in app._notifications
        )


@pytest.mark.slow
async def test_f8_saves_the_screen_as_svg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PDTUI_SCREENSHOT_DIR", str(tmp_path / "shots"))
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        app.notify("an old toast")
        await pilot.press("f3", "f8")
        await pilot.pause()
        said = [n.message for n in app._notifications]
    shots = list((tmp_path / "shots").glob("pdtui-grid-*.svg"))
    assert len(shots) == 1 and "<svg" in shots[0].read_text()
    assert "an old toast" not in shots[0].read_text()  # toasts are not in the picture
    assert said == [f"saved {shots[0]}"]


async def test_toasts_do_not_stack_up_one_per_topic_replaces_the_last() -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        for _ in range(4):
            app.screen.notify("a sweep is already running")  # a key held down
            await pilot.pause()
        app.notify("decode-0: start failed", severity="error")
        await pilot.pause()
        app.notify("decode-0: stopped")  # the same topic: the newer news wins
        app.notify("saved a.svg", title="Screenshot")
        await pilot.pause()
        app.notify("saved b.svg", title="Screenshot")
        await pilot.pause()
        said = [n.message for n in app._notifications]
    assert said == ["a sweep is already running", "decode-0: stopped", "saved b.svg"]


def test_screenshots_go_under_the_data_folder_by_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from pdtui.tui.app import screenshot_dir

    monkeypatch.delenv("PDTUI_SCREENSHOT_DIR", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert screenshot_dir() == tmp_path / ".local" / "share" / "pdtui" / "screenshots"


@pytest.mark.slow
async def test_enter_confirms_also_after_switching_modes_and_back() -> None:
    from pdtui.tui.screens.dialogs import ConfirmScreen

    app = make_app()
    answers: list[bool | None] = []
    async with app.run_test(size=(100, 30)) as pilot:
        app.push_screen(
            ConfirmScreen("Push [/b] to 2 nodes?", "prefill-0\ndecode-0"), answers.append
        )
        await pilot.pause()
        assert "Push [/b] to 2 nodes?" in str(app.screen.query_one("Label").render())
        await pilot.press("f3", "f2")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("enter")
        await pilot.pause()
        assert answers == [True]
        app.push_screen(ConfirmScreen("Stop?", ""), answers.append)
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert answers == [True, False]


def test_non_utf8_theme_and_settings_files_are_reported_not_fatal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pdtui.settings import load_settings

    (tmp_path / "latin1.toml").write_bytes(b'name = "caf\xe9"\n')
    specs, problems = load_themes([tmp_path])
    assert specs == [] and len(problems) == 1 and "latin1.toml" in problems[0]
    monkeypatch.setenv("PDTUI_CONFIG_DIR", str(tmp_path / "cfg"))
    settings_path().parent.mkdir(parents=True)
    settings_path().write_bytes(b'theme = "caf\xe9"\n')
    settings, warning = load_settings()
    assert settings == Settings() and warning is not None and "ignored" in warning


@pytest.mark.slow
def test_the_app_module_leaves_the_other_views_and_httpx_for_later() -> None:
    """Start-up: only the first view (Runbook) is imported with the app; every other view, and
    the HTTP client the console needs, when first shown."""
    code = (
        "import sys, pdtui.tui.app; print(' '.join(m for m in sys.modules "
        "if m.startswith(('pdtui.tui.screens', 'httpx'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.split()
    assert "pdtui.tui.screens.overview" in out
    assert not {m for m in out if m.startswith("httpx")}
    lazy = {"grid", "ranktable", "launch", "console", "command_log", "help", "hostkey"}
    assert not {m.rsplit(".", 1)[1] for m in out} & lazy


_FIRST_FRAME_PROBE = """
import os, sys
from textual.drivers import linux_driver
write = linux_driver.LinuxDriver.write
def first_frame(self, data):
    if "Runbook" in data:  # the mode bar: the Runbook view is on the terminal
        heavy = ("asyncssh", "httpx", "pdtui.ssh.pool", "pdtui.launch.control", "pydantic")
        with open(sys.argv[2], "w") as f:
            f.write(" ".join(m for m in heavy if m in sys.modules) or "-")
        os._exit(0)
    write(self, data)
linux_driver.LinuxDriver.write = first_frame
from pdtui.cli import main
sys.exit(main([sys.argv[1]]))
"""


@pytest.mark.slow
def test_the_first_frame_is_painted_before_the_ssh_library_is_loaded(tmp_path: Path) -> None:
    """Start-up, in a real terminal: the Runbook view is painted first; the cluster file's
    validation (pydantic) follows it, SSH (asyncssh, the pool, launch) and HTTP are imported
    after the cluster is on screen, when the pool opens."""
    import os
    import pty
    import select
    import time

    import tomli_w

    data = tomllib.loads(RUNBOOK.read_text())
    for i, node in enumerate(data["nodes"]):  # loopback only (it exits before any connect)
        node["host"] = node["ip"] = f"127.0.99.{i + 1}"
    cluster = tmp_path / "loop.toml"
    cluster.write_text(tomli_w.dumps(data))
    found = tmp_path / "found.txt"
    leader, follower = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "PDTUI_CONFIG_DIR": str(tmp_path / "cfg")}
    proc = subprocess.Popen(
        [sys.executable, "-c", _FIRST_FRAME_PROBE, str(cluster), str(found)],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
        cwd=ROOT,
    )
    os.close(follower)
    try:
        deadline = time.monotonic() + 120  # a guard against a hang, not a timing check
        while proc.poll() is None and time.monotonic() < deadline:  # drain the terminal
            if select.select([leader], [], [], 0.5)[0]:
                try:
                    os.read(leader, 65536)
                except OSError:  # the probe exited and closed the terminal
                    break
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(leader)
    assert found.read_text() == "-"


async def test_the_cluster_file_is_validated_after_the_first_frame(tmp_path: Path) -> None:
    """The first frame says the file is being read; right after it, the cluster is shown,
    the checklist has the focus and the subtitle names the cluster."""
    from pdtui.cluster import read_source

    app = PdTui(
        source=read_source(RUNBOOK), settings=Settings(), persist_settings=False, connect=False
    )
    assert app.cluster is None and app.sub_title == f"reading {RUNBOOK.name}"
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(100):  # a few frames; the guard only stops a hang
            shown = app.screen.query("#steps")
            if app.cluster is not None and shown and app.focused is shown.first():
                break
            await pilot.pause(0.05)
        assert app.cluster is not None and app.sub_title == app.cluster.name
        assert app.cluster_source is None and app.load_problems == []
        steps = app.screen.query_one("#steps", DataTable)
        assert app.focused is steps
        nodes = app.screen.query_one("#nodes", DataTable)
        assert [nodes.get_row_at(i)[0] for i in range(nodes.row_count)] == [
            n.name for n in app.cluster.nodes
        ]


async def test_a_cluster_file_that_fails_validation_ends_the_app_with_its_problems(
    tmp_path: Path,
) -> None:
    from pdtui.cluster import read_source

    bad = tmp_path / "c.toml"
    bad.write_text('[cluster]\nname = "x"\n')
    app = PdTui(source=read_source(bad), settings=Settings(), persist_settings=False)
    async with app.run_test(size=(100, 30)) as pilot:
        for _ in range(50):
            if not app.is_running:
                break
            await pilot.pause(0.05)
    assert app.return_code == 2 and app.cluster is None
    assert "c.toml: nodes: missing required key" in app.load_problems


async def test_a_view_asked_for_before_the_file_is_validated_is_shown_with_the_cluster() -> None:
    """F3 pressed as the app opens (here: asked for as soon as the app is mounted, before its
    first frame): the NPU grid is not made while the file is validated (it would say no
    cluster is open); it is shown once the cluster is."""
    from pdtui.cluster import read_source

    class KeyAhead(PdTui):
        CSS_PATH = str(ROOT / "pdtui" / "tui" / "pdtui.tcss")  # (relative to this file else)

        async def on_mount(self) -> None:
            await super().on_mount()
            assert self.cluster_source is not None  # not yet validated
            self.switch_mode("grid")

    app = KeyAhead(
        source=read_source(RUNBOOK), settings=Settings(), persist_settings=False, connect=False
    )
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(100):  # a few frames; the guard only stops a hang
            if app.current_mode == "grid" and app.cluster is not None:
                break
            await pilot.pause(0.05)
        await pilot.pause()
        assert app.current_mode == "grid" and app.cluster is not None
        assert not app.screen.query(".placeholder")
