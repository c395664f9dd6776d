"""Start, find, stop and tail processes on the nodes, detached from the SSH connection.

Each process gets a run folder
``<run_dir>/<cluster>/<process>/`` on its node with ``env.sh`` (0600: values stay out of
``ps``), ``cmd`` (the command, secrets redacted), ``run_id``, ``started_at``, ``pid`` and
``out.log``. It is started with ``setsid nohup sh -c ...`` with all three streams redirected,
so it has its own session and process group (pid = pgid = sid) and survives pdtui exiting and
the connection dropping; the wrapper shell records the exit status in ``rc``. A stop sends
TERM to that process group only after checking that the process still carries our run id
(``PDTUI_RUN_ID`` in ``/proc/PID/environ``: a reused pid is never signalled), waits, then
sends KILL. Nothing is ever killed by name.

On a node with a container every one of these scripts runs inside it (`pdtui.place.shell`:
``CLI exec -i NAME bash -s``, one exec per step): the run folder, pid and log are the
container's, and ``status`` adds the pid on the host (``host_pid``, from ``NSpid``).
"""

from __future__ import annotations

import contextlib
import re
import secrets
import shlex
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Literal

from pdtui.cluster import Node
from pdtui.place import shell, wrap
from pdtui.ssh import SshError, SshPool, redact
from pdtui.ssh.remote import target
from pdtui.ssh.stream import in_own_group

RunState = Literal["running", "exited", "stopped", "not-started", "unknown"]
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # a folder name, never . or ..
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def run_dir(node: Node, cluster: str, name: str) -> str:
    for part in (cluster, name):
        if not _SAFE.match(part):
            raise ValueError(f"{part!r}: only letters, digits, '.', '_' and '-' in run names")
    return f"{node.run_dir.rstrip('/')}/{cluster}/{name}"


@dataclass
class Started:
    node: str
    name: str
    dir: str
    pid: int | None
    run_id: str
    error: str | None = None


@dataclass
class Status:
    node: str
    name: str
    dir: str
    state: RunState
    pid: int | None = None
    run_id: str | None = None
    started_at: float | None = None
    exit_status: int | None = None
    log_size: int | None = None
    error: str | None = None
    #: the pid on the node's host when the process runs in a container (``pid`` is inside)
    host_pid: int | None = None

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def shell_path(path: str) -> str:
    """``path`` as one shell word; a leading ``~/`` becomes ``"$HOME"/`` (expanded on the node)."""
    if path == "~" or path.startswith("~/"):
        rest = path[2:].strip("/")
        return '"$HOME"/' + shlex.quote(rest) if rest else '"$HOME"'
    return shlex.quote(path)


#: Shell functions every run-folder script starts with. ``pdtui_base`` makes the run folder's
#: base (mkdir -p, 0700) and refuses it when it or any folder above it (symlinks resolved)
#: belongs to another user or is writable by others without the sticky bit (the rule of
#: OpenSSH's StrictModes); ``pdtui_dir`` makes one folder below it (0700) and refuses a
#: symlink, another user's folder or one others may write to; ``pdtui_ours`` is true when the
#: pid is alive and carries the run id (well-formed, compared literally) in its environment.
_GUARD = r"""pdtui_refuse() { echo "refused: $1" >&2; exit 92; }
pdtui_private() {
  who="remove it after checking who made it, or set run_dir"
  [ -L "$1" ] || [ ! -d "$1" ] && pdtui_refuse "$1 is not a plain folder (a symlink?): $who"
  [ -O "$1" ] || pdtui_refuse "run folder $1 belongs to user $(stat -c %U -- "$1"), \
not $(id -un): $who"
  case $(stat -c %A -- "$1") in ?????w????|????????w?)
    pdtui_refuse "run folder $1 is writable by other users: chmod 700 it or $who";; esac
}
pdtui_base() {
  mkdir -p -m 700 -- "$1" 2>/dev/null
  pdtui_private "$1"
  p=$(readlink -f -- "$1") || pdtui_refuse "cannot resolve run folder $1"
  while [ -n "$p" ] && [ "$p" != / ]; do
    p=${p%/*}; [ -n "$p" ] || p=/
    set -- "$1" $(stat -c '%u %A' -- "$p")
    own="set run_dir to a folder of your own"
    [ "$2" = 0 ] || [ "$2" = "$(id -u)" ] || \
      pdtui_refuse "$p (above run folder $1) belongs to another user: $own"
    case $3 in ?????w???[!tT]|????????w[!tT])
      pdtui_refuse "$p (above run folder $1) is writable by other users: $own";; esac
  done
}
pdtui_dir() {
  [ -e "$1" ] || [ -L "$1" ] || mkdir -m 700 -- "$1" 2>/dev/null
  pdtui_private "$1"
}
pdtui_ours() {
  case $1 in ''|*[!0-9]*) return 1;; esac
  case $2 in ????????????????) ;; *) return 1;; esac
  case $2 in *[!0-9a-f]*) return 1;; esac
  kill -0 "$1" 2>/dev/null || return 1
  tr '\0' '\n' < "/proc/$1/environ" 2>/dev/null | grep -qFx "PDTUI_RUN_ID=$2"
}
"""

