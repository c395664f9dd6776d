"""The CLI through a real subprocess: exit codes, messages, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pdtui import __version__, cli

ROOT = Path(__file__).resolve().parent.parent
RUNBOOK = ROOT / "sample_clusters" / "deepseek-v3.2-a3-1p1d.toml"


def pdtui(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pdtui", *args], capture_output=True, text=True, timeout=60,
        cwd=cwd,
    )


def test_version() -> None:
    r = pdtui("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"pdtui {__version__}"


def test_validate_good_file_prints_summary_and_exits_0() -> None:
    r = pdtui("validate", str(RUNBOOK))
    assert r.returncode == 0, r.stderr
    assert f"{RUNBOOK}: ok" in r.stdout
    assert "prefill prefill-0    on prefill-0    port 8000  devices 0-15" in r.stdout
    assert r.stderr == ""


def test_validate_bad_file_prints_each_problem_and_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "cluster.toml"
    bad.write_text(
        RUNBOOK.read_text()
        .replace('[defaults.ssh]\nuser = "root"', '[defaults.ssh]\nuser = "root"\nport = "abc"')
        .replace('nic = "enp23s0f3"', 'nicc = "enp23s0f3"')
    )
    r = pdtui("validate", str(bad))
    assert r.returncode == 2
    lines = r.stderr.splitlines()
    assert "cluster.toml: defaults.ssh.port: expected an integer, got 'abc'" in lines
    assert any(line.startswith("cluster.toml: defaults.nicc: unknown key") for line in lines)
    assert "Traceback" not in r.stderr and r.stdout == ""


def test_opening_a_bad_file_in_the_app_fails_before_the_screen(tmp_path: Path) -> None:
    bad = tmp_path / "c.toml"
    bad.write_text("[cluster\n")
    r = pdtui(str(bad))
    assert r.returncode == 2
    assert r.stderr.startswith("c.toml: not valid TOML:")


def test_missing_file_exit_2_without_traceback(tmp_path: Path) -> None:
    r = pdtui("validate", str(tmp_path / "none.toml"))
    assert r.returncode == 2 and "no such file" in r.stderr and "Traceback" not in r.stderr


def test_usage_error_exits_2() -> None:
    r = pdtui("validate")
    assert r.returncode == 2 and "usage:" in r.stderr


def test_unknown_command_exits_2() -> None:
    r = pdtui("frobnicate", "x")
    assert r.returncode == 2 and "unknown command 'frobnicate'" in r.stderr


def test_every_subcommand_has_help() -> None:
    r = pdtui("--help")
    assert r.returncode == 0
    cli._load_commands()
    commands = list(cli._COMMANDS)
    for name in commands:
        assert name in r.stdout
    assert "validate" in commands
    for name in commands:
        h = pdtui(name, "--help")
        assert h.returncode == 0, name
        assert "usage: pdtui " + name in h.stdout.replace("\n", " ")


def test_import_reads_the_runbook_scripts_and_warns_about_their_slips(tmp_path: Path) -> None:
    scripts = sorted((ROOT / "tests" / "fixtures" / "scripts").glob("runbook-*.sh"))
    out = tmp_path / "imported.toml"
    r = pdtui("import", *map(str, scripts), "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "line 28: '--kv-transfer-config' starts a new command" in r.stdout
    assert "disaggregate_prefill_v1" in r.stdout
    v = pdtui("validate", str(out))
    assert v.returncode == 0 and "prefill prefill-0    on prefill-0    port 8000" in v.stdout
