"""atomic_write's backup on a shared disk: a planted ``FILE.bak`` is replaced, never followed."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from pdtui.files import atomic_write


def test_a_planted_backup_symlink_is_replaced_and_its_target_untouched(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    path = tmp_path / "c.toml"
    path.write_text("old\n")
    (tmp_path / "c.toml.bak").symlink_to(victim)
    backup = atomic_write(path, "new\n")
    assert backup == tmp_path / "c.toml.bak"
    assert victim.read_text() == "precious\n"
    assert not backup.is_symlink() and backup.read_text() == "old\n"
    assert path.read_text() == "new\n"


def test_a_planted_backup_fifo_neither_blocks_nor_receives_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("old\n")
    os.mkfifo(tmp_path / "c.toml.bak")
    done = threading.Event()

    def write() -> None:
        try:
            atomic_write(path, "new\n")
            done.set()
        except OSError:
            pass

    worker = threading.Thread(target=write, daemon=True)
    worker.start()
    worker.join(10)
    if worker.is_alive():  # unblock the writer so the test ends, then fail
        with open(tmp_path / "c.toml.bak", "rb") as fifo:
            fifo.read()
    assert done.is_set()
    assert (tmp_path / "c.toml.bak").read_text() == "old\n"


def test_the_backup_keeps_the_files_mode(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("old\n")
    path.chmod(0o600)
    backup = atomic_write(path, "new\n")
    assert backup is not None and backup.stat().st_mode & 0o777 == 0o600
    assert path.stat().st_mode & 0o777 == 0o600