#: The files of a run folder; any of them that is not a regular file was planted.
_FILES = "env.sh env.redacted cmd run_id started_at out.log pid rc"


def _dirs(base: str, cluster: str, name: str) -> str:
    """Script lines making and checking the three folders; leaves ``$D`` the process folder."""
    return (
        f'B={shell_path(base.rstrip("/") or "/")}\npdtui_base "$B"\n'
        f'pdtui_dir "$B"/{shlex.quote(cluster)}\n'
        f'D="$B"/{shlex.quote(cluster)}/{shlex.quote(name)}\npdtui_dir "$D"\n'
    )


def start_script(
    base: str, cluster: str, name: str, env: dict[str, str], argv: list[str], run_id: str
) -> str:
    """The bash script (sent on stdin) that starts ``argv`` detached in its run folder.

    Values reach the process as exports of this script (stdin, never in ``ps``); ``env.sh``
    is a record of them, never sourced. Every file is created afresh (``set -C``: a file
    that appears meanwhile is refused), mode 0600.
    """
    q = shlex.quote
    exports = "".join(f"export {k}={q(v)}\n" for k, v in env.items())
    exports += f"export PDTUI_RUN_ID={q(run_id)}\n"
    fence = f"PDTUI_ENV_{secrets.token_hex(8)}"
    cmd_text = redact(" ".join(q(a) for a in argv))
    redacted_env = redact("".join(f"{k}={q(v)}\n" for k, v in env.items()))
    return f"""set -u
UM=$(umask); umask 077
{_GUARD}{_dirs(base, cluster, name)}cd -- "$D" || exit 90
for f in {_FILES}; do
  if [ -L "$f" ] || {{ [ -e "$f" ] && [ ! -f "$f" ]; }}; then
    pdtui_refuse "$D/$f is not a regular file (a symlink, FIFO or device pdtui did not \\
make): remove it after checking who made it"
  fi
done
if pdtui_ours "$(cat pid 2>/dev/null)" "$(cat run_id 2>/dev/null)"; then
    echo "already running: pid $(cat pid)" >&2; exit 91
fi
rm -f -- {_FILES} || exit 90
set -C
cat > env.sh <<'{fence}'
{exports}{fence}
printf '%s\\n' {q(cmd_text)} > cmd
cat > env.redacted <<'{fence}'
{redacted_env}{fence}
printf '%s\\n' {q(run_id)} > run_id
date +%s > started_at
: > out.log
set +C
SETSID=$(command -v setsid); NOHUP=$(command -v nohup); SH=$(command -v sh)
# Run from the login directory, as an operator's shell would: relative paths in the command
# (e.g. the proxy script) resolve from there; pdtui's files stay in $D.
cd ~ 2>/dev/null || cd /
(
{exports}umask "$UM"
# CANN's own logs (the plog) beside out.log, unless the cluster file or the login sets it
[ -n "${{ASCEND_PROCESS_LOG_PATH:-}}" ] || export ASCEND_PROCESS_LOG_PATH="$D"
exec "$SETSID" "$NOHUP" "$SH" -c \\
    'd=$1; u=$2; shift 2; set -C; umask 077; echo $$ > "$d/pid"; umask "$u"
     "$@"; s=$?; umask 077; echo $s > "$d/rc"' \\
    pdtui-run "$D" "$UM" {" ".join(q(a) for a in argv)}
) >> "$D/out.log" 2>&1 < /dev/null &
for _ in 1 2 3 4 5 6 7 8 9 10; do [ -s "$D/pid" ] && break; sleep 0.05; done
cat "$D/pid" 2>/dev/null || echo 0
"""


