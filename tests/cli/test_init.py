"""The command line's entry point: version, usage errors, unknown commands, every --help."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pdtui import __version__, cli


def pdtui(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pdtui", *args], capture_output=True, text=True, timeout=60
    )


def test_version() -> None:
    r = pdtui("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"pdtui {__version__}"


@pytest.mark.slow
def test_opening_a_bad_file_in_the_app_fails_before_the_screen(tmp_path: Path) -> None:
    bad = tmp_path / "c.toml"
    bad.write_text("[cluster\n")
    r = pdtui(str(bad))
    assert r.returncode == 2
    assert r.stderr.startswith("c.toml: not valid TOML:")


@pytest.mark.slow
def test_a_file_that_fails_validation_ends_the_app_with_its_problems_printed(
    tmp_path: Path,
) -> None:
    """In a real terminal: TOML that parses but is not a cluster opens the app, which is
    validated right after its first frame, closes, and leaves the problems printed (exit 2)."""
    import os
    import pty
    import select
    import time

    bad = tmp_path / "c.toml"
    bad.write_text('[cluster]\nname = "x"\n')
    leader, follower = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "PDTUI_CONFIG_DIR": str(tmp_path / "cfg")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pdtui", str(bad)],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
    )
    os.close(follower)
    seen = b""
    try:
        deadline = time.monotonic() + 120  # a guard against a hang, not a timing check
        while proc.poll() is None and time.monotonic() < deadline:
            if select.select([leader], [], [], 0.5)[0]:
                try:
                    seen += os.read(leader, 65536)
                except OSError:  # the app exited and closed the terminal
                    break
        proc.wait(timeout=60)
        while select.select([leader], [], [], 0.5)[0]:  # what it printed as it ended
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(leader)
    assert proc.returncode == 2
    after_screen = seen.rsplit(b"\x1b[?1049l", 1)[-1].decode(errors="replace")
    assert "c.toml: nodes: missing required key" in after_screen
    assert "c.toml: model: missing required key" in after_screen


def test_usage_error_exits_2() -> None:
    r = pdtui("validate")
    assert r.returncode == 2 and "usage:" in r.stderr


def test_unknown_command_exits_2() -> None:
    r = pdtui("frobnicate", "x")
    assert r.returncode == 2 and "unknown command 'frobnicate'" in r.stderr


def test_every_subcommand_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    listing = capsys.readouterr().out
    assert "validate" in cli.COMMANDS
    for name in cli.COMMANDS:
        assert name in listing
        assert cli.main([name, "--help"]) == 0, name
        assert "usage: pdtui " + name in capsys.readouterr().out.replace("\n", " ")


def _modules_after(*argv: str) -> set[str]:
    code = (
        "import json, sys\nfrom pdtui import cli\ntry:\n    cli.main(sys.argv[1:])\n"
        "except SystemExit:\n    pass\nprint(json.dumps(sorted(sys.modules)))"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    return set(json.loads(r.stdout.splitlines()[-1]))


@pytest.mark.slow
def test_help_and_version_import_no_command_module() -> None:
    for argv in (["--help"], ["--version"]):
        loaded = _modules_after(*argv)
        assert sorted(m for m in loaded if m.startswith("pdtui.cli.")) == ["pdtui.cli.common"]
        assert "pdtui.cluster" not in loaded
    assert "argparse" not in _modules_after("--version")


def test_a_command_imports_ssh_and_the_cluster_model_only_to_run() -> None:
    loaded = _modules_after("check", "--help")
    assert "pdtui.cli.check" in loaded and "pdtui.cli.nodes" not in loaded
    heavy = {"asyncssh", "pydantic", "httpx", "textual", "pdtui.cluster", "asyncio"}
    assert heavy.isdisjoint(loaded), heavy & loaded
