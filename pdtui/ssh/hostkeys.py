"""Which host keys are trusted: known_hosts files, pdtui's own file and in-memory trust.

An unknown key raises :class:`HostKeyUnknown` (the operator may trust it), a changed key raises
:class:`HostKeyChanged` and is never accepted.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import asyncssh

from pdtui.ssh.errors import HostKeyChanged, HostKeyError, HostKeyUnknown
from pdtui.ssh.target import EffectiveTarget, SshTarget

#: What the connecting client was offered: ``(host, addr, port, key)``.
Offered = tuple[str, str, int, asyncssh.SSHKey]


def known_hosts_pattern(host: str, port: int) -> str:
    """How known_hosts names a host: ``host`` on port 22, else ``[host]:port``."""
    return host if port == 22 else f"[{host}]:{port}"


def _key_line(key: asyncssh.SSHKey) -> str:
    parts = key.export_public_key("openssh").decode().split()
    return f"{parts[0]} {parts[1]}"


MatchResult = tuple[list[asyncssh.SSHKey], list[asyncssh.SSHKey], list[asyncssh.SSHKey]]


class HostKeyStore:
    """Trusted host keys: the user's known_hosts files, pdtui's own file and in-memory trust.

    ``accept_new=True`` behaves like OpenSSH ``StrictHostKeyChecking=accept-new``: an unknown
    key is saved to ``save_to`` and accepted, a changed key is still refused.
    """

    def __init__(self, known_hosts: Sequence[Path], save_to: Path, accept_new: bool = False):
        self.save_to = Path(save_to)
        files = [Path(p) for p in known_hosts]
        if self.save_to not in files:
            files.append(self.save_to)
        self.files: tuple[Path, ...] = tuple(files)
        self.accept_new = accept_new
        self._cache: dict[Path, tuple[tuple[int, int], asyncssh.SSHKnownHosts | None]] = {}
        self._memory_lines: list[str] = []
        self._memory: asyncssh.SSHKnownHosts | None = None

    @classmethod
    def default(cls, save_to: Path, accept_new: bool = False) -> HostKeyStore:
        """``~/.ssh/known_hosts`` (read only) plus ``save_to``."""
        return cls([Path("~/.ssh/known_hosts").expanduser()], save_to, accept_new)

    # -- loading --------------------------------------------------------------------------

    def _load(self, path: Path) -> asyncssh.SSHKnownHosts | None:
        try:
            st = path.stat()
        except OSError:
            return None
        stamp = (st.st_mtime_ns, st.st_size)
        cached = self._cache.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        parsed: asyncssh.SSHKnownHosts | None
        try:
            text = path.read_text(errors="replace")
        except OSError:
            parsed = None
        else:
            parsed = _import_known_hosts_lenient(text)
        self._cache[path] = (stamp, parsed)
        return parsed

    def _sources(self) -> list[asyncssh.SSHKnownHosts]:
        out = [kh for kh in (self._load(p) for p in self.files) if kh is not None]
        if self._memory is not None:
            out.append(self._memory)
        return out

    # -- queries --------------------------------------------------------------------------

    def match(self, host: str, addr: str, port: int | None) -> MatchResult:
        """Trusted keys, CA keys and revoked keys for a host (asyncssh ``known_hosts`` callable)."""
        keys: list[asyncssh.SSHKey] = []
        cas: list[asyncssh.SSHKey] = []
        revoked: list[asyncssh.SSHKey] = []
        for kh in self._sources():
            result = kh.match(host, addr, port)
            keys.extend(result[0])
            cas.extend(result[1])
            revoked.extend(result[2])
        return keys, cas, revoked

    def locate(self, host: str, addr: str, port: int | None) -> list[tuple[str, int]]:
        """``(file, line number)`` of every recorded entry that matches the host."""
        found: list[tuple[str, int]] = []
        for path in self.files:
            try:
                lines = path.read_text(errors="replace").splitlines()
            except OSError:
                continue
            for lineno, line in enumerate(lines, 1):
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                try:
                    kh = asyncssh.import_known_hosts(line + "\n")
                except (ValueError, asyncssh.KeyImportError):
                    continue
                res = kh.match(host, addr, port)
                if res[0] or res[2]:
                    found.append((str(path), lineno))
        for line in self._memory_lines:
            kh = asyncssh.import_known_hosts(line + "\n")
            if kh.match(host, addr, port)[0]:
                found.append(("<trusted in memory>", 0))
        return found

    # -- trust ----------------------------------------------------------------------------

    def trust(self, host: str, port: int, key: asyncssh.SSHKey, save: bool) -> None:
        """Trust ``key`` for host:port, in memory only or appended to ``save_to`` (mode 0600)."""
        line = f"{known_hosts_pattern(host, port)} {_key_line(key)}"
        if save:
            self.save_to.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.save_to, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.fchmod(fd, 0o600)
                os.write(fd, (line + "\n").encode())
            finally:
                os.close(fd)
            self._cache.pop(self.save_to, None)
        else:
            self._memory_lines.append(line)
            self._memory = asyncssh.import_known_hosts("\n".join(self._memory_lines) + "\n")


def _import_known_hosts_lenient(text: str) -> asyncssh.SSHKnownHosts | None:
    try:
        return asyncssh.import_known_hosts(text)
    except (ValueError, asyncssh.KeyImportError):
        pass
    good: list[str] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            asyncssh.import_known_hosts(line + "\n")
        except (ValueError, asyncssh.KeyImportError):
            continue
        good.append(line)
    return asyncssh.import_known_hosts("\n".join(good) + "\n") if good else None


def host_key_error(
    store: HostKeyStore, target: SshTarget, eff: EffectiveTarget, offered: Offered | None
) -> HostKeyError:
    """The error for a host key the store did not verify (``offered``: what the server showed)."""
    host = eff.known_hosts_name
    pattern = known_hosts_pattern(host, eff.port)
    if offered is None:
        return HostKeyChanged(
            target.name,
            f"host key for {pattern} is revoked or unusable - ask the node's admin; "
            f"see {store.save_to}",
            host=host,
            port=eff.port,
            algorithm="",
            fingerprint="",
            key=None,
            target=target,
        )
    m_host, m_addr, m_port, key = offered
    algorithm = key.get_algorithm()
    fingerprint = key.get_fingerprint("sha256")
    lookup_port = None if m_port == 22 else m_port
    trusted, _cas, _revoked = store.match(m_host, m_addr, lookup_port)
    if trusted:
        where = store.locate(m_host, m_addr, lookup_port)
        file, line = where[0] if where else (str(store.save_to), 0)
        return HostKeyChanged(
            target.name,
            f"HOST KEY CHANGED for {pattern} (now {algorithm} {fingerprint}) - possible "
            f"man-in-the-middle; refused. If the change is expected remove line {line} of "
            f"{file} (ssh-keygen -R '{pattern}' -f {file}) and reconnect",
            host=host,
            port=eff.port,
            algorithm=algorithm,
            fingerprint=fingerprint,
            key=key,
            target=target,
            known_hosts_file=file,
            known_hosts_line=line,
        )
    return HostKeyUnknown(
        target.name,
        f"unknown host key for {pattern}: {algorithm} {fingerprint} - verify the fingerprint "
        "and trust it",
        host=host,
        port=eff.port,
        algorithm=algorithm,
        fingerprint=fingerprint,
        key=key,
        target=target,
    )


def key_type_changed_error(
    store: HostKeyStore, target: SshTarget, eff: EffectiveTarget
) -> HostKeyChanged | None:
    """The error for a key exchange that failed because the node no longer offers any type of
    key recorded for it (asyncssh asks only for the recorded types); None if none is recorded."""
    host = eff.known_hosts_name
    pattern = known_hosts_pattern(host, eff.port)
    lookup_port = None if eff.port == 22 else eff.port
    trusted, _cas, _revoked = store.match(host, eff.host, lookup_port)
    if not trusted:
        return None
    types = ", ".join(sorted({k.get_algorithm() for k in trusted}))
    where = store.locate(host, eff.host, lookup_port)
    file, line = where[0] if where else (str(store.save_to), 0)
    return HostKeyChanged(
        target.name,
        f"HOST KEY CHANGED for {pattern}: the node no longer offers its recorded {types} key - "
        f"possible man-in-the-middle; refused. If the change is expected remove line {line} "
        f"of {file} (ssh-keygen -R '{pattern}' -f {file}) and reconnect",
        host=host,
        port=eff.port,
        algorithm="",
        fingerprint="",
        key=None,
        target=target,
        known_hosts_file=file,
        known_hosts_line=line,
    )
