"""`pdtui status` through a subprocess against `pdtui sim up`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def pdtui(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pdtui", *args], capture_output=True,
                          text=True, timeout=120)


def test_an_unreachable_node_is_printed_with_its_reason_and_what_to_do(sim_up: Path) -> None:
    assert pdtui("sim", "fault", str(sim_up), "decode-0:unreachable").returncode == 0
    for _ in range(20):  # the fault reaches the running simulator on its next state read
        r = pdtui("status", str(sim_up))
        if "cannot tell its state" in r.stdout:
            break
    lines = r.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if " decode-0 " in line and "decode" in line)
    assert "cannot tell its state: " in lines[at + 1] and "refused" in lines[at + 1]
    assert "'pdtui nodes CLUSTER'" in lines[at + 2]
    prefill = next(line for line in lines if "prefill-0" in line)
    assert "stopped" in prefill
    decode = lines[at]
    assert decode.startswith("? decode-0") and " unknown " in decode
