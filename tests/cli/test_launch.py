"""`pdtui launch --dry-run` through a real subprocess: one script per process, as is."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = ROOT / "sample_clusters" / "deepseek-v3.2-a3-1p1d.toml"


def test_dry_run_keeps_the_shebang_on_line_1_of_each_script() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "pdtui", "launch", str(RUNBOOK), "--dry-run", "--only", "decode-0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "#!/bin/bash"
    assert lines[1].startswith("# decode-0 on decode-0 (")
    assert any(line.startswith("vllm serve ") for line in lines)
