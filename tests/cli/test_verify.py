"""`pdtui verify` and `pdtui launch --wait` through a subprocess against `pdtui sim up`:
each stage is printed as it is reached, with the elapsed time, and a rerun says it reuses
the processes that already run."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

STAGE = re.compile(r"^ *\d+:\d\d ", re.M)


def pdtui(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pdtui", *args], capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_verify_prints_each_stage_and_says_when_it_reuses_running_processes(sim_up: Path) -> None:
    first = pdtui("verify", str(sim_up))
    assert first.returncode == 0, first.stdout + first.stderr
    out = first.stdout
    assert "\r" not in out and len(STAGE.findall(out)) >= 8
    assert re.search(r"^ *\d+:\d\d Prefill instances ready: prefill-0: ", out, re.M)
    assert re.search(r"^ *\d+:\d\d ✓ Decode instances ready \(", out, re.M)
    assert "reusing" not in out

    again = pdtui("verify", str(sim_up))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "reusing the running prefill-0, decode-0 (stop it to restart)" in again.stdout
    pdtui("stop", str(sim_up))


@pytest.mark.slow
def test_launch_wait_prints_each_stage_as_it_is_reached(sim_up: Path) -> None:
    run = pdtui("launch", str(sim_up), "--only", "proxy", "--wait", "--timeout", "60")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "waiting for 1 process to be ready (at most 60 s)" in run.stdout
    assert re.search(r"^ *\d+:\d\d proxy: ready$", run.stdout, re.M)
    assert re.search(r"^ *\d+:\d\d all ready$", run.stdout, re.M)
    pdtui("stop", str(sim_up))
