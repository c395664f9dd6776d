"""Atomic file uploads: a reader on the node never sees a partial file.

SFTP writes ``<dir>/.<name>.tmp.<random>``, fsyncs, chmods and renames it onto the final name;
nodes without the SFTP subsystem get the shell recipe ``mktemp && cat > && mv -f``.
"""

from __future__ import annotations

import asyncio
import contextlib
import posixpath
import secrets
import shlex
from collections.abc import Callable

import asyncssh
from asyncssh.constants import OPEN_REQUEST_SESSION_FAILED

from pdtui.ssh.errors import RemoteCommandError, map_runtime_error


class NoSftp(Exception):
    """The node refused the SFTP subsystem (use the shell recipe instead)."""


async def start_sftp(conn: asyncssh.SSHClientConnection) -> asyncssh.SFTPClient:
    """Open an SFTP client, raising :class:`NoSftp` when the node has no SFTP subsystem."""
    try:
        return await conn.start_sftp_client()
    except asyncssh.ChannelOpenError as exc:
        if exc.code == OPEN_REQUEST_SESSION_FAILED:
            raise NoSftp from None
        raise
    except asyncssh.SFTPError:
        raise NoSftp from None


async def sftp_put(
    sftp: asyncssh.SFTPClient,
    release: Callable[[], None],
    node: str,
    path: str,
    data: bytes,
    mode: int,
    makedirs: bool,
) -> None:
    """Write ``data`` to ``path`` through a temporary file, then close ``sftp`` and ``release``."""
    directory, name = posixpath.split(path)
    directory = directory or "."
    tmp = posixpath.join(directory, f".{name}.tmp.{secrets.token_hex(6)}")
    try:
        try:
            if makedirs:
                await sftp.makedirs(directory, exist_ok=True)
            await _write_and_rename(sftp, tmp, path, data, mode)
        except asyncssh.SFTPError as exc:
            raise RemoteCommandError(
                node, f"sftp put {path}", None, f"{type(exc).__name__}: {exc.reason}"
            ) from None
        except (asyncssh.Error, OSError) as exc:
            raise map_runtime_error(node, exc) from None
    finally:
        sftp.exit()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(sftp.wait_closed(), 2.0)
        release()


async def _write_and_rename(
    sftp: asyncssh.SFTPClient, tmp: str, path: str, data: bytes, mode: int
) -> None:
    attrs = asyncssh.SFTPAttrs(permissions=mode)
    try:
        async with sftp.open(tmp, "wb", attrs) as f:
            await f.write(data)
            with contextlib.suppress(asyncssh.SFTPOpUnsupported):
                await f.fsync()
        await sftp.chmod(tmp, mode)
        await sftp.posix_rename(tmp, path)
    except BaseException:
        with contextlib.suppress(Exception):
            await sftp.remove(tmp)
        raise


def shell_put_script(path: str, mode: int, makedirs: bool) -> str:
    """A shell script that writes its stdin to ``path`` atomically (exit status 0 on success)."""
    directory, name = posixpath.split(path)
    directory = directory or "."
    qdir = shlex.quote(directory)
    tmpl = shlex.quote(posixpath.join(directory, f".{name}.tmp.XXXXXXXX"))
    return (
        (f"mkdir -p -- {qdir} && " if makedirs else "")
        + f"umask 077; t=$(mktemp {tmpl}) || exit 1; "
        + f'if cat > "$t" && chmod {mode:o} "$t" && mv -f -- "$t" {shlex.quote(path)}; '
        + 'then exit 0; else rc=$?; rm -f -- "$t"; exit $rc; fi'
    )
