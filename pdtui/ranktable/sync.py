"""The ranktable on the nodes: read every copy, compare, push atomically with a backup.

Every node that runs an instance needs the file at the cluster's ``[ranktable] path`` (the
connector reads ``DISAGGREGATED_PREFILL_RANK_TABLE_PATH``). A push writes a temp file beside
the target, renames it over the old one (a reader never sees half a file), keeps the previous
copy as ``<path>.bak`` and checks the sha256 afterwards. A node that fails is reported and keeps
its old copy; the others are not affected.
"""

from __future__ import annotations

import asyncio
import hashlib
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from pdtui.cluster import Cluster, Node
from pdtui.place import wrap
from pdtui.ssh import SshError, SshPool
from pdtui.ssh.remote import target

SyncState = Literal["same", "different", "missing", "unreachable"]


@dataclass
class NodeCopy:
    """One node's copy of the ranktable (``text`` is None when the file is missing)."""

    node: str
    path: str
    text: str | None
    state: SyncState
    error: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "node": self.node,
            "path": self.path,
            "state": self.state,
            "error": self.error,
            "sha256": _sha(self.text) if self.text is not None else None,
        }


@dataclass
class PushResult:
    node: str
    path: str
    ok: bool
    changed: bool
    backup: str | None = None
    sha256: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


#: A node's copy larger than this is not read (a 16-node ranktable is well under 1 MB).
MAX_RANKTABLE = 8 << 20


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def require_ranktable(cluster: Cluster) -> None:
    if cluster.spec.ranktable is None:
        raise ValueError(f"{cluster.name}: the cluster file has no [ranktable] section")


def instance_nodes(cluster: Cluster) -> list[Node]:
    """Nodes that run an instance, in cluster-file order (each needs the ranktable)."""
    names = {i.node for i in cluster.instances}
    return [n for n in cluster.nodes if n.name in names]


def same_json(a: str, b: str) -> bool:
    """Equal as JSON values (key order and spacing aside)."""
    import json

    try:
        return bool(json.loads(a) == json.loads(b))
    except ValueError:
        return a == b


def restate(copies: list[NodeCopy], local_text: str) -> list[NodeCopy]:
    """The same copies compared with another local text (no new round trip)."""
    out = []
    for c in copies:
        if c.text is None:
            out.append(c)
        else:
            state: SyncState = "same" if same_json(c.text, local_text) else "different"
            out.append(NodeCopy(c.node, c.path, c.text, state, c.error))
    return out


async def fetch(pool: SshPool, node: Node, path: str, local_text: str | None) -> NodeCopy:
    """Read one node's copy; compare it with ``local_text`` when given."""
    q = shlex.quote(path)
    cmd = f"if [ -e {q} ]; then cat -- {q}; else echo __PDTUI_MISSING__ >&2; exit 3; fi"
    try:
        res = await pool.run(
            target(node),
            wrap(node, cmd),
            timeout=node.ssh.command_timeout,
            max_output=MAX_RANKTABLE,
        )
    except SshError as exc:
        return NodeCopy(node.name, path, None, "unreachable", exc.message)
    if res.truncated:
        return NodeCopy(
            node.name,
            path,
            None,
            "different",
            f"{path} is larger than {MAX_RANKTABLE >> 20} MiB, not read "
            "(a ranktable is a few KB): check the file on the node",
        )
    if res.exit_status == 3 and "__PDTUI_MISSING__" in res.stderr:
        return NodeCopy(node.name, path, None, "missing")
    if res.exit_status != 0:
        return NodeCopy(
            node.name,
            path,
            None,
            "unreachable",
            f"cat {path} exited {res.exit_status}: {res.stderr.strip()[:200]}",
        )
    if local_text is None:
        state: SyncState = "same"
    else:
        state = "same" if same_json(res.stdout, local_text) else "different"
    return NodeCopy(node.name, path, res.stdout, state)