async def start(
    pool: SshPool, node: Node, cluster: str, name: str, env: dict[str, str], argv: list[str]
) -> Started:
    directory = run_dir(node, cluster, name)
    run_id = secrets.token_hex(8)
    bad = [k for k in env if not _ENV_NAME.match(k)]
    if bad:  # the loader refuses these; a plan built in code must not reach a shell either
        return Started(
            node.name,
            name,
            directory,
            None,
            run_id,
            f"{bad[0]!r} is not a valid environment variable name",
        )
    try:
        res = await pool.run(
            target(node),
            shell(node),
            input=start_script(node.run_dir, cluster, name, env, argv, run_id),
            timeout=30,
            label=f"start {name}: {redact(shlex.join(argv))[:120]}",
        )
    except SshError as exc:
        return Started(node.name, name, directory, None, run_id, exc.message)
    if res.exit_status != 0:
        why = res.stderr.strip().splitlines()[-1:] or [f"exit {res.exit_status}"]
        return Started(node.name, name, directory, None, run_id, why[0][:300])
    pid_text = res.stdout.strip().splitlines()[-1:] or ["0"]
    pid = int(pid_text[0]) if pid_text[0].isdigit() and pid_text[0] != "0" else None
    return Started(
        node.name,
        name,
        directory,
        pid,
        run_id,
        None if pid else "the process did not record its pid",
    )


def _folder_script(directory: str) -> str:
    """Script lines entering an existing run folder (else ``state=not-started``), refused
    unless it is private; what follows reads ``pid`` and ``run_id``."""
    return (
        f"{_GUARD}D={shell_path(directory)}\n"
        '[ -e "$D" ] || [ -L "$D" ] || { echo state=not-started; exit 0; }\n'
        'pdtui_private "$D"; cd -- "$D" || exit 90\n'
        "[ -f pid ] && pid=$(cat pid) || pid=; [ -f run_id ] && rid=$(cat run_id) || rid=\n"
    )


_STATUS_SCRIPT = r"""echo "pid=$pid"; echo "run_id=$rid"
echo "started_at=$(cat started_at 2>/dev/null)"
echo "rc=$(cat rc 2>/dev/null)"; echo "log_size=$(wc -c < out.log 2>/dev/null)"
if pdtui_ours "$pid" "$rid"; then
  st=$(ps -o stat= -p "$pid" 2>/dev/null)
  case "$st" in Z*) echo "state=exited";; *) echo "state=running";; esac
elif [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then echo "state=exited"
elif [ -n "$pid" ]; then
  if [ -s rc ]; then echo "state=exited"; else echo "state=stopped"; fi
else echo "state=not-started"; fi
"""


def _refusal(stderr: str) -> str | None:
    lines = [x for x in stderr.splitlines() if x.startswith("refused: ")]
    return lines[-1][:300] if lines else None


async def status(pool: SshPool, node: Node, cluster: str, name: str) -> Status:
    directory = run_dir(node, cluster, name)
    try:
        res = await pool.run(
            target(node),
            shell(node, host_pid=True),
            input=_folder_script(directory) + _STATUS_SCRIPT,
            timeout=30,
            label=f"status of {name}",
        )
    except SshError as exc:
        return Status(node.name, name, directory, "unknown", error=exc.message)
    if (refused := _refusal(res.stderr)) is not None:
        return Status(node.name, name, directory, "unknown", error=refused)
    kv = dict(line.split("=", 1) for line in res.stdout.splitlines() if "=" in line)
    if "state" not in kv:  # e.g. the container is gone: say what the node said
        why = res.stderr.strip().splitlines()[-1:] or [f"exit {res.exit_status}"]
        return Status(node.name, name, directory, "unknown", error=why[0][:300])

    def num(key: str) -> int | None:
        v = kv.get(key, "").strip()
        return int(v) if v.lstrip("-").isdigit() else None

    state = kv.get("state", "unknown")
    return Status(
        node.name,
        name,
        directory,
        state if state in ("running", "exited", "stopped", "not-started") else "unknown",  # type: ignore[arg-type]
        pid=num("pid"),
        run_id=kv.get("run_id") or None,
        started_at=float(num("started_at") or 0) or None,
        exit_status=num("rc"),
        log_size=num("log_size"),
        host_pid=num("host_pid"),
    )


