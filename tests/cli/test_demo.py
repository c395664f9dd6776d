"""`pdtui demo`'s folder: two demos at once never share one (a lock per folder)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pdtui.cli.demo import FolderBusy, claim, claim_free


def test_a_second_demo_gets_its_own_folder(tmp_path: Path) -> None:
    base = tmp_path / "demo"
    first, lock1 = claim_free(base)
    second, lock2 = claim_free(base)
    assert (first, second) == (base, tmp_path / "demo-2")
    with pytest.raises(FolderBusy, match=r"demo is in use by another pdtui demo \(pid \d+\)"):
        claim(base)
    lock1.close()  # the first demo ended: its folder is free again
    third, lock3 = claim_free(base)
    assert third == base
    lock2.close()
    lock3.close()


@pytest.mark.slow
def test_a_busy_dir_given_by_hand_is_refused_with_what_to_do(tmp_path: Path) -> None:
    lock = claim(tmp_path / "d")
    r = subprocess.run(
        [sys.executable, "-m", "pdtui", "demo", "--dir", str(tmp_path / "d")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    lock.close()
    assert r.returncode == 2
    assert r.stderr.strip().endswith("stop it, or pass --dir with another folder")
    assert "in use by another pdtui demo (pid " in r.stderr
