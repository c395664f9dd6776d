"""Size-capped reads, atomic writes with a backup, and the config folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from pdtui.files import FileTooLarge, atomic_write, config_dir, read_text


def test_read_text_refuses_a_file_past_the_cap(tmp_path: Path) -> None:
    path = tmp_path / "big.toml"
    path.write_bytes(b"x" * (2 << 20) + b"y")
    assert read_text(path, limit=(2 << 20) + 1).endswith("y")
    with pytest.raises(FileTooLarge, match="over 2 MiB"):
        read_text(path, limit=2 << 20)


def test_read_text_is_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes("név".encode("latin-1"))
    with pytest.raises(UnicodeDecodeError):
        read_text(path)


def test_atomic_write_keeps_a_backup_and_the_mode(tmp_path: Path) -> None:
    path = tmp_path / "cluster.toml"
    assert atomic_write(path, "one\n") is None
    path.chmod(0o600)
    backup = atomic_write(path, "two\n")
    assert backup == tmp_path / "cluster.toml.bak"
    assert backup.read_text() == "one\n" and path.read_text() == "two\n"
    assert path.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cluster.toml", "cluster.toml.bak"]


def test_config_dir_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PDTUI_CONFIG_DIR", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert config_dir() == tmp_path / "xdg" / "pdtui"
    monkeypatch.setenv("PDTUI_CONFIG_DIR", str(tmp_path / "own"))
    assert config_dir() == tmp_path / "own"
