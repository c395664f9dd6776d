"""Where a command runs on a node: its login shell, or inside its serving container.

A node without ``[container]`` runs everything in the login shell of its SSH session. A node
with one runs serving's commands as ``CLI exec NAME sh -c SCRIPT``: one exec per step (an
exec costs 0.1-0.2 s, far more than an SSH channel), so a step's work is one script. The
container's name and CLI were checked when the cluster file was loaded; the command is built
with :func:`shlex.join` all the same, so nothing in them is read by the node's shell.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from pdtui.cluster import Node

HOST = "host"


def where(node: Node) -> str:
    """``host`` or ``container NAME``: shown wherever a process or a value is listed."""
    box = node.container
    return HOST if box is None else f"container {box.name}"


def in_container(node: Node) -> bool:
    return node.container is not None


def exec_argv(
    node: Node,
    script: str,
    *,
    detach: bool = False,
    env: dict[str, str] | None = None,
    sh: str = "sh",
    stdin: bool = False,
) -> list[str]:
    """``CLI exec [-d] [-i] [-e K=V]... NAME sh -c SCRIPT`` for a node with a container."""
    box = node.container
    if box is None:
        raise ValueError(f"node {node.name!r} has no container")
    argv = [box.cli, "exec"]
    if detach:
        argv.append("-d")
    if stdin:
        argv.append("-i")
    for key, value in (env or {}).items():
        argv += ["-e", f"{key}={value}"]
    return [*argv, box.name, sh, "-c", script]


def wrap(
    node: Node, script: str, *, detach: bool = False, sh: str = "sh", stdin: bool = False
) -> str:
    """The command to send over SSH so that ``script`` runs where serving runs (``sh``:
    the interpreter inside; on the host the login shell reads it; ``stdin``: the script
    reads what is sent)."""
    if node.container is None:
        return script
    return shlex.join(exec_argv(node, script, detach=detach, sh=sh, stdin=stdin))


def shell(node: Node, *, host_pid: bool = False) -> str:
    """The command that runs a bash script sent on stdin where serving runs: ``bash -s``, or
    ``CLI exec -i NAME bash -s``. Processes it starts with ``setsid`` outlive the exec.

    ``host_pid``: when the script prints ``pid=N`` (a pid inside the container), print
    ``host_pid=H`` after it: the process whose ``NSpid`` line in ``/proc/H/status`` ends in N,
    in the container's pid namespace (host pid first, container pid last).
    """
    box = node.container
    if box is None:
        return "bash -s"
    inner = shlex.join([box.cli, "exec", "-i", box.name, "bash", "-s"])
    if not host_pid:
        return inner
    init = shlex.join([box.cli, "inspect", "--format", "{{.State.Pid}}", box.name])
    script = (
        f'out=$({inner}); rc=$?; printf "%s\\n" "$out"\n'
        'pid=$(printf "%s\\n" "$out" | sed -n "s/^pid=//p")\n'
        'case $pid in ""|*[!0-9]*) exit $rc;; esac\n'
        f"ns=$(readlink /proc/$({init} 2>/dev/null)/ns/pid) || exit $rc\n"
        'for h in $(grep -sE "^NSpid:([[:space:]]+[0-9]+)+[[:space:]]+$pid\\$" '
        "/proc/[0-9]*/status | cut -d/ -f3); do\n"
        '  [ "$(readlink /proc/$h/ns/pid)" = "$ns" ] && echo "host_pid=$h" && break\n'
        "done\nexit $rc\n"
    )
    return "sh -c " + shlex.quote(script)


def cli(node: Node, *args: str) -> str:
    """``CLI ARGS...`` on the node's host (``inspect``, ``start``, ...), quoted."""
    box = node.container
    if box is None:
        raise ValueError(f"node {node.name!r} has no container")
    return shlex.join([box.cli, *args])


def quote_all(parts: Sequence[str]) -> str:
    return " ".join(shlex.quote(p) for p in parts)