# The pid is signalled only when it still carries the run id (``pdtui_ours``): a pid reused
# by another process, a malformed run id or a non-numeric pid are never signalled.
_STOP_SCRIPT = r"""GRACE=%d
case $pid in ''|*[!0-9]*) echo "result=not-running"; exit 0;; esac
kill -0 "$pid" 2>/dev/null || { echo "result=not-running"; exit 0; }
pdtui_ours "$pid" "$rid" || { echo "result=pid-reused"; exit 0; }
kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
i=0
while kill -0 -- "-$pid" 2>/dev/null; do
  i=$((i + 1)); [ "$i" -ge $((GRACE * 10)) ] && break; sleep 0.1
done
if kill -0 -- "-$pid" 2>/dev/null; then
  kill -KILL -- "-$pid" 2>/dev/null; pkill -KILL -s "$pid" 2>/dev/null; echo "result=killed"
else echo "result=stopped"; fi
"""


async def stop(pool: SshPool, node: Node, cluster: str, name: str, grace: int = 30) -> str:
    """TERM the process group pdtui started, KILL after ``grace`` s; returns what happened."""
    directory = run_dir(node, cluster, name)
    script = _folder_script(directory).replace("state=not-started", "result=not-started")
    try:
        res = await pool.run(
            target(node),
            shell(node),
            input=script + _STOP_SCRIPT % int(grace),
            timeout=grace + 30,
            label=f"stop {name} (TERM, KILL after {grace} s)",
        )
    except SshError as exc:
        return f"error: {exc.message}"
    for line in res.stdout.splitlines():
        if line.startswith("result="):
            return line.removeprefix("result=")
    if (refused := _refusal(res.stderr)) is not None:
        return f"error: {refused}"
    return f"error: exit {res.exit_status}: {res.stderr.strip()[:200]}"


@dataclass
class LogLine:
    text: str
    offset: int  # byte offset just after this line: resume from here


_OFFSET = "@@pdtui-offset"


@dataclass
class LogBatch:
    lines: list[str]
    offset: int  # byte offset just after the last line: resume from here


async def tail(
    pool: SshPool,
    node: Node,
    path: str,
    offset: int = 0,
    *,
    follow: bool = True,
    start_lines: int | None = None,
) -> AsyncIterator[LogLine]:
    """Lines of ``path`` one by one (see :func:`tail_batches`)."""
    batches = tail_batches(pool, node, path, offset, follow=follow, start_lines=start_lines)
    async with contextlib.aclosing(batches):  # a consumer's break ends the stream now
        async for batch in batches:
            end = batch.offset - sum(
                len(x.encode("utf-8", "surrogateescape")) + 1 for x in batch.lines
            )
            for line in batch.lines:
                end += len(line.encode("utf-8", "surrogateescape")) + 1
                yield LogLine(line, end)


async def tail_batches(
    pool: SshPool,
    node: Node,
    path: str,
    offset: int = 0,
    *,
    follow: bool = True,
    start_lines: int | None = None,
) -> AsyncGenerator[LogBatch, None]:
    """Lines of ``path`` from byte ``offset``, as many as have arrived at a time; with
    ``follow``, keeps following (``tail -F``).

    ``start_lines``: begin with only the last N lines (offset is then found on the node).
    A reconnect resumes at the last batch's offset: no line lost or repeated. If the file
    shrank (truncated or rotated), it starts again from 0.
    """
    q = shell_path(path)
    if start_lines is not None:  # the offset of the last N lines
        find = (
            f"s=$(wc -c < {q} 2>/dev/null || echo 0); "
            f"t=$(tail -n {int(start_lines)} {q} 2>/dev/null | wc -c); o=$((s - t))"
        )
    else:  # a file that shrank (truncated, rotated) is read again from 0
        find = f's=$(wc -c < {q} 2>/dev/null || echo 0); o={int(offset)}; [ "$s" -lt "$o" ] && o=0'
    mode = "-F" if follow else ""
    # One channel: the offset is found on the node and named first, then the tail follows.
    cmd = f'{find}; echo "{_OFFSET} $o"; exec tail -c +$((o + 1)) {mode} {q} 2>/dev/null'
    # In its own process group, killed when the stream closes: no tail -F left behind.
    async with pool.stream(
        target(node), wrap(node, in_own_group(cmd)), kill_wrap=lambda script: wrap(node, script)
    ) as stream:
        base: int | None = None  # the file offset where the stream's bytes began
        while lines := await stream.batch():
            if base is None:
                head = lines[0].removeprefix(_OFFSET + " ")
                if head != lines[0] and head.strip().isdigit():
                    base = int(head) - len(lines.pop(0)) - 1
                else:
                    base = offset
                if not lines:
                    continue
            yield LogBatch(lines, base + stream.consumed)


def now() -> float:
    return time.time()
