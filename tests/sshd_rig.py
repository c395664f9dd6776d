"""A real OpenSSH sshd on loopback addresses, for end-to-end SSH tests.

Usage (see the ``sshd_node`` / ``sshd_bastion`` fixtures in ``tests/conftest.py``)::

    rig = SshdRig.start(tmp_dir, ["127.0.2.1", "127.0.2.2"])
    target = rig.target("n1", "127.0.2.1")      # pdtui.ssh.SshTarget, ssh_config=None
    rig.known_hosts_file                          # trusts the rig's host key on every address
    rig.stop()

Config follows reference/ssh.md §2.2 (MaxSessions 10 default, absolute AuthorizedKeysFile,
StrictModes no, UsePAM no).  Logs in as a dedicated user (``pdtui-test``, created with useradd
and unlocked with ``usermod -p '*'``, with an empty ``.bashrc`` so rc-file cost does not hide real
latency) or as root.  :func:`require_sshd` skips the test when sshd is missing or we are not root.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from procs import free_port

from pdtui.ssh import SshTarget

SSHD = "/usr/sbin/sshd"
SSH_KEYGEN = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"
TEST_USER = "pdtui-test"
CLEAN_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"}


def sshd_unavailable_reason() -> str | None:
    if not os.path.exists(SSHD):
        return f"{SSHD} is not installed"
    if os.geteuid() != 0:
        return "the real-sshd rig needs root (sshd privilege separation, test user)"
    if not os.path.exists(SSH_KEYGEN):
        return "ssh-keygen is not installed"
    return None


def require_sshd() -> None:
    reason = sshd_unavailable_reason()
    if reason:
        pytest.skip(reason)


def ensure_test_user(name: str = TEST_USER) -> str:
    """Create (once) an unlocked login user with a clean home; return its home directory."""
    try:
        import pwd

        home = pwd.getpwnam(name).pw_dir
    except KeyError:
        subprocess.run(["useradd", "-m", "-s", "/bin/bash", name], check=True, capture_output=True)
        import pwd

        home = pwd.getpwnam(name).pw_dir
    # useradd locks the account ('!'); with UsePAM no sshd refuses locked accounts.
    subprocess.run(["usermod", "-p", "*", name], check=True, capture_output=True)
    Path(home, ".bashrc").write_text("# pdtui test user: intentionally empty\n")
    for rc in (".profile", ".bash_profile", ".bash_login"):
        p = Path(home, rc)
        if p.exists():
            p.write_text("")
    return home


def _keygen(path: Path) -> None:
    if path.exists():
        path.unlink()
    subprocess.run(
        [SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)],
        check=True,
        capture_output=True,
    )
    path.chmod(0o600)


@dataclass
class SshdRig:
    workdir: Path
    addresses: list[str]
    port: int
    user: str
    host_key_path: Path
    client_key_path: Path
    proc: subprocess.Popen[bytes] | None = None
    config_path: Path = field(default_factory=Path)
    auth_dir: Path | None = None

    # -- lifecycle -----------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        workdir: Path,
        addresses: list[str],
        *,
        port: int | None = None,
        user: str = TEST_USER,
        max_sessions: int | None = None,
        max_startups: str | None = None,
        allow_tcp_forwarding: bool = True,
        permit_open: list[str] | None = None,
        extra_config: str = "",
        client_key_path: Path | None = None,
        timeout: float = 10.0,
    ) -> SshdRig:
        """Start ``sshd -D -e -f cfg`` listening on ``addresses`` (all on one port)."""
        require_sshd()
        if len(addresses) > 16:
            raise ValueError("one sshd listens on at most 16 addresses")
        workdir.mkdir(parents=True, exist_ok=True)
        os.chmod(workdir, 0o755)
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        if user != "root":
            ensure_test_user(user)
        host_key = workdir / "ssh_host_ed25519_key"
        _keygen(host_key)
        if client_key_path is None:
            client_key_path = workdir / "id_ed25519"
            _keygen(client_key_path)
        # sshd reads AuthorizedKeysFile as the login user: keep it in a world-traversable
        # directory (pytest's tmp dirs are 0700 root).
        auth_dir = Path(tempfile.mkdtemp(prefix="pdtui-sshd-auth-"))
        auth_dir.chmod(0o755)
        auth = auth_dir / "authorized_keys"
        auth.write_text(Path(str(client_key_path) + ".pub").read_text())
        auth.chmod(0o644)
        port = port or free_port(addresses[0])
        lines = [f"Port {port}"]
        lines += [f"ListenAddress {a}" for a in addresses]
        lines += [
            f"HostKey {host_key}",
            f"PidFile {workdir / 'sshd.pid'}",
            f"AuthorizedKeysFile {auth}",
            "StrictModes no",
            "UsePAM no",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            "Subsystem sftp internal-sftp",
            "AcceptEnv LANG LC_*",
            f"AllowTcpForwarding {'yes' if allow_tcp_forwarding else 'no'}",
            "X11Forwarding no",
            "PrintMotd no",
            "UseDNS no",
            "LogLevel VERBOSE",
        ]
        if max_sessions is not None:
            lines.append(f"MaxSessions {max_sessions}")
        if max_startups is not None:
            lines.append(f"MaxStartups {max_startups}")
        if permit_open:
            lines.append("PermitOpen " + " ".join(permit_open))
        if extra_config:
            lines.append(extra_config)
        cfg = workdir / "sshd_config"
        cfg.write_text("\n".join(lines) + "\n")
        check = subprocess.run(
            [SSHD, "-t", "-f", str(cfg)], capture_output=True, env=CLEAN_ENV, text=True
        )
        if check.returncode != 0:
            raise RuntimeError(f"sshd config rejected: {check.stderr.strip()}")
        log = open(workdir / "sshd.log", "wb")  # noqa: SIM115 - owned by the Popen
        proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(cfg)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=CLEAN_ENV,
            cwd="/",
        )
        log.close()
        rig = cls(workdir, list(addresses), port, user, host_key, client_key_path, proc, cfg)
        rig.auth_dir = auth_dir
        rig._wait_ready(timeout)
        return rig

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pending = set(self.addresses)
        while pending:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited early:\n{self.log_text()[-2000:]}")
            for addr in list(pending):
                try:
                    with socket.create_connection((addr, self.port), timeout=0.5) as s:
                        s.settimeout(1.0)
                        if s.recv(64).startswith(b"SSH-"):
                            pending.discard(addr)
                except OSError:
                    pass
            if pending and time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"sshd did not start on {sorted(pending)}:{self.port}")
            if pending:
                time.sleep(0.05)

    def stop(self) -> None:
        if self.auth_dir is not None:
            shutil.rmtree(self.auth_dir, ignore_errors=True)
            self.auth_dir = None
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def __enter__(self) -> SshdRig:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- helpers for tests ---------------------------------------------------------------

    def log_text(self) -> str:
        try:
            return (self.workdir / "sshd.log").read_text(errors="replace")
        except OSError:
            return ""

    def host_key_line(self) -> str:
        """``keytype base64`` of the rig's host key."""
        parts = Path(str(self.host_key_path) + ".pub").read_text().split()
        return f"{parts[0]} {parts[1]}"

    def known_hosts_text(self) -> str:
        key = self.host_key_line()
        return "".join(f"[{a}]:{self.port} {key}\n" for a in self.addresses)

    def write_known_hosts(self, path: Path) -> Path:
        with open(path, "a") as f:
            f.write(self.known_hosts_text())
        return path

    def target(self, name: str, address: str | None = None, **overrides: object) -> SshTarget:
        fields: dict[str, object] = {
            "name": name,
            "host": address or self.addresses[0],
            "port": self.port,
            "user": self.user,
            "identity_files": (str(self.client_key_path),),
            "ssh_config": None,
            "connect_timeout": 5.0,
            "command_timeout": 20.0,
        }
        fields.update(overrides)
        return SshTarget(**fields)  # type: ignore[arg-type]

    def hop(self, address: str | None = None) -> str:
        """A jump spec ``user@host:port`` for this rig."""
        return f"{self.user}@{address or self.addresses[0]}:{self.port}"


async def process_gone(pid: int, within: float = 3.0) -> bool:
    """True once ``pid`` no longer runs (a zombie awaiting its reaper counts as gone)."""
    import asyncio

    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return True
        if fields[0] in ("Z", "X"):
            return True
        await asyncio.sleep(0.05)
    return False
