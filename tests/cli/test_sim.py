"""`pdtui sim ...`: the command line itself (the simulator is tested under tests/sim)."""

from __future__ import annotations

import subprocess
import sys

from pdtui.sim.faults import KINDS


def test_fault_help_lists_every_fault_kind_with_what_it_does() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "pdtui", "sim", "fault", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0
    assert "fault kinds (after NODE):" in r.stdout
    for kind in KINDS.values():
        assert f"  {kind.usage()} " in r.stdout and kind.help in r.stdout
