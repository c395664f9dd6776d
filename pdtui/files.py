"""User files on the local disk: size-capped reads, atomic writes with a backup, config folder."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

#: The largest user file pdtui reads (a 64-node cluster file is about 20 KB, its ranktable
#: about 100 KB): anything bigger is a wrong file, not one to load into memory.
MAX_FILE_BYTES = 8 << 20


class FileTooLarge(OSError):
    """A file past ``MAX_FILE_BYTES``; the message says how big it is."""


def read_text(path: str | os.PathLike[str], limit: int = MAX_FILE_BYTES) -> str:
    """A user file as UTF-8 text, refused (``FileTooLarge``) past ``limit`` bytes."""
    with open(path, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise FileTooLarge(f"too large for pdtui to read (over {limit // (1 << 20)} MiB)")
    return data.decode("utf-8")


def atomic_write(path: Path, text: str) -> Path | None:
    """Write ``text`` to ``path`` via a temp file + rename; keep the old file as ``.bak``.

    Returns the backup path, if one was made.
    """
    path = Path(path)
    backup: Path | None = None
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        if path.exists():
            backup = _backup(path)
            shutil.copymode(path, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return backup


def _backup(path: Path) -> Path:
    """Copy ``path`` to ``path.bak`` the way the file itself is written: a fresh temp file
    renamed over it, so a symlink or FIFO planted at ``.bak`` is replaced, never followed."""
    backup = path.with_name(path.name + ".bak")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{backup.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out, open(path, "rb") as src:
            shutil.copyfileobj(src, out)
        shutil.copystat(path, tmp)
        os.replace(tmp, backup)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return backup


def config_dir() -> Path:
    """``$PDTUI_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/pdtui``, else ``~/.config/pdtui``."""
    if env := os.environ.get("PDTUI_CONFIG_DIR"):
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "pdtui"
