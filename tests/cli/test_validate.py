"""`pdtui validate` through a real subprocess: the summary, every problem, exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = ROOT / "sample_clusters" / "deepseek-v3.2-a3-1p1d.toml"


def pdtui(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pdtui", *args], capture_output=True, text=True, timeout=60
    )


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


def test_missing_file_exit_2_without_traceback(tmp_path: Path) -> None:
    r = pdtui("validate", str(tmp_path / "none.toml"))
    assert r.returncode == 2 and "no such file" in r.stderr and "Traceback" not in r.stderr