async def fetch_all(
    pool: SshPool,
    cluster: Cluster,
    local_text: str | None = None,
    nodes: Iterable[Node] | None = None,
) -> list[NodeCopy]:
    """Every instance node's copy, fetched at once."""
    require_ranktable(cluster)
    chosen = list(nodes) if nodes is not None else instance_nodes(cluster)
    return list(
        await asyncio.gather(
            *(fetch(pool, n, cluster.ranktable_path(n), local_text) for n in chosen)
        )
    )


def _inside_script(path: str) -> str:
    """Compare, back up and write atomically in one exec (the path the container sees)."""
    q, d = shlex.quote(path), shlex.quote(path.rsplit("/", 1)[0] or "/")
    tmp = shlex.quote(f"{path}.pdtui-tmp")
    return (
        f't=$(mktemp) && cat > "$t" || exit 13\n'
        f'if [ -e {q} ] && cmp -s -- {q} "$t"; then rm -f "$t"; exit 10; fi\n'
        f"if [ -e {q} ]; then cp -p -- {q} {q}.bak || exit 11; echo backup; fi\n"
        f'mkdir -p -- {d} && cp -- "$t" {tmp} && chmod 644 {tmp} && mv -f -- {tmp} {q} '
        f'|| exit 13\nrm -f "$t"; sha256sum -- {q}\n'
    )


async def _push_inside(pool: SshPool, node: Node, path: str, text: str) -> PushResult:
    try:
        res = await pool.run(
            target(node),
            wrap(node, _inside_script(path), stdin=True),
            input=text.encode(),
            timeout=node.ssh.command_timeout,
        )
    except SshError as exc:
        return PushResult(node.name, path, False, False, error=exc.message)
    if res.exit_status == 10:
        return PushResult(node.name, path, True, False, None, _sha(text))
    lines = res.stdout.strip().splitlines()
    got = (lines[-1].split() or [""])[0] if lines else ""
    if res.exit_status != 0 or got != _sha(text):
        return PushResult(
            node.name,
            path,
            False,
            False,
            error=(
                f"writing {path} in container {node.container.name if node.container else ''} "
                f"failed (exit {res.exit_status}): {res.stderr.strip()[:200]}"
            ),
        )
    backup = f"{path}.bak" if res.stdout.startswith("backup") else None
    return PushResult(node.name, path, True, True, backup, got)


async def push_one(pool: SshPool, node: Node, path: str, text: str) -> PushResult:
    """Back up the current copy, then write atomically and verify the checksum (on a node
    with a container: the path inside it, in one exec)."""
    if node.container is not None:
        return await _push_inside(pool, node, path, text)
    data = text.encode()
    q = shlex.quote(path)
    backup = f"{path}.bak"
    try:
        res = await pool.run(
            target(node),
            f"if [ -e {q} ]; then cmp -s -- {q} - && exit 10; "
            f"cp -pT -- {q} {shlex.quote(backup)} || exit 11; exit 12; fi; exit 0",
            input=data,
            timeout=node.ssh.command_timeout,
        )
        if res.exit_status == 10:
            return PushResult(node.name, path, True, False, None, _sha(text))
        if res.exit_status == 11:
            return PushResult(
                node.name,
                path,
                False,
                False,
                error=(f"could not back up {path} to {backup}: {res.stderr.strip()[:200]}"),
            )
        made_backup = backup if res.exit_status == 12 else None
        put = await pool.put(target(node), path, data, mode=0o644, makedirs=True)
    except SshError as exc:
        return PushResult(node.name, path, False, False, error=exc.message)
    return PushResult(node.name, path, True, True, made_backup, put.sha256)


async def push(
    pool: SshPool, cluster: Cluster, text: str, nodes: Iterable[Node] | None = None
) -> list[PushResult]:
    """Push to every instance node at once; each node succeeds or keeps its old copy."""
    require_ranktable(cluster)
    chosen = list(nodes) if nodes is not None else instance_nodes(cluster)
    return list(
        await asyncio.gather(*(push_one(pool, n, cluster.ranktable_path(n), text) for n in chosen))
    )
